using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using Airlock.Contracts.Hubs;
using Airlock.Sidecar.Approvals;
using Airlock.Sidecar.Policy;
using Airlock.Sidecar.Postgres;
using Airlock.Sidecar.Protocols.Postgres;

namespace Airlock.Sidecar.Mcp;

/// <summary>A statement put to approvers: its request, the rule that asked for it, and whether it waits (<c>hold</c>) or was refused until approved (<c>fail-fast</c>).</summary>
public sealed record HeldStatement(ApprovalTicket Ticket, string Rule, string Mode = ApprovalModes.Hold);

/// <summary>What one statement came to on the session: the target's answer, the guard's refusing verdict (if any), and its hold (if any).</summary>
/// <param name="TimedOut">The front door cancelled it: it ran past the statement timeout.</param>
/// <param name="CopyStopped">The front door cancelled it: its COPY output ran past the byte cap.</param>
public sealed record WireAnswer(PgResultReader Result, StatementVerdict? Refused, HeldStatement? Held, double DurationMs, bool TimedOut = false, bool CopyStopped = false);

/// <summary>
/// An agent's MCP session on one target: a real PostgreSQL session of the gateway
/// (<see cref="PostgresSession"/>: the same relay, guard, masking, approvals and recorder as a wire
/// client's), whose client side is this class, speaking the extended protocol over an in-process pipe.
/// One statement at a time (<see cref="Turn"/>). A statement held for approval keeps the turn until it is
/// decided; <see cref="Pending"/> is its answer to come.
/// </summary>
internal sealed class McpWireSession : ISessionObserver, IAsyncDisposable
{
    private const int MaxMessageBytes = 64 * 1024 * 1024;

    // Continuations run inline: the relay's loops and this client hand each message straight on, without a
    // thread-pool hop per direction (the pipe never blocks a writer below its pause threshold).
    private static readonly PipeOptions Inline = new(readerScheduler: PipeScheduler.Inline, writerScheduler: PipeScheduler.Inline, useSynchronizationContext: false);
    private readonly Pipe _toSession = new(Inline);
    private readonly Pipe _fromSession = new(Inline);
    private readonly Stream _client;
    private readonly FrameBuffer _input = new();
    private Action<string>? _end;
    private volatile StatementVerdict? _refused;
    private TaskCompletionSource<HeldStatement> _held = NewHeld();
    private readonly Timer _timeout;
    private TimeSpan _timeoutAfter;
    private volatile bool _timedOut;

    /// <summary>The session's cancel key, as BackendKeyData gave it (the gateway's, like any client's).</summary>
    public (int ProcessId, int Secret)? CancelKey { get; private set; }

    /// <summary>Cancels the running statement (a CancelRequest, as a client would send): how the statement timeout is kept.</summary>
    public Func<Task>? Cancel { get; set; }

    public McpWireSession(string key, AgentPolicy agent, TargetPolicy target, DateTimeOffset tokenExpiresAt)
    {
        Key = key;
        Agent = agent;
        Target = target;
        TokenExpiresAt = tokenExpiresAt;
        _client = new DuplexPipeStream(_fromSession.Reader, _toSession.Writer);
        _timeout = new Timer(_ => TimeOut());
        SessionSide = new DuplexPipeStream(_toSession.Reader, _fromSession.Writer);
    }

    public string Key { get; }
    public AgentPolicy Agent { get; }
    public TargetPolicy Target { get; }
    public DateTimeOffset TokenExpiresAt { get; }

    /// <summary>The gateway's side of the pipe: the session's "client" stream.</summary>
    public Stream SessionSide { get; }

    /// <summary>The recorded session's id, once it started.</summary>
    public Guid? SessionId { get; private set; }

    /// <summary>The gateway serving the session; completes when it ends.</summary>
    public Task Served { get; set; } = Task.CompletedTask;

    public SemaphoreSlim Turn { get; } = new(1, 1);

    /// <summary>A held statement's answer to come, by its approval request.</summary>
    public (HeldStatement Hold, Task<WireAnswer> Answer)? Pending { get; set; }

    public DateTimeOffset LastUsed { get; set; } = DateTimeOffset.UtcNow;

    public bool Ended => Served.IsCompleted;

    void ISessionObserver.Started(Guid session, Action<string> end)
    {
        SessionId = session;
        _end = end;
    }

    void ISessionObserver.Ruled(Ruling ruling)
    {
        if (ruling.Refusal is not null && ruling.Approval is null && ruling.Verdict is { } verdict)
            _refused = verdict;
    }

    void ISessionObserver.Held(ApprovalTicket ticket, ApprovalNeed need)
    {
        // The wait for approvers is not the statement's time: the clock starts again when it is released.
        Arm(Timeout.InfiniteTimeSpan);
        _held.TrySetResult(new HeldStatement(ticket, need.Rule, need.Spec.Mode));
    }

    void ISessionObserver.Released(long requestId)
    {
        if (_running)
            Arm(_timeoutAfter);
    }

    private volatile bool _running;

    /// <summary>Arms (or, with <see cref="Timeout.InfiniteTimeSpan"/>, stops) the statement timeout; a disposed session has none.</summary>
    private void Arm(TimeSpan after)
    {
        try
        {
            _timeout.Change(after, Timeout.InfiniteTimeSpan);
        }
        catch (ObjectDisposedException)
        {
            // the session is closing
        }
    }

    private void TimeOut()
    {
        _timedOut = true;
        _ = Cancel?.Invoke();
    }

    /// <summary>Ends the recorded session (the relay's one way out); the pipe then closes.</summary>
    public void End(string reason) => _end?.Invoke(reason);

    /// <summary>Reads the session's startup answer up to ReadyForQuery; throws with the gateway's refusal when it refused.</summary>
    public async Task OpenAsync(CancellationToken ct)
    {
        var answer = await ReadAnswerAsync(new PgResultReader(0, 0), ct);
        if (answer.Error is { } error)
            throw new GatewayRefusal(error);
    }

    /// <summary>
    /// Sends one statement and returns when its answer is complete. <paramref name="held"/> completes first
    /// when the statement is put on hold for approval (the answer then comes when it is decided).
    /// </summary>
    /// <param name="timeout">The statement is cancelled once it has run this long (time held for approval not counted).</param>
    public Task<WireAnswer> RunAsync(string sql, IReadOnlyList<string?> parameters, int maxRows, int maxBytes, TimeSpan timeout, out Task<HeldStatement> held)
    {
        _refused = null;
        _timedOut = false;
        _copyLimit = maxBytes;
        _copyCancelled = false;
        _timeoutAfter = timeout;
        _held = NewHeld();
        held = _held.Task;
        return RunCoreAsync(sql, parameters, maxRows, maxBytes);
    }

    private async Task<WireAnswer> RunCoreAsync(string sql, IReadOnlyList<string?> parameters, int maxRows, int maxBytes)
    {
        var started = Stopwatch.GetTimestamp();
        var message = new ArrayBufferWriter<byte>();
        PgWire.WriteExtendedQuery(message, sql, parameters, maxRows);
        _running = true;
        Arm(_timeoutAfter);
        try
        {
            await _client.WriteAsync(message.WrittenMemory);
            await _client.FlushAsync();
            var result = await ReadAnswerAsync(new PgResultReader(maxRows, maxBytes), CancellationToken.None);
            return new WireAnswer(result, _refused, _held.Task.IsCompletedSuccessfully ? _held.Task.Result : null, Stopwatch.GetElapsedTime(started).TotalMilliseconds,
                _timedOut && result.Error?.SqlState == SqlStates.QueryCanceled, _copyCancelled && result.Error?.SqlState == SqlStates.QueryCanceled);
        }
        finally
        {
            _running = false;
            Arm(Timeout.InfiniteTimeSpan);
        }
    }

    private async Task<PgResultReader> ReadAnswerAsync(PgResultReader reader, CancellationToken ct)
    {
        var needed = 0;
        while (true)
        {
            if (await _input.FillAsync(_client, needed, ct) == 0)
            {
                // The session ended: its last words (a FATAL) are in what was read, or it simply closed.
                reader.Take((byte)'E', ErrorBody(reader.Error ?? PgError.Fatal(SqlStates.AdminShutdown, "the session ended")));
                return reader;
            }
            needed = 0;
            while (true)
            {
                var status = PgWire.TryReadHeader(_input.Span, MaxMessageBytes, out var type, out var length);
                if (status == FrameStatus.Incomplete)
                {
                    needed = length == 0 ? 5 : 1 + length;
                    break;
                }
                if (status == FrameStatus.Invalid)
                    throw new PgProtocolException($"invalid message from the gateway (length {length})");
                if (type == (byte)'G')
                    await RefuseCopyInAsync(); // COPY FROM STDIN: nothing can follow from an MCP call; the server then fails it
                if (type == (byte)'d' && reader.CopyBytes > _copyLimit && !_copyCancelled)
                {
                    _copyCancelled = true; // COPY TO STDOUT past the byte cap: stop the server rather than read it all
                    _ = Cancel?.Invoke();
                }
                if (type == (byte)'K' && length == 12)
                    CancelKey = (System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(_input.Span[5..]), System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(_input.Span[9..]));
                var done = reader.Take(type, _input.Span.Slice(5, length - 4));
                _input.Consume(1 + length);
                if (done)
                    return reader;
            }
        }
    }

    private long _copyLimit = long.MaxValue;
    private bool _copyCancelled;

    private async Task RefuseCopyInAsync()
    {
        var fail = new ArrayBufferWriter<byte>();
        var body = new ArrayBufferWriter<byte>();
        PgWire.WriteCString(body, "COPY FROM STDIN is not available through MCP: use INSERT with parameters");
        PgWire.WriteMessage(fail, (byte)'f', body.WrittenSpan);
        await _client.WriteAsync(fail.WrittenMemory);
        await _client.FlushAsync();
    }

    private static byte[] ErrorBody(PgError error)
    {
        var buffer = new ArrayBufferWriter<byte>();
        PgWire.WriteError(buffer, error);
        return buffer.WrittenSpan[5..].ToArray();
    }

    private static TaskCompletionSource<HeldStatement> NewHeld() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    public async ValueTask DisposeAsync()
    {
        End("the MCP session closed");
        await _client.DisposeAsync();
        try
        {
            await Served.WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException or IOException)
        {
            // the gateway logs its own failures
        }
        // The input buffer goes back to the pool only once no statement reads it (its read ends with the pipe).
        if (await Turn.WaitAsync(TimeSpan.FromSeconds(10)))
            _input.Dispose();
        await _timeout.DisposeAsync();
    }
}

/// <summary>One end of an in-process byte pipe pair, as a stream: reads from one pipe, writes to the other.</summary>
internal sealed class DuplexPipeStream(PipeReader reader, PipeWriter writer) : Stream
{
    private readonly Stream _read = reader.AsStream();
    private readonly Stream _write = writer.AsStream();

    public override bool CanRead => true;
    public override bool CanWrite => true;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => _read.Read(buffer, offset, count);

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default) => _read.ReadAsync(buffer, ct);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) => _read.ReadAsync(buffer, offset, count, ct);

    public override void Write(byte[] buffer, int offset, int count) => _write.Write(buffer, offset, count);

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct = default) => _write.WriteAsync(buffer, ct);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken ct) => _write.WriteAsync(buffer, offset, count, ct);

    public override void Flush() => _write.Flush();

    public override Task FlushAsync(CancellationToken ct) => _write.FlushAsync(ct);

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            reader.Complete();
            writer.Complete();
        }
        base.Dispose(disposing);
    }
}
