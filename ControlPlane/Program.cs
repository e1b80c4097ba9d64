using Airlock.ControlPlane;
using Airlock.ControlPlane.Api;
using Airlock.ControlPlane.Components;
using Airlock.ControlPlane.Data;
using Airlock.ControlPlane.Identity;
using Airlock.ControlPlane.Observability;
using Airlock.ControlPlane.Policies;
using Airlock.ControlPlane.Sessions;
using Airlock.ControlPlane.Sidecars;
using Airlock.Contracts.Hubs;

// Offline tool: verify an exported session bundle without starting anything.
if (args.Length > 0 && args[0] == BundleCommand.Verb)
    return BundleCommand.Run(args, Console.Out);

try
{
    // Content root is where the binaries are, so appsettings.json is found whatever the working directory.
    var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });

    var stateDirectory = builder.AddAirlockOptions();
    builder.AddAirlockObservability("airlock-controlplane");
    builder.AddAirlockStore(stateDirectory);
    builder.AddAirlockIdentity();
    builder.AddAgentTokenIssuer();
    builder.AddAirlockPolicies(stateDirectory);
    builder.AddAirlockSidecars();
    builder.AddAirlockConsole();

    var app = builder.Build();

    await app.InitializeStoreAsync();

    app.UseExceptionHandler();
    app.UseStatusCodePages();
    app.UseAuthentication();
    app.UseAuthorization();
    app.UseAntiforgery();

    app.MapAirlockObservability();
    app.MapGroup("/api/v1").MapPolicyEndpoints().MapAdminEndpoints().MapSessionEndpoints().MapApprovalEndpoints();
    app.MapGrpcService<PolicySyncService>();
    app.MapHub<SidecarHub>(SidecarHubPaths.Hub);
    app.MapAccountEndpoints();
    app.MapAgentTokenIssuer();
    app.MapDelegation();
    app.MapAirlockConsole();

    await app.RunAsync();
    return 0;
}
catch (StartupException e)
{
    // A bad option or an unusable store names itself in one line, without a stack trace.
    await Console.Error.WriteLineAsync($"controlplane: {e.Message}");
    return 2;
}

/// <summary>Entry point marker for tests.</summary>
public partial class Program;
