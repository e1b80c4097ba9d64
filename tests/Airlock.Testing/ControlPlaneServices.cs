using Airlock.ControlPlane.Data;
using Airlock.ControlPlane.Policies;
using Airlock.ControlPlane.Sidecars;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.Testing;

/// <summary>The control plane's real services over a <see cref="TestStore"/>, without a web host.</summary>
public static class ControlPlaneServices
{
    public static IServiceCollection AddControlPlaneCore(this IServiceCollection services, TestStore store, TimeProvider? time = null)
    {
        services.AddSingleton(time ?? TimeProvider.System);
        services.AddSingleton<ILoggerFactory>(NullLoggerFactory.Instance);
        services.AddSingleton(typeof(ILogger<>), typeof(NullLogger<>));
        services.AddSingleton<IConfiguration>(new ConfigurationBuilder().Build());
        services.AddDataProtection().SetApplicationName("Airlock.Tests").UseEphemeralDataProtectionProvider();
        services.AddScoped<AirlockDbContext>(_ => store.Open());
        services.AddSingleton<Airlock.ControlPlane.Replicas.ReplicaSignals>(); // in-process: no Redis in these tests
        services.AddSingleton<PolicyChangeNotifier>();
        services.AddSingleton<SidecarPresence>();
        services.AddOptions<SnapshotOptions>();
        services.AddOptions<Airlock.ControlPlane.Identity.AgentTokenOptions>().Configure(o => o.Issuer = "http://airlock.test");
        services.AddScoped<PolicyStore>();
        services.AddScoped<SnapshotCompiler>();
        services.AddScoped<SnapshotSigningKeys>();
        services.AddScoped<SidecarService>();
        services.AddSingleton<Airlock.ControlPlane.Identity.SignInThrottle>();
        services.AddScoped<Airlock.ControlPlane.Identity.UserService>();
        services.AddScoped<Airlock.ControlPlane.Identity.UserAdministration>();
        services.AddScoped<Airlock.ControlPlane.Identity.AgentCredentials>();
        services.AddOpenIddict().AddCore(o => o.UseEntityFrameworkCore().UseDbContext<AirlockDbContext>());
        // Approvals as the control plane wires them (a SignalR hub context with no sidecar connected).
        services.AddSignalR();
        services.AddHttpClient();
        services.AddOptions<Airlock.ControlPlane.Approvals.WebhookOptions>();
        services.AddSingleton<Airlock.ControlPlane.Approvals.WebhookDispatcher>();
        services.AddSingleton<Airlock.ControlPlane.Approvals.ApprovalBroadcaster>();
        services.AddScoped<Airlock.ControlPlane.Approvals.ApprovalService>();
        services.AddScoped<Airlock.ControlPlane.Approvals.WebhookService>();
        return services;
    }

    public static ServiceProvider Build(TestStore store, TimeProvider? time = null) =>
        new ServiceCollection().AddControlPlaneCore(store, time).BuildServiceProvider();
}
