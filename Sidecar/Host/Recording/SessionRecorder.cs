using System.Buffers;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Threading.Channels;
using Airlock.Contracts.Hubs;
using Airlock.Contracts.Recording;
using Airlock.Sidecar.ControlPlane;
using Airlock.Sidecar.Snapshots;

namespace Airlock.Sidecar.Recording;

/// <summary>
/// Records session events without making the data path wait on disk or network:
/// <list type="number">
/// <item>callers hand events to a bounded channel (<see cref="TryRecord"/>); a full channel is an
/// answer, not a wait: the caller refuses the statement (fail closed — evidence is never dropped);</item>
/// <item>one writer extends each session's hash chain and collects the records in memory;
/// every flush interval (<c>Sidecar:RecordingFlushMilliseconds</c>, and at session end) it appends them to the session's spool
/// file with the chain head signed by the sidecar's enrolled key, and fsyncs — all sessions with
/// new events together (group commit), so the uploader and the control plane see one batch per
/// interval rather than one per session;</item>
/// <item>the uploader sends spooled events and deletes them only once the control plane acknowledged them.</item>
/// </list>
/// After a crash, start-up recovery cuts torn tails and closes sessions left open with
/// <c>session.end</c> "interrupted", so they verify up to their last event.
/// </summary>
public sealed class SessionRecorder : BackgroundService
{
    public const string SpoolExtension = ".spool";

    /// <summary>What the statements recorded through this recorder came to, for the heartbeat.</summary>
    public StatementCounter Statements { get; } = new();

    private readonly Channel<Pending> _channel;
    private readonly int _capacity;
    private readonly ECDsa _signingKey;
    private readonly string _spoolDirectory;
    private readonly TimeProvider _time;
    private readonly ILogger<SessionRecorder> _logger;
    private readonly Dictionary<Guid, OpenSpool> _open = [];
    private readonly ConcurrentDictionary<Guid, bool> _known = new();
    private readonly ConcurrentDictionary<Guid, long> _durableLength = new();
    private volatile bool _unavailable;
    /// <summary>When the appended, not yet durable events of every session are committed; null when there are none.</summary>
    private TimeSpan? _commitDue;

    public SessionRecorder(SidecarIdentity identity, SidecarOptionsSnapshot options, TimeProvider time, ILogger<SessionRecorder> logger, int capacity = 10_000)
    {
        _capacity = capacity;
        _channel = Channel.CreateBounded<Pending>(new BoundedChannelOptions(capacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
        _signingKey = ECDsa.Create();
        _signingKey.ImportPkcs8PrivateKey(identity.SigningKeyPkcs8, out _);
        _spoolDirectory = Path.Combine(options.StateDirectory, "spool");
        FlushInterval = TimeSpan.FromMilliseconds(options.RecordingFlushMilliseconds);
        _time = time;
        _logger = logger;
    }

    public string SpoolDirectory => _spoolDirectory;

    /// <summary>
    /// How long appended events may wait for their fsync and signed head (group commit): the
    /// uploader sends only flushed events, so this bounds the recording lag's floor, and it bounds
    /// the signatures to about (open sessions / interval) per second.
    /// </summary>
    public TimeSpan FlushInterval { get; }

    private static readonly TimeSpan CoalesceDelay = TimeSpan.FromMilliseconds(20);

    /// <summary>Raised after each durable batch; the uploader wakes on it.</summary>
    public event Action? Flushed;

    /// <summary>False while the spool cannot be written (disk full, I/O error): callers refuse new work.</summary>
    public bool IsAvailable => !_unavailable;

    /// <summary>
    /// Queues an event; false when the recorder cannot take it now — the channel is full or the spool
    /// cannot be written — and the caller must refuse the work it describes (fail closed).
    /// </summary>
    /// <summary>True when an event would be taken now: the spool is writable and the channel has room to spare.</summary>
    public bool HasRoom => !_unavailable && _channel.Reader.Count < _capacity * 9 / 10;

    public bool TryRecord(Guid session, string type, byte[] payload) => TryRecord(new Pending(session, _time.GetUtcNow(), type, payload));

    /// <summary>
    /// The same, with the payload encoded later, on the recorder's thread: the data path hands over
    /// what it already holds and goes on forwarding (the encoding is most of an event's cost there).
    /// </summary>
    public bool TryRecord(Guid session, string type, DeferredPayload payload) => TryRecord(new Pending(session, _time.GetUtcNow(), type, payload));

    private bool TryRecord(Pending pending)
    {
        var type = pending.Type;
        if (!_unavailable && _channel.Writer.TryWrite(pending))
        {
            if (Volatile.Read(ref _idle) == 1 && Interlocked.Exchange(ref _idle, 0) == 1)
                _wake.Set();
            var index = Array.IndexOf(_eventTypes, type);
            Interlocked.Increment(ref _taken[index < 0 ? _taken.Length - 1 : index]);
            return true;
        }
        Interlocked.Increment(ref _refused);
        return false;
    }

    // Counters for metrics: events taken per known type (the last slot: any other), and the times a
    // caller found no room (it waits and retries, and refuses its work when the wait runs out).
    private static readonly string[] _eventTypes = [.. RecordingEventTypes.All];
    private readonly long[] _taken = new long[RecordingEventTypes.All.Count + 1];
    private long _refused;

    /// <summary>Events of <paramref name="type"/> taken since start.</summary>
    public long EventsTaken(string type)
    {
        var index = Array.IndexOf(_eventTypes, type);
        return index < 0 ? 0 : Volatile.Read(ref _taken[index]);
    }

    /// <summary>Times since start that an event could not be taken (channel full or spool unwritable).</summary>
    public long Rejections => Volatile.Read(ref _refused);

    /// <summary>Events waiting for the spool writer.</summary>
    public int QueuedEvents => _channel.Reader.Count;

    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        Directory.CreateDirectory(_spoolDirectory);
        Recover();
        var stopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        new Thread(() =>
        {
            try
            {
                Run(stoppingToken);
                stopped.SetResult();
            }
            catch (Exception e)
            {
                stopped.SetException(e);
            }
        }) { IsBackground = true, Name = "airlock-recorder" }.Start();
        return stopped.Task;
    }

    /// <summary>
    /// The writer, on its own thread. Under load it wakes every <see cref="CoalesceDelay"/> and takes
    /// what gathered meanwhile; sessions never wake it (a wake per event — a thread-pool dispatch,
    /// a timer, a context switch on cores the data path needs — cost more than the event's own work).
    /// Only when it found nothing to do does it sleep until the next event signals it.
    /// </summary>
    private void Run(CancellationToken stoppingToken)
    {
        var backlog = new List<Pending>();
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                while (backlog.Count < 1000 && _channel.Reader.TryRead(out var item))
                    backlog.Add(item);
                var unwritten = Write(backlog);
                unwritten.AddRange(FlushDue());
                var busy = backlog.Count >= 1000;
                backlog = unwritten;
                if (backlog.Count > 0)
                {
                    // The spool cannot take them: keep them (never drop evidence), refuse new work, retry.
                    _unavailable = true;
                    stoppingToken.WaitHandle.WaitOne(TimeSpan.FromSeconds(1));
                    continue;
                }
                if (_unavailable)
                {
                    _unavailable = false;
                    _logger.LogInformation("The recording spool is writable again; accepting new work");
                }
                if (busy)
                    continue;
                if (_channel.Reader.Count > 0 || _commitDue is not null)
                {
                    // Events are arriving or waiting for their commit: gather for a slice (the commit
                    // falls due within the flush interval anyway; a session end is flushed at the next slice).
                    stoppingToken.WaitHandle.WaitOne(CoalesceDelay);
                    continue;
                }
                // Idle: sleep until the next event. Published before the last look, so an event
                // written after that look sees the flag and signals.
                Volatile.Write(ref _idle, 1);
                if (_channel.Reader.Count == 0)
                    WaitHandle.WaitAny([_wake, stoppingToken.WaitHandle]);
                Volatile.Write(ref _idle, 0);
            }
        }
        finally
        {
            // Stopping: what was flushed is on disk; open sessions are closed as interrupted on the next start.
            foreach (var spool in _open.Values)
                spool.File.Dispose();
            _open.Clear();
        }
    }

    private readonly AutoResetEvent _wake = new(false);
    private int _idle;

    /// <summary>Appends each session's events to its spool (not yet durable); returns the events that could not be written, in order.</summary>
    private List<Pending> Write(List<Pending> batch)
    {
        var unwritten = new List<Pending>();
        foreach (var group in batch.GroupBy(p => p.Session))
        {
            if (unwritten.Count > 0)
            {
                unwritten.AddRange(group);
                continue;
            }
            OpenSpool? spool = null;
            var appended = 0;
            try
            {
                spool = Open(group.Key);
                if (spool is null)
                    continue;
                foreach (var pending in group)
                {
                    if (spool.Ended)
                    {
                        _logger.LogError("Events for session {Session} after it ended were refused", group.Key);
                        break;
                    }
                    RecordCodec.WriteEvent(spool.Buffer, pending.Session, spool.Seq + 1, pending.Time, pending.Type, Checked(pending), spool.Hash);
                    spool.Appended();
                    spool.Unflushed.Add(pending);
                    _commitDue ??= Now + FlushInterval;
                    spool.Ended = pending.Type == RecordingEventTypes.SessionEnd;
                    appended++;
                }
            }
            catch (IOException e)
            {
                LogSpoolFailure(e);
                unwritten.AddRange(spool is null ? group : [.. Rollback(spool), .. group.Skip(appended)]);
            }
        }
        return unwritten;
    }

    /// <summary>
    /// The event's payload, checked against <see cref="RecordingLimits.MaxEventPayloadBytes"/> before
    /// it is written: every producer caps its fields, so an oversized payload is a bug, and it is
    /// recorded as a placeholder that says so rather than written — one record too large for the
    /// spool or an upload would stall the whole recording behind it.
    /// </summary>
    private byte[] Checked(Pending pending)
    {
        var payload = pending.Encoded();
        if (payload.Length <= RecordingLimits.MaxEventPayloadBytes)
            return payload;
        _logger.LogError("A {Type} event of session {Session} encoded to {Bytes} bytes, over the {Limit}-byte event limit; recorded as omitted",
            pending.Type, pending.Session, payload.Length, RecordingLimits.MaxEventPayloadBytes);
        return pending.Replace(RecordingJson.Encode(new OmittedPayload(true, payload.Length, $"the payload was over the {RecordingLimits.MaxEventPayloadBytes}-byte event limit")));
    }

    /// <summary>
    /// Group commit: appended events become durable — a signed chain head, then fsync — for every
    /// session at once when the commit falls due (<see cref="FlushInterval"/> after the first of them
    /// was appended), and at once for a session that ended. Returns the events of spools that could
    /// not be flushed (rolled back, to be written again).
    /// </summary>
    private List<Pending> FlushDue()
    {
        var unwritten = new List<Pending>();
        var due = Now >= _commitDue;
        var flushed = false;
        foreach (var spool in _open.Values.Where(s => s.Unflushed.Count > 0 && (s.Ended || due)).ToList())
        {
            try
            {
                spool.Buffer.Write(RecordCodec.Encode(EventChain.SignHead(spool.Session, spool.Seq, Convert.ToHexStringLower(spool.Hash), _signingKey)));
                spool.File.Write(spool.Buffer.WrittenSpan);
                spool.File.Flush(flushToDisk: true);
            }
            catch (IOException e)
            {
                LogSpoolFailure(e);
                unwritten.AddRange(Rollback(spool));
                continue;
            }
            spool.MarkDurable();
            spool.Unflushed.Clear();
            spool.ClearBuffer();
            flushed = true;
            if (spool.Ended)
            {
                spool.File.Dispose();
                _open.Remove(spool.Session);
                _durableLength.TryRemove(spool.Session, out _);
            }
            else
            {
                _durableLength[spool.Session] = spool.File.Position;
            }
        }
        if (!_open.Values.Any(s => s.Unflushed.Count > 0))
            _commitDue = null;
        if (flushed)
            Flushed?.Invoke();
        return unwritten;
    }

    /// <summary>Logged once per outage (the retry runs every second), again only once it recovered.</summary>
    private void LogSpoolFailure(IOException e)
    {
        if (_unavailable)
            _logger.LogDebug("The recording spool still cannot be written: {Error}", e.Message);
        else
            _logger.LogError("Cannot write the recording spool ({Error}); new statements are refused until it can", e.Message);
    }

    /// <summary>The open spool of a session, created on its first event; null when the session already ended.</summary>
    private OpenSpool? Open(Guid session)
    {
        if (_open.TryGetValue(session, out var spool))
            return spool;
        if (_known.ContainsKey(session))
        {
            _logger.LogError("Events for session {Session} after it ended were refused", session);
            return null;
        }
        var file = new FileStream(Path.Combine(_spoolDirectory, session + SpoolExtension),
            new FileStreamOptions { Mode = FileMode.OpenOrCreate, Access = FileAccess.Write, Share = FileShare.Read, BufferSize = 0 });
        file.Seek(0, SeekOrigin.End);
        _durableLength[session] = file.Position;
        _known[session] = true;
        return _open[session] = new OpenSpool(session, file);
    }

    /// <summary>Cuts the spool back to its last durable record; returns the events that were appended since, to be written again.</summary>
    private List<Pending> Rollback(OpenSpool spool)
    {
        var undone = spool.Unflushed.ToList();
        spool.Unflushed.Clear();
        spool.ReturnToDurable();
        spool.Ended = false;
        spool.ClearBuffer();
        try
        {
            spool.File.SetLength(_durableLength[spool.Session]);
            spool.File.Seek(0, SeekOrigin.End);
        }
        catch (IOException)
        {
            // the reader cuts a torn tail on recovery
        }
        if (spool.DurableSeq == 0)
        {
            // Nothing of this session is on disk: start it afresh on the retry.
            try
            {
                spool.File.Dispose();
            }
            catch (IOException)
            {
                // nothing buffered in the stream; closing cannot lose anything
            }
            _open.Remove(spool.Session);
            _known.TryRemove(spool.Session, out _);
        }
        return undone;
    }

    /// <summary>
    /// How much of a session's spool is durable (flushed and signed); the uploader reads no further,
    /// so the control plane never holds an event a power loss could take back from the spool.
    /// Null when the recorder does not hold the session open: the whole file is durable.
    /// </summary>
    public long? DurableLength(Guid session) => _durableLength.TryGetValue(session, out var length) ? length : null;

    private TimeSpan Now => TimeSpan.FromTicks(_time.GetTimestamp() * TimeSpan.TicksPerSecond / _time.TimestampFrequency);

    /// <summary>
    /// Cuts torn tails, sets damaged spools right without losing a whole record, and closes sessions a
    /// crash left open, so every spool ends in a signed session end.
    /// </summary>
    internal void Recover()
    {
        foreach (var path in Directory.EnumerateFiles(_spoolDirectory, "*" + SpoolExtension))
        {
            if (!Guid.TryParse(Path.GetFileNameWithoutExtension(path), out var session))
                continue;
            _known[session] = true;
            var contents = RecordCodec.Decode(File.ReadAllBytes(path));
            if (contents.Corrupt)
            {
                // Damage, not a torn append: the original is kept aside, and the spool is rewritten as
                // every whole record — those after the damage too — so nothing valid is discarded.
                // (The control plane will see the chain break where records are missing, and say so.)
                File.Copy(path, path + ".corrupt", overwrite: true);
                var whole = new ArrayBufferWriter<byte>();
                foreach (var record in contents.Records)
                {
                    if (record.Event is { } e)
                        whole.Write(RecordCodec.Encode(e));
                    else if (record.Head is { } head)
                        whole.Write(RecordCodec.Encode(head));
                }
                var rewritten = path + ".rewrite";
                using (var copy = new FileStream(rewritten, FileMode.Create, FileAccess.Write, FileShare.None))
                {
                    copy.Write(whole.WrittenSpan);
                    copy.Flush(flushToDisk: true);
                }
                File.Move(rewritten, path, overwrite: true);
                _logger.LogError("Spool {Path} is damaged; the original is kept as .corrupt for inspection, and its {Count} whole records (before and after the damage) are kept and uploaded",
                    path, contents.Records.Count);
            }
            using var file = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.Read);
            if (!contents.Corrupt && file.Length != contents.ValidLength)
            {
                _logger.LogWarning("Spool {Path}: cut a torn record after {Length} bytes", path, contents.ValidLength);
                file.SetLength(contents.ValidLength);
            }
            var last = contents.Records.LastOrDefault(r => r.Event is not null)?.Event;
            if (last is null || last.Type == RecordingEventTypes.SessionEnd)
                continue;
            file.Seek(0, SeekOrigin.End);
            var end = EventChain.Next(last, session, _time.GetUtcNow(), RecordingEventTypes.SessionEnd,
                RecordingJson.Encode(new SessionEndPayload("interrupted: the sidecar stopped while the session was open")));
            file.Write(RecordCodec.Encode(end));
            file.Write(RecordCodec.Encode(EventChain.SignHead(end, _signingKey)));
            file.Flush(flushToDisk: true);
            _logger.LogWarning("Session {Session} was open when the sidecar stopped; recorded as interrupted after event {Seq}", session, last.Seq);
        }
    }

    public override void Dispose()
    {
        _signingKey.Dispose();
        _wake.Dispose();
        base.Dispose();
    }

    private sealed class Pending
    {
        private object _payload; // byte[], or a DeferredPayload until it is encoded (once: a rolled-back event keeps its bytes)

        public Pending(Guid session, DateTimeOffset time, string type, object payload) => (Session, Time, Type, _payload) = (session, time, type, payload);

        public Guid Session { get; }
        public DateTimeOffset Time { get; }
        public string Type { get; }

        public byte[] Encoded() => _payload as byte[] ?? (byte[])(_payload = ((DeferredPayload)_payload).Encode());

        public byte[] Replace(byte[] payload) => (byte[])(_payload = payload);
    }

    private sealed class OpenSpool(Guid session, FileStream file)
    {
        public Guid Session { get; } = session;
        public FileStream File { get; } = file;
        /// <summary>The chain as far as appended (durable or not): the last sequence number and its hash (zeros before the first event).</summary>
        public long Seq { get; private set; }
        public byte[] Hash { get; } = new byte[32];
        /// <summary>The chain as far as it is durable.</summary>
        public long DurableSeq { get; private set; }
        private readonly byte[] _durableHash = new byte[32];

        public void Appended() => Seq++;

        public void MarkDurable()
        {
            DurableSeq = Seq;
            Hash.CopyTo(_durableHash, 0);
        }

        public void ReturnToDurable()
        {
            Seq = DurableSeq;
            _durableHash.CopyTo(Hash, 0);
        }
        /// <summary>Appended since the last flush, kept so a failed flush can write them again.</summary>
        public List<Pending> Unflushed { get; } = [];
        /// <summary>Their records, written to the file in one piece at the flush (so a failure leaves nothing half-written in a buffer).</summary>
        public ArrayBufferWriter<byte> Buffer { get; private set; } = new();

        /// <summary>Empties the buffer; one that grew past 1 MiB (large results) is let go rather than kept for the session's life.</summary>
        public void ClearBuffer()
        {
            if (Buffer.Capacity > 1024 * 1024)
                Buffer = new();
            else
                Buffer.ResetWrittenCount();
        }
        public bool Ended { get; set; }
    }
}

/// <summary>An event payload the recorder encodes on its own thread, from data the caller no longer changes.</summary>
public abstract class DeferredPayload
{
    public abstract byte[] Encode();
}
