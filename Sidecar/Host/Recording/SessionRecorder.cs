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
/// <item>one writer extends each session's hash chain, appends to the session's spool file, fsyncs
/// once per batch, and signs the chain head with the sidecar's enrolled key;</item>
/// <item>the uploader sends spooled events and deletes them only once the control plane acknowledged them.</item>
/// </list>
/// After a crash, start-up recovery cuts torn tails and closes sessions left open with
/// <c>session.end</c> "interrupted", so they verify up to their last event.
/// </summary>
public sealed class SessionRecorder : BackgroundService
{
    public const string SpoolExtension = ".spool";

    private readonly Channel<Pending> _channel;
    private readonly ECDsa _signingKey;
    private readonly string _spoolDirectory;
    private readonly TimeProvider _time;
    private readonly ILogger<SessionRecorder> _logger;
    private readonly Dictionary<Guid, (FileStream File, RecordingEvent Last)> _open = [];
    private readonly ConcurrentDictionary<Guid, bool> _known = new();
    private volatile bool _unavailable;

    public SessionRecorder(SidecarIdentity identity, SidecarOptionsSnapshot options, TimeProvider time, ILogger<SessionRecorder> logger, int capacity = 10_000)
    {
        _channel = Channel.CreateBounded<Pending>(new BoundedChannelOptions(capacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
        _signingKey = ECDsa.Create();
        _signingKey.ImportPkcs8PrivateKey(identity.SigningKeyPkcs8, out _);
        _spoolDirectory = Path.Combine(options.StateDirectory, "spool");
        _time = time;
        _logger = logger;
    }

    public string SpoolDirectory => _spoolDirectory;

    /// <summary>Raised after each durable batch; the uploader wakes on it.</summary>
    public event Action? Flushed;

    /// <summary>False while the spool cannot be written (disk full, I/O error): callers refuse new work.</summary>
    public bool IsAvailable => !_unavailable;

    /// <summary>
    /// Queues an event; false when the recorder cannot take it now — the channel is full or the spool
    /// cannot be written — and the caller must refuse the work it describes (fail closed).
    /// </summary>
    public bool TryRecord(Guid session, string type, byte[] payload) =>
        !_unavailable && _channel.Writer.TryWrite(new Pending(session, _time.GetUtcNow(), type, payload));

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        Directory.CreateDirectory(_spoolDirectory);
        Recover();
        var backlog = new List<Pending>();
        try
        {
            while (backlog.Count > 0 || await _channel.Reader.WaitToReadAsync(stoppingToken))
            {
                while (backlog.Count < 1000 && _channel.Reader.TryRead(out var item))
                    backlog.Add(item);
                var unwritten = Write(backlog);
                if (unwritten.Count < backlog.Count)
                    Flushed?.Invoke();
                backlog = unwritten;
                if (backlog.Count > 0)
                {
                    // The spool cannot take them: keep them (never drop evidence), refuse new work, retry.
                    _unavailable = true;
                    await Task.Delay(TimeSpan.FromSeconds(1), _time, stoppingToken);
                }
                else if (_unavailable)
                {
                    _unavailable = false;
                    _logger.LogInformation("The recording spool is writable again; accepting new work");
                }
            }
        }
        catch (OperationCanceledException)
        {
            // stopping: what was written is on disk; open sessions are closed as interrupted on the next start
        }
        finally
        {
            foreach (var (file, _) in _open.Values)
                file.Dispose();
            _open.Clear();
        }
    }

    /// <summary>Appends each session's events durably; returns the events that could not be written, in order.</summary>
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
            try
            {
                WriteSession(group.Key, group);
            }
            catch (IOException e)
            {
                _logger.LogError("Cannot write the recording spool ({Error}); new statements are refused until it can", e.Message);
                unwritten.AddRange(group);
            }
        }
        return unwritten;
    }

    private void WriteSession(Guid session, IEnumerable<Pending> events)
    {
        if (!_open.TryGetValue(session, out var state))
        {
            if (_known.TryGetValue(session, out var started) && started)
            {
                _logger.LogError("Events for session {Session} after it ended were refused", session);
                return;
            }
            var file = new FileStream(Path.Combine(_spoolDirectory, session + SpoolExtension),
                new FileStreamOptions { Mode = FileMode.OpenOrCreate, Access = FileAccess.Write, Share = FileShare.Read });
            file.Seek(0, SeekOrigin.End);
            state = (file, null!);
        }
        var (stream, last) = state;
        var start = stream.Position;
        var ended = false;
        try
        {
            foreach (var pending in events)
            {
                last = EventChain.Next(last, pending.Session, pending.Time, pending.Type, pending.Payload);
                stream.Write(SpoolCodec.Encode(last));
                if (pending.Type == RecordingEventTypes.SessionEnd)
                {
                    ended = true;
                    break;
                }
            }
            stream.Write(SpoolCodec.Encode(EventChain.SignHead(last, _signingKey)));
            stream.Flush(flushToDisk: true);
        }
        catch (IOException)
        {
            // Undo the partial append so the retry writes the same records again, once.
            try
            {
                stream.SetLength(start);
            }
            catch (IOException)
            {
                // the reader cuts a torn tail on recovery
            }
            if (state.Last is null)
                stream.Dispose();
            else
                _open[session] = state;
            throw;
        }
        _known[session] = true;
        if (ended)
        {
            stream.Dispose();
            _open.Remove(session);
        }
        else
        {
            _open[session] = (stream, last);
        }
    }

    /// <summary>Cuts torn tails and closes sessions a crash left open, so every spool ends in a signed session end.</summary>
    private void Recover()
    {
        foreach (var path in Directory.EnumerateFiles(_spoolDirectory, "*" + SpoolExtension))
        {
            if (!Guid.TryParse(Path.GetFileNameWithoutExtension(path), out var session))
                continue;
            _known[session] = true;
            var contents = SpoolCodec.Decode(File.ReadAllBytes(path));
            if (contents.Corrupt)
            {
                _logger.LogError("Spool {Path} is damaged; kept aside as .corrupt for inspection, its valid prefix is uploaded", path);
                File.Copy(path, path + ".corrupt", overwrite: true);
            }
            using var file = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.Read);
            if (file.Length != contents.ValidLength)
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
            file.Write(SpoolCodec.Encode(end));
            file.Write(SpoolCodec.Encode(EventChain.SignHead(end, _signingKey)));
            file.Flush(flushToDisk: true);
            _logger.LogWarning("Session {Session} was open when the sidecar stopped; recorded as interrupted after event {Seq}", session, last.Seq);
        }
    }

    public override void Dispose()
    {
        _signingKey.Dispose();
        base.Dispose();
    }

    private sealed record Pending(Guid Session, DateTimeOffset Time, string Type, byte[] Payload);
}
