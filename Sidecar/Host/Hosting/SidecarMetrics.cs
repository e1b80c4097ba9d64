using System.Diagnostics.Metrics;
using Airlock.Contracts.Recording;
using Airlock.Sidecar.Recording;

namespace Airlock.Sidecar.Hosting;

/// <summary>
/// The sidecar's own instruments (meter <c>Airlock.Sidecar</c>, Prometheus at <c>/metrics</c>). The
/// data path only bumps integers; the exporter reads them when scraped. Names as exported:
/// <list type="bullet">
/// <item><c>airlock_gateway_sessions_active</c>: agent sessions being served;</item>
/// <item><c>airlock_gateway_connections_total{outcome="served|refused"}</c>: agent connections that
/// became sessions, and those refused during startup (bad token, no grant, target unreachable …);</item>
/// <item><c>airlock_gateway_startups_pending</c>: connections accepted and not yet through their
/// startup (TLS, login) — capped by <c>Sidecar:Limits</c>;</item>
/// <item><c>airlock_gateway_admissions_refused_total{reason}</c>: connections closed at once because a
/// limit was reached (<c>pending_startups</c>, <c>pending_startups_per_address</c>, <c>sessions_per_target</c>);</item>
/// <item><c>airlock_gateway_accept_errors_total</c>: failed accepts (e.g. out of file descriptors),
/// each retried with backoff;</item>
/// <item><c>airlock_recorder_events_total{type}</c>: events taken by the recorder, per event type
/// (<c>statement</c> counts the statements recorded);</item>
/// <item><c>airlock_recorder_rejections_total</c>: times the recorder could not take an event (full, or
/// the spool unwritable); the caller waits and retries, and refuses its statement or session when
/// the wait runs out (fail closed) — any rise means the recorder is the bottleneck;</item>
/// <item><c>airlock_recorder_queued_events</c>: events waiting for the spool writer;</item>
/// <item><c>airlock_recording_unacknowledged_events</c>: events read from the spool for upload and
/// not yet acknowledged by the control plane;</item>
/// <item><c>airlock_recording_spool_bytes</c>: size of the spool on disk — it grows while the
/// control plane is unreachable and shrinks as ended sessions are acknowledged;</item>
/// <item><c>airlock_recording_connected</c>: 1 while the upload connection to the control plane is up;</item>
/// <item><c>airlock_recording_uploads_total{outcome="stored|failed"}</c>: uploads to the control plane.</item>
/// </list>
/// </summary>
internal sealed class SidecarMetrics : IDisposable
{
    public const string MeterName = "Airlock.Sidecar";

    private readonly Meter _meter = new(MeterName);
    private long _served;
    private long _refused;
    private long _uploadsStored;
    private long _uploadsFailed;
    private long _unacknowledged;

    private long _acceptErrors;

    public SidecarMetrics(LiveSessions live, SessionRecorder recorder, ControlPlane.HubClient hub, Gateway.ConnectionLimits limits)
    {
        _meter.CreateObservableGauge("airlock.gateway.startups.pending", () => limits.PendingStartups, description: "Connections accepted and not yet through their startup");
        _meter.CreateObservableCounter("airlock.gateway.admissions.refused", () => new[]
        {
            new Measurement<long>(limits.Refused(Gateway.Admission.TooManyPendingStartups), new KeyValuePair<string, object?>("reason", "pending_startups")),
            new Measurement<long>(limits.Refused(Gateway.Admission.TooManyPendingStartupsFromAddress), new KeyValuePair<string, object?>("reason", "pending_startups_per_address")),
            new Measurement<long>(limits.Refused(Gateway.Admission.TooManySessionsOnTarget), new KeyValuePair<string, object?>("reason", "sessions_per_target")),
        }, description: "Connections refused because a limit was reached");
        _meter.CreateObservableCounter("airlock.gateway.accept.errors", () => Volatile.Read(ref _acceptErrors), description: "Failed accepts, retried with backoff");
        _meter.CreateObservableGauge("airlock.gateway.sessions.active", () => live.Count, description: "Agent sessions being served");
        _meter.CreateObservableCounter("airlock.gateway.connections", () => new[]
        {
            new Measurement<long>(Volatile.Read(ref _served), new KeyValuePair<string, object?>("outcome", "served")),
            new Measurement<long>(Volatile.Read(ref _refused), new KeyValuePair<string, object?>("outcome", "refused")),
        }, description: "Agent connections that became sessions, and those refused during startup");
        _meter.CreateObservableCounter("airlock.recorder.events",
            () => RecordingEventTypes.All.Select(type => new Measurement<long>(recorder.EventsTaken(type), new KeyValuePair<string, object?>("type", type))),
            description: "Events taken by the recorder, per type");
        _meter.CreateObservableCounter("airlock.recorder.rejections", () => recorder.Rejections, description: "Times the recorder could not take an event");
        _meter.CreateObservableGauge("airlock.recorder.queued_events", () => recorder.QueuedEvents, description: "Events waiting for the spool writer");
        _meter.CreateObservableGauge("airlock.recording.unacknowledged_events", () => Volatile.Read(ref _unacknowledged), description: "Spooled events not yet acknowledged by the control plane");
        _meter.CreateObservableGauge("airlock.recording.spool_bytes", () => SpoolBytes(recorder.SpoolDirectory), description: "Size of the recording spool on disk");
        _meter.CreateObservableGauge("airlock.recording.connected", () => hub.IsConnected ? 1 : 0, description: "1 while the upload connection to the control plane is up");
        _meter.CreateObservableCounter("airlock.recording.uploads", () => new[]
        {
            new Measurement<long>(Volatile.Read(ref _uploadsStored), new KeyValuePair<string, object?>("outcome", "stored")),
            new Measurement<long>(Volatile.Read(ref _uploadsFailed), new KeyValuePair<string, object?>("outcome", "failed")),
        }, description: "Recording uploads to the control plane");
    }

    private static long SpoolBytes(string directory)
    {
        try
        {
            return new DirectoryInfo(directory).EnumerateFiles("*" + SessionRecorder.SpoolExtension).Sum(f => f.Length);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return 0; // not created yet, or a file went while it was listed
        }
    }

    public void ConnectionServed() => Interlocked.Increment(ref _served);

    public void ConnectionRefused() => Interlocked.Increment(ref _refused);

    public void AcceptFailed() => Interlocked.Increment(ref _acceptErrors);

    public void UploadStored() => Interlocked.Increment(ref _uploadsStored);

    public void UploadFailed() => Interlocked.Increment(ref _uploadsFailed);

    public void SetUnacknowledged(long events) => Volatile.Write(ref _unacknowledged, events);

    public void Dispose() => _meter.Dispose();
}
