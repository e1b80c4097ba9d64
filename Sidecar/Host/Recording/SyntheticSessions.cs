using Airlock.Contracts.Recording;
using Airlock.Sidecar.ControlPlane;

namespace Airlock.Sidecar.Recording;

/// <summary>
/// A session generator over the production recorder (enabled by <c>Sidecar:SyntheticSessions</c>):
/// <c>POST /v1/synthetic-sessions?statements=N&amp;delayMs=D&amp;end=true</c> records a session start,
/// N statements and, unless <c>end=false</c>, a session end, and returns the session id at once.
/// Every request presents <c>Sidecar:SyntheticSessionsToken</c> as its bearer token.
/// </summary>
internal static class SyntheticSessions
{
    public static void Map(WebApplication app, string token) =>
        app.MapPost("/v1/synthetic-sessions", (HttpRequest request, int? statements, int? delayMs, bool? end, Guid? session, int? resultBytes, SessionRecorder recorder, LiveSessions live, SidecarIdentity identity, IHostApplicationLifetime lifetime, ILogger<SessionRecorder> logger) =>
        {
            string? header = request.Headers.Authorization;
            var presented = header is not null && header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? header[7..].Trim() : "";
            if (!System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(
                    System.Text.Encoding.UTF8.GetBytes(presented), System.Text.Encoding.UTF8.GetBytes(token)))
                return Results.Problem(statusCode: 401, title: "Token required", detail: "send Sidecar:SyntheticSessionsToken as 'Authorization: Bearer <token>'");
            var id = session ?? Guid.NewGuid();
            if (!recorder.TryRecord(id, RecordingEventTypes.SessionStart,
                    RecordingJson.Encode(new SessionStartPayload("synthetic", "synthetic", "synthetic", identity.SidecarName, "127.0.0.1:0", false))))
                return Results.Problem(statusCode: 503, title: "Recorder full", detail: "the recorder cannot keep up; refusing new sessions (fail closed)");
            var count = Math.Clamp(statements ?? 10, 0, 1_000_000);
            var delay = TimeSpan.FromMilliseconds(Math.Clamp(delayMs ?? 0, 0, 60_000));
            var stop = CancellationTokenSource.CreateLinkedTokenSource(lifetime.ApplicationStopping);
            string? terminated = null;
            var registration = live.Register(id, reason =>
            {
                terminated = reason;
                stop.Cancel();
                return Task.CompletedTask;
            });
            _ = Task.Run(async () =>
            {
                using var registered = registration;
                using var stopping = stop;
                try
                {
                    await RunAsync(recorder, id, count, delay, end ?? true, Math.Clamp(resultBytes ?? 0, 0, 5_000_000), stop.Token);
                }
                catch (OperationCanceledException) when (terminated is not null)
                {
                    while (!recorder.TryRecord(id, RecordingEventTypes.SessionEnd, RecordingJson.Encode(new SessionEndPayload(RecordingLimits.Truncate(terminated, RecordingLimits.MaxReasonChars)))))
                        await Task.Delay(5, lifetime.ApplicationStopping);
                }
            }, lifetime.ApplicationStopping).ContinueWith(
                t => logger.LogWarning("Synthetic session {Session} stopped: {Error}", id, t.Exception?.GetBaseException().Message),
                CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
            return Results.Ok(new { session = id });
        });

    private static async Task RunAsync(SessionRecorder recorder, Guid session, int count, TimeSpan delay, bool end, int resultBytes, CancellationToken ct)
    {
        for (var i = 1; i <= count; i++)
        {
            // The first statement may carry a large result (rows of 100 characters) to exercise large payloads end to end.
            var result = i == 1 && resultBytes > 0
                ? new StatementResult(["filler"], Enumerable.Range(0, Math.Max(1, resultBytes / 106)).Select(r => (IReadOnlyList<string?>)[new string((char)('a' + r % 26), 100)]).ToList(), false)
                : null;
            var payload = RecordingJson.EncodeStatement(new StatementPayload($"SELECT {i} /* synthetic */", [], "read", "allow", null, 0.1, 1, null, result));
            // Fail closed: a statement the recorder cannot take is not "run".
            while (!recorder.TryRecord(session, RecordingEventTypes.Statement, payload))
                await Task.Delay(5, ct);
            if (delay > TimeSpan.Zero)
                await Task.Delay(delay, ct);
        }
        if (end)
            while (!recorder.TryRecord(session, RecordingEventTypes.SessionEnd, RecordingJson.Encode(new SessionEndPayload("client"))))
                await Task.Delay(5, ct);
    }
}
