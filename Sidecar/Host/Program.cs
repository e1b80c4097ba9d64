using Airlock.Sidecar.ControlPlane;
using Airlock.Sidecar.Hosting;
using Airlock.Sidecar.Snapshots;

// Content root is where the binaries are, so appsettings.json is found whatever the working directory.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.Configuration.AddCommandLine(args, SidecarHosting.SwitchMappings);

try
{
    var options = builder.ReadValidatedOptions();
    var identity = await builder.EnrollAsync(options);
    builder.AddSidecarObservability();
    builder.AddSidecarServices(identity, options);

    var app = builder.Build();
    await app.Services.GetRequiredService<SnapshotStore>().LoadCachedAsync(app.Lifetime.ApplicationStopping);
    app.MapSidecarEndpoints();
    await app.RunAsync();
    return Environment.ExitCode;
}
catch (StartupException e)
{
    await Console.Error.WriteLineAsync($"sidecar: {e.Message}");
    return e.ExitCode;
}
