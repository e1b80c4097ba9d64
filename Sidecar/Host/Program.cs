using Airlock.Sidecar.ControlPlane;
using Airlock.Sidecar.Hosting;
using Airlock.Sidecar.Snapshots;

// Socket continuations run on the socket engine's thread instead of hopping to the thread pool: the
// gateway's per-message work is short and never blocks, and the hop is a large share of a proxied
// round trip (pgbench -S -c 8: 35 → 26 CPU µs per transaction for the bare relay). Read once, before
// the first socket exists; set DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=0 to turn it off.
if (Environment.GetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS") is null)
    Environment.SetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "1");

// Content root is where the binaries are, so appsettings.json is found whatever the working directory.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.Configuration.AddCommandLine(args, SidecarHosting.SwitchMappings);

try
{
    var options = builder.ReadValidatedOptions();
    HealthEndpointCheck.EnsureFree(builder.Configuration, options.Mcp);
    var identity = await builder.EnrollAsync(options);
    builder.AddSidecarObservability();
    builder.AddSidecarServices(identity, options);
    Airlock.Sidecar.Mcp.McpFrontDoor.AddMcpFrontDoor(builder, options);

    var app = builder.Build();
    await app.Services.GetRequiredService<SnapshotStore>().LoadCachedAsync(app.Lifetime.ApplicationStopping);
    app.MapSidecarEndpoints();
    Airlock.Sidecar.Mcp.McpFrontDoor.MapMcpFrontDoor(app);
    var backgroundServices = app.Services.GetServices<IHostedService>().OfType<BackgroundService>().ToList();
    await app.RunAsync();
    if (PolicySyncClient.Revoked)
        return PolicySyncClient.RevokedExitCode;
    // A background service that failed stopped the host: say which, and do not exit as if all went well.
    if (backgroundServices.FirstOrDefault(s => s.ExecuteTask?.IsFaulted == true) is { } failed)
    {
        await Console.Error.WriteLineAsync($"sidecar: {failed.GetType().Name} failed: {failed.ExecuteTask!.Exception!.GetBaseException().Message}");
        return 1;
    }
    return Environment.ExitCode;
}
catch (StartupException e)
{
    await Console.Error.WriteLineAsync($"sidecar: {e.Message}");
    return e.ExitCode;
}
