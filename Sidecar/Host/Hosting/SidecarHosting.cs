using System.ComponentModel.DataAnnotations;
using Airlock.Sidecar.ControlPlane;
using Airlock.Sidecar.Snapshots;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Airlock.Sidecar.Hosting;

/// <summary>The steps of the sidecar's Program.cs.</summary>
internal static class SidecarHosting
{
    public static readonly Dictionary<string, string> SwitchMappings = new(StringComparer.Ordinal)
    {
        ["--control-plane"] = "Sidecar:ControlPlane",
        ["--enrollment-token"] = "Sidecar:EnrollmentToken",
        ["--state-dir"] = "Sidecar:StateDirectory",
    };

    /// <summary>Binds and validates options before anything starts; a bad option names itself and stops the process.</summary>
    public static SidecarOptions ReadValidatedOptions(this WebApplicationBuilder builder)
    {
        var options = new SidecarOptions();
        try
        {
            // An unknown key is a typo or an option that no longer exists: refuse it rather than run without it.
            builder.Configuration.GetSection(SidecarOptions.Section).Bind(options, binder => binder.ErrorOnUnknownConfiguration = true);
        }
        catch (InvalidOperationException e)
        {
            throw new StartupException($"invalid option in section '{SidecarOptions.Section}': {e.InnerException?.Message ?? e.Message}");
        }
        var results = new List<ValidationResult>();
        if (!Validator.TryValidateObject(options, new ValidationContext(options), results, validateAllProperties: true))
            throw new StartupException(string.Join("; ", results.Select(r => $"{string.Join(",", r.MemberNames.Select(m => $"Sidecar:{m}"))}: {r.ErrorMessage}")));
        options.StateDirectory = Path.GetFullPath(options.StateDirectory);
        builder.Services.AddOptions<SidecarOptions>().Configure(o =>
        {
            builder.Configuration.GetSection(SidecarOptions.Section).Bind(o);
            o.StateDirectory = options.StateDirectory;
        });
        return options;
    }

    public static async Task<SidecarIdentity> EnrollAsync(this WebApplicationBuilder builder, SidecarOptions options)
    {
        using var loggers = LoggerFactory.Create(l => l.AddSimpleConsole(o => o.SingleLine = true));
        return await Enrollment.EnsureEnrolledAsync(options, handler: null, loggers.CreateLogger("Airlock.Sidecar.Enrollment"), CancellationToken.None);
    }

    public static void AddSidecarServices(this WebApplicationBuilder builder, SidecarIdentity identity, SidecarOptions options)
    {
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton(identity);
        builder.Services.AddSingleton(new SidecarOptionsSnapshot(options.StateDirectory, options.RecordingFlushMilliseconds, options.RecordingUploadMilliseconds));
        builder.Services.AddSingleton<SnapshotStore>();
        builder.Services.AddSingleton<Identity.AgentAuthenticator>();
        builder.Services.AddHostedService<PolicySyncClient>();
        builder.Services.AddSingleton<Approvals.ApprovalGate>();
        builder.Services.AddSingleton<HubClient>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<HubClient>());
        builder.Services.AddSingleton<Recording.LiveSessions>();
        builder.Services.AddSingleton<Recording.SessionRecorder>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<Recording.SessionRecorder>());
        builder.Services.AddHostedService<Recording.RecordingUploader>();
        builder.Services.AddSingleton(new Gateway.ConnectionLimits(options.Limits));
        builder.Services.AddSingleton<SidecarMetrics>();
        builder.Services.AddSingleton<Gateway.RefusalReports>();
        builder.Services.AddSingleton<Postgres.UpstreamConnector>();
        builder.Services.AddSingleton<Postgres.CancelKeys>();
        builder.Services.AddSingleton<Postgres.PostgresListeners>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<Postgres.PostgresListeners>());
    }

    public static void AddSidecarObservability(this WebApplicationBuilder builder)
    {
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
            o.UseUtcTimestamp = true;
        });
        builder.Services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService("airlock-sidecar", serviceVersion: SoftwareVersion.Current))
            .WithTracing(t => t.AddAspNetCoreInstrumentation().AddHttpClientInstrumentation().AddSource("Airlock.Sidecar"))
            .WithMetrics(m => m.AddAspNetCoreInstrumentation().AddHttpClientInstrumentation().AddMeter("System.Runtime", SidecarMetrics.MeterName).AddPrometheusExporter());
    }

    /// <summary><c>/healthz</c>: the process runs. <c>/readyz</c>: a valid snapshot is loaded. <c>/metrics</c>: Prometheus.</summary>
    public static void MapSidecarEndpoints(this WebApplication app)
    {
        app.MapGet("/healthz", () => Results.Text("Healthy"));
        app.MapGet("/readyz", (SnapshotStore store, SidecarIdentity identity, Postgres.PostgresListeners listeners) =>
        {
            if (store.Current is { } active)
                return Results.Ok(new
                {
                    ready = true, sidecar = identity.SidecarName, version = active.Signed.Version, expiresAt = active.Signed.ExpiresAt,
                    listeners = listeners.Serving, listenerProblems = listeners.CurrentProblems,
                });
            var reason = store.Latest is { } stale
                ? $"snapshot version {stale.Signed.Version} expired at {stale.Signed.ExpiresAt:O}; failing closed"
                : "no valid policy snapshot loaded yet";
            return Results.Json(new { ready = false, sidecar = identity.SidecarName, reason }, statusCode: StatusCodes.Status503ServiceUnavailable);
        });
        app.MapPrometheusScrapingEndpoint("/metrics");

        var sidecarOptions = app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<SidecarOptions>>().Value;
        if (sidecarOptions.SyntheticSessions)
        {
            Recording.SyntheticSessions.Map(app, sidecarOptions.SyntheticSessionsToken!);
            app.Logger.LogWarning("POST /v1/synthetic-sessions is enabled (Sidecar:SyntheticSessions): it records generated sessions; for load tests only");
        }

        // Diagnostic: "who would this token be here?" — the same check a protocol listener makes.
        // POST the token as the bearer credential; 200 names agent and role, 401 says why not.
        app.MapPost("/v1/identity/check", (HttpRequest request, Identity.AgentAuthenticator authenticator) =>
        {
            string? header = request.Headers.Authorization;
            if (header is null || !header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
                return Results.Problem(statusCode: 401, title: "No token", detail: "send the agent token as 'Authorization: Bearer <token>'");
            var check = authenticator.Authenticate(header["Bearer ".Length..].Trim());
            return check.IsValid
                ? Results.Ok(new { agent = check.Agent!.Name, agentId = check.Agent.Id, role = check.Agent.Role, expiresAt = check.ExpiresAt })
                : Results.Problem(statusCode: 401, title: "Token refused", detail: check.Reason);
        });
    }
}
