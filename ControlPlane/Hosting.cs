using Airlock.ControlPlane.Api;
using Airlock.ControlPlane.Data;
using Airlock.ControlPlane.Identity;
using Airlock.ControlPlane.Policies;
using Airlock.ControlPlane.Sidecars;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;

namespace Airlock.ControlPlane;

/// <summary>The <c>Add*</c> / <c>Map*</c> steps that Program.cs lists, one per feature.</summary>
internal static class Hosting
{
    /// <summary>
    /// Resolves and checks the state directory (<c>Airlock:StateDirectory</c>, default <c>./.state/controlplane</c>)
    /// and the options validated at start. Returns the state directory.
    /// </summary>
    public static string AddAirlockOptions(this WebApplicationBuilder builder)
    {
        StartupChecks.CheckAirlockSection(builder.Configuration);
        var state = Path.GetFullPath(builder.Configuration["Airlock:StateDirectory"] ?? Path.Combine(".state", "controlplane"));
        try
        {
            // Owner only: it holds the embedded store and the key-ring certificate.
            if (OperatingSystem.IsWindows())
                Directory.CreateDirectory(state);
            else
            {
                Directory.CreateDirectory(state, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                File.SetUnixFileMode(state, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new StartupException($"Airlock:StateDirectory '{state}' cannot be created: {e.Message}", e);
        }
        builder.Services.AddOptions<SnapshotOptions>().Bind(builder.Configuration.GetSection("Airlock:Snapshots")).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddOptions<AgentTokenOptions>().Bind(builder.Configuration.GetSection("Airlock:Identity"))
            .PostConfigure(o =>
            {
                // Canonical form, as OpenIddict writes it into 'iss' (a root URL ends with '/').
                var issuer = o.Issuer ?? builder.Configuration["Airlock:PublicUrl"] ?? builder.Configuration["Kestrel:Endpoints:Http:Url"] ?? "http://127.0.0.1:5080";
                o.Issuer = Uri.TryCreate(issuer, UriKind.Absolute, out var uri) ? uri.AbsoluteUri : issuer;
            })
            .ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddProblemDetails();
        builder.Services.AddExceptionHandler<ApiProblemExceptionHandler>();
        return state;
    }

    public static IHostApplicationBuilder AddAirlockPolicies(this IHostApplicationBuilder builder, string stateDirectory)
    {
        builder.Services.AddDataProtection().SetApplicationName("Airlock").PersistKeysToDbContext<AirlockDbContext>()
            .ProtectKeyRing(builder.Configuration, stateDirectory, productionStore: DataExtensions.IsPostgres(builder.Configuration.GetConnectionString("Airlock") ?? ""));
        builder.Services.AddSingleton<Replicas.ReplicaSignals>();
        builder.Services.AddHostedService<Replicas.ReplicaSignalsConnector>();
        builder.Services.AddSingleton<PolicyChangeNotifier>();
        builder.Services.AddScoped<PolicyStore>();
        builder.Services.AddScoped<Simulator>();
        builder.Services.AddScoped<SnapshotCompiler>();
        builder.Services.AddScoped<Data.AuditQueries>();
        builder.Services.AddScoped<Sessions.DashboardQueries>();
        builder.Services.AddScoped<Sidecars.TargetTests>();
        builder.Services.AddScoped<SnapshotSigningKeys>();
        return builder;
    }

    public static IHostApplicationBuilder AddAirlockSidecars(this IHostApplicationBuilder builder)
    {
        builder.Services.AddGrpc();
        // Recording batches are up to ~1 MiB; SignalR's 32 KiB default would cut them off.
        // MessagePack for sidecars (binary payloads, no base64); browsers' circuits keep JSON.
        var signalR = builder.Services.AddSignalR(o => o.MaximumReceiveMessageSize = 8 * 1024 * 1024).AddMessagePackProtocol();
        // Several replicas on one store: the SignalR backplane (sidecar groups, console circuits) and the
        // replicas' own signals go through one Redis server.
        if (builder.Configuration["Airlock:Redis"] is { Length: > 0 } redis)
            signalR.AddStackExchangeRedis(redis, o =>
            {
                o.Configuration.ChannelPrefix = StackExchange.Redis.RedisChannel.Literal("airlock");
                o.Configuration.AbortOnConnectFail = false;
            });
        builder.Services.AddScoped<Sessions.RecordingIngest>();
        builder.Services.AddScoped<Sessions.SessionQueries>();
        builder.Services.AddScoped<Sessions.SessionControl>();
        builder.Services.AddOptions<Sessions.RecordingOptions>().Bind(builder.Configuration.GetSection("Airlock:Recordings")).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<Sessions.RetentionPurger>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<Sessions.RetentionPurger>());
        builder.Services.AddSingleton<Sessions.SessionNotifier>();
        builder.Services.AddSingleton<SidecarPresence>();
        builder.Services.AddScoped<Approvals.ApprovalService>();
        builder.Services.AddSingleton<Approvals.ApprovalBroadcaster>();
        builder.Services.AddHostedService<Approvals.ApprovalExpiry>();
        builder.Services.AddScoped<Approvals.WebhookService>();
        builder.Services.AddOptions<Approvals.WebhookOptions>().Bind(builder.Configuration.GetSection("Airlock:Webhooks")).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddHttpClient(Approvals.WebhookDispatcher.HttpClientName, c => c.Timeout = Timeout.InfiniteTimeSpan);
        builder.Services.AddSingleton<Approvals.WebhookDispatcher>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<Approvals.WebhookDispatcher>());
        builder.Services.AddScoped<SidecarService>();
        return builder;
    }

    /// <summary>Applies migrations, creates the bootstrap admin and the first signing key.</summary>
    public static async Task InitializeStoreAsync(this WebApplication app)
    {
        using var scope = app.Services.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<AirlockDbContext>();
        var logger = scope.ServiceProvider.GetRequiredService<ILoggerFactory>().CreateLogger("Airlock.Store");
        try
        {
            await db.Database.MigrateAsync();
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw new StartupException($"ConnectionStrings:Airlock: the store cannot be opened or migrated ({db.Database.ProviderName}): {e.Message}", e);
        }
        await Sessions.LegacyEventUpgrade.RunAsync(db, logger, app.Lifetime.ApplicationStopping);
        // Accounts from before security stamps get one (their users sign in again once).
        foreach (var user in await db.Users.Where(u => u.SecurityStamp == "").ToListAsync(app.Lifetime.ApplicationStopping))
            user.SecurityStamp = ConsoleUser.NewSecurityStamp();
        await db.SaveChangesAsync(app.Lifetime.ApplicationStopping);
        logger.LogInformation("Store ready ({Provider})", db.Database.ProviderName);
        await scope.ServiceProvider.GetRequiredService<Bootstrapper>().RunAsync(app.Lifetime.ApplicationStopping);
        await scope.ServiceProvider.GetRequiredService<SnapshotSigningKeys>().EnsureKeyAsync(app.Lifetime.ApplicationStopping);
    }
}
