using System.Diagnostics.Metrics;

namespace Airlock.ControlPlane.Observability;

/// <summary>
/// The control plane's own instruments (meter <c>Airlock.ControlPlane</c>, Prometheus at <c>/metrics</c>):
/// <list type="bullet">
/// <item><c>airlock_recordings_events_stored_total</c>: recording events verified and stored;</item>
/// <item><c>airlock_recordings_uploads_total</c>: uploads ingested (each committed and acknowledged);</item>
/// <item><c>airlock_recordings_chain_breaks_total</c>: sessions found broken on ingest (a forged,
/// damaged or out-of-chain event, or a head that does not verify) — any rise deserves a look;</item>
/// <item><c>airlock_recordings_ingest_duration_seconds</c>: time per upload, from receipt to commit.</item>
/// </list>
/// </summary>
internal static class ControlPlaneMetrics
{
    private static readonly Meter Meter = new(ObservabilityExtensions.MeterName);

    public static readonly Counter<long> EventsStored = Meter.CreateCounter<long>("airlock.recordings.events_stored", description: "Recording events verified and stored");

    public static readonly Counter<long> Uploads = Meter.CreateCounter<long>("airlock.recordings.uploads", description: "Recording uploads ingested");

    public static readonly Counter<long> ChainBreaks = Meter.CreateCounter<long>("airlock.recordings.chain_breaks", description: "Sessions found broken on ingest");

    public static readonly Histogram<double> IngestDuration = Meter.CreateHistogram("airlock.recordings.ingest.duration", unit: "s",
        description: "Time per recording upload, from receipt to commit",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] });
}
