using System.Globalization;
using Airlock.Contracts.Hubs;
using Airlock.Contracts.Recording;
using Airlock.Sidecar.ControlPlane;
using Airlock.Sidecar.Snapshots;

namespace Airlock.Sidecar.Recording;

/// <summary>
/// Streams spooled events to the control plane and forgets only what it acknowledged:
/// <list type="number">
/// <item>per spool it remembers how far it has read, so each pass reads only new bytes;</item>
/// <item>one upload carries events of many sessions (≤ <see cref="MaxBatchEvents"/>, ≤ <see cref="MaxBatchBytes"/>);</item>
/// <item>the acknowledgement names, per session, the highest stored sequence, kept in an <c>.ack</c> file;</item>
/// <item>a spool whose session ended and is acknowledged to its last event is deleted;</item>
/// <item>uploads start at most every <c>Sidecar:RecordingUploadMilliseconds</c> unless a backlog is
/// waiting: the control plane's cost is mostly per upload, not per event.</item>
/// </list>
/// After a reconnect or a restart the upload resumes after the acknowledged sequence; duplicates are
/// ignored by the control plane.
/// </summary>
internal sealed class RecordingUploader(SessionRecorder recorder, HubClient hub, Hosting.SidecarMetrics metrics, SidecarOptionsSnapshot options, ILogger<RecordingUploader> logger) : BackgroundService
{
    private readonly TimeSpan _uploadInterval = TimeSpan.FromMilliseconds(options.RecordingUploadMilliseconds);

    public const int MaxBatchEvents = 5000;

    /// <summary>
    /// Event bytes per upload, never exceeded: with at most <see cref="MaxBatchEvents"/> signed heads
    /// (about 200 bytes each) and MessagePack's framing, an upload stays well under the control
    /// plane's 8 MiB hub message limit, whatever the records — a larger message would drop the hub
    /// connection (and heartbeats and terminate with it) on every retry. Events are at most
    /// <see cref="RecordingLimits.MaxEventPayloadBytes"/>, so every one fits.
    /// </summary>
    public const int MaxBatchBytes = 4 * 1024 * 1024;

    /// <summary>Raised when the control plane acknowledged a session through a sequence number.</summary>
    public event Action<Guid, long>? Acknowledged;

    private sealed class SpoolState
    {
        public long Acked;
        public long ReadOffset;
        public readonly List<PendingRecord> Pending = [];
        public readonly List<ChainHeadSignature> Heads = [];
        public bool Ended;
        public long LastSeq;
        public long AckWrittenAt; // Stopwatch timestamp; 0 = never, long ago
        /// <summary>Uploads in a row whose events the control plane did not store; 0 while it stores them.</summary>
        public int Refusals;
        public long RetryAt; // Stopwatch timestamp before which the session is left out of uploads
        public bool Oversized; // its next record can never be uploaded (logged once)
    }

    /// <summary>
    /// A session whose sent events the control plane did not store (its chain broke at ingest, it
    /// belongs to another sidecar, it cannot be anchored) is sent again after 1, 2, 4 … 60 s, not
    /// with every upload: the refusal will not change by itself soon, and each try costs the control plane.
    /// </summary>
    private static TimeSpan RefusalBackoff(int refusals) => TimeSpan.FromSeconds(Math.Min(60, 1 << Math.Min(refusals - 1, 6)));

    /// <summary>
    /// The <c>.ack</c> mark only spares re-sending acknowledged events after a restart (the control
    /// plane ignores duplicates), so it is rewritten at most this often per session, and at its end.
    /// </summary>
    private static readonly TimeSpan AckMarkInterval = TimeSpan.FromSeconds(1);

    /// <summary>An event record not yet acknowledged: a view into the bytes read from the spool, sent as they are.</summary>
    private readonly record struct PendingRecord(long Seq, byte[] Source, int Offset, int Length)
    {
        public ReadOnlySpan<byte> Bytes => Source.AsSpan(Offset, Length);
    }

    private readonly Dictionary<Guid, SpoolState> _spools = [];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var wake = new SemaphoreSlim(0);
        recorder.Flushed += () => wake.Release();
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                while (true)
                {
                    var started = System.Diagnostics.Stopwatch.GetTimestamp();
                    var sent = await UploadOnceAsync(stoppingToken);
                    if (sent == Upload.Nothing)
                        break;
                    // A full batch means a backlog: no pause. Otherwise let the next batch gather.
                    var left = _uploadInterval - System.Diagnostics.Stopwatch.GetElapsedTime(started);
                    if (sent == Upload.Partial && left > TimeSpan.Zero)
                        await Task.Delay(left, stoppingToken);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                metrics.UploadFailed();
                logger.LogWarning("Recording upload paused: {Error}; events stay spooled", e.Message);
                _spools.Clear(); // re-read from the acknowledged state
            }
            try
            {
                await wake.WaitAsync(TimeSpan.FromSeconds(1), stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private enum Upload { Nothing, Partial, Full }

    /// <summary>Sends one batch of unacknowledged events across spools; says whether it sent nothing, some, or a full batch.</summary>
    private async Task<Upload> UploadOnceAsync(CancellationToken ct)
    {
        if (!Directory.Exists(recorder.SpoolDirectory) || !hub.IsConnected)
            return Upload.Nothing;
        foreach (var path in Directory.EnumerateFiles(recorder.SpoolDirectory, "*" + SessionRecorder.SpoolExtension))
            if (Guid.TryParse(Path.GetFileNameWithoutExtension(path), out var session))
                await ReadNewAsync(session, path, ct);

        var segments = new List<RecordingSegment>();
        var heads = new List<ChainHeadSignature>();
        var events = 0;
        var size = 0;
        // Fair share: every session with pending events gets a slice of the batch, so a few busy
        // sessions cannot starve the others (their lag would grow with the run).
        var now = System.Diagnostics.Stopwatch.GetTimestamp();
        var sendable = _spools.Where(s => s.Value.Pending.Count > 0 && s.Value.RetryAt <= now && !s.Value.Oversized).ToList();
        var share = sendable.Count == 0 ? MaxBatchEvents : Math.Max(50, MaxBatchEvents / sendable.Count);
        var sentThrough = new Dictionary<Guid, long>();
        foreach (var (session, state) in sendable)
        {
            var taken = 0;
            var bytes = 0;
            foreach (var record in state.Pending)
            {
                if (taken >= share || events >= MaxBatchEvents || size + record.Length > MaxBatchBytes)
                    break;
                events++;
                taken++;
                size += record.Length;
                bytes += record.Length;
            }
            if (taken == 0)
            {
                if (state.Pending[0].Length > MaxBatchBytes && !state.Oversized)
                {
                    // Only a spool written by an older sidecar (before events were capped) can hold one.
                    state.Oversized = true;
                    logger.LogError("Session {Session}: event {Seq} is a {Bytes}-byte record, over the {Limit}-byte upload limit; the session's upload stops there and its spool is kept",
                        session, state.Pending[0].Seq, state.Pending[0].Length, MaxBatchBytes);
                }
                continue;
            }
            var segment = new byte[bytes];
            var at = 0;
            foreach (var record in state.Pending.Take(taken))
            {
                record.Bytes.CopyTo(segment.AsSpan(at));
                at += record.Length;
            }
            segments.Add(new RecordingSegment(session, segment));
            var through = state.Pending[taken - 1].Seq;
            sentThrough[session] = through;
            heads.AddRange(state.Heads.Where(h => h.Seq > state.Acked && h.Seq <= through));
            if (events >= MaxBatchEvents || size >= MaxBatchBytes)
                break;
        }
        metrics.SetUnacknowledged(_spools.Values.Sum(s => (long)s.Pending.Count));
        var waiting = sendable.Sum(s => (long)s.Value.Pending.Count);
        if (events == 0)
        {
            Cleanup();
            return Upload.Nothing;
        }

        var ack = await hub.UploadRecordingAsync(new RecordingBatch(segments, heads), ct);
        metrics.UploadStored();
        foreach (var (session, stored) in ack.StoredThrough)
        {
            if (!_spools.TryGetValue(session, out var state) || stored <= state.Acked)
                continue;
            state.Acked = stored;
            state.Pending.RemoveAll(p => p.Seq <= stored);
            state.Heads.RemoveAll(h => h.Seq <= stored);
            if (state.Ended || System.Diagnostics.Stopwatch.GetElapsedTime(state.AckWrittenAt) >= AckMarkInterval)
            {
                await Hosting.StateFiles.WriteAtomicAsync(AckPath(session), System.Text.Encoding.ASCII.GetBytes(stored.ToString(CultureInfo.InvariantCulture)), ct, durable: false);
                state.AckWrittenAt = System.Diagnostics.Stopwatch.GetTimestamp();
            }
            Acknowledged?.Invoke(session, stored);
        }
        foreach (var (session, through) in sentThrough)
        {
            if (!_spools.TryGetValue(session, out var state))
                continue;
            if (state.Acked >= through)
            {
                state.Refusals = 0;
                continue;
            }
            state.Refusals++;
            var backoff = RefusalBackoff(state.Refusals);
            state.RetryAt = System.Diagnostics.Stopwatch.GetTimestamp() + (long)(backoff.TotalSeconds * System.Diagnostics.Stopwatch.Frequency);
            var reason = ack.Refused?.GetValueOrDefault(session) ?? "it gave no reason (its log may say why)";
            logger.LogWarning("The control plane stored session {Session} only through event {Stored} of {Sent} sent: {Reason}; sending again in {Seconds} s",
                session, state.Acked, through, reason, backoff.TotalSeconds);
        }
        metrics.SetUnacknowledged(_spools.Values.Sum(s => (long)s.Pending.Count));
        Cleanup();
        return waiting > events ? Upload.Full : Upload.Partial; // more was waiting than one batch takes
    }

    /// <summary>Reads the records appended since the last pass (all of them the first time, skipping acknowledged ones).</summary>
    private async Task ReadNewAsync(Guid session, string path, CancellationToken ct)
    {
        if (!_spools.TryGetValue(session, out var state))
        {
            var ackPath = AckPath(session);
            state = new SpoolState
            {
                Acked = File.Exists(ackPath) && long.TryParse(await File.ReadAllTextAsync(ackPath, ct), CultureInfo.InvariantCulture, out var a) ? a : 0,
            };
            _spools[session] = state;
        }
        // Nothing new is durable (the recorder holds it open and its durable length is already read),
        // or the session ended and its spool was read to the end: no need to open the file.
        var durable = recorder.DurableLength(session);
        if (durable <= state.ReadOffset || durable is null && state.Ended)
            return;
        byte[] fresh;
        await using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete))
        {
            // Only what the recorder made durable: an event the control plane holds must never be
            // taken back from the spool by a power loss.
            var length = Math.Min(stream.Length, recorder.DurableLength(session) ?? long.MaxValue);
            if (length <= state.ReadOffset)
                return;
            stream.Seek(state.ReadOffset, SeekOrigin.Begin);
            fresh = new byte[length - state.ReadOffset];
            await stream.ReadExactlyAsync(fresh, ct);
        }
        // Only whole records count; a record still being appended is read on the next pass.
        var offset = 0;
        for (int length; (length = RecordCodec.FramedLength(fresh.AsSpan(offset))) > 0; offset += length)
        {
            if (RecordCodec.TryViewEvent(fresh.AsSpan(offset), out var e, out _))
            {
                Add(state, e.Seq, System.Text.Ascii.Equals(e.Type, RecordingEventTypes.SessionEnd), fresh, offset, length);
                continue;
            }
            // A signed head, an event in the first (JSON) spool format, or damage.
            var record = RecordCodec.Decode(fresh.AsSpan(offset, length)).Records.SingleOrDefault();
            if (record?.Event is { } old)
            {
                var encoded = RecordCodec.Encode(old);
                Add(state, old.Seq, old.Type == RecordingEventTypes.SessionEnd, encoded, 0, encoded.Length);
            }
            else if (record?.Head is { } h)
            {
                if (h.Seq > state.Acked)
                    state.Heads.Add(h);
            }
            else
            {
                break; // damaged: the recorder kept it aside on recovery; what follows is not read
            }
        }
        state.ReadOffset += offset;
    }

    private static void Add(SpoolState state, long seq, bool ends, byte[] source, int offset, int length)
    {
        state.LastSeq = seq;
        state.Ended = ends;
        if (seq > state.Acked)
            state.Pending.Add(new PendingRecord(seq, source, offset, length));
    }

    /// <summary>Deletes spools of ended sessions acknowledged to their last event.</summary>
    private void Cleanup()
    {
        foreach (var (session, state) in _spools.Where(s => s.Value.Ended && s.Value.Acked >= s.Value.LastSeq).ToList())
        {
            File.Delete(Path.Combine(recorder.SpoolDirectory, session + SessionRecorder.SpoolExtension));
            File.Delete(AckPath(session));
            _spools.Remove(session);
        }
    }

    private string AckPath(Guid session) => Path.Combine(recorder.SpoolDirectory, session + ".ack");
}
