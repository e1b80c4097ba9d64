using System.Buffers;
using System.Diagnostics;
using Airlock.Contracts.Recording;
using Airlock.Sidecar.Policy.Masking;
using Airlock.Sidecar.Protocols.Postgres;
using Airlock.Sidecar.Protocols.Sql;

namespace Airlock.Sidecar.Postgres;

/// <summary>
/// The data path of one authenticated session: two loops, one per direction, each the only writer
/// of its destination.
/// <list type="bullet">
/// <item>Agent → target: only whole messages are forwarded; each statement-bearing message is judged
/// first (<see cref="PostgresStatementGuard"/>) and waits for room in the recorder (fail closed). A
/// refused message never goes upstream: a stand-in that the server is sure to refuse goes in its
/// place, so the server's transaction fails as the agent's does, and extended-protocol messages up to
/// the next Sync are skipped by the server itself; every pipeline stays in step.</item>
/// <item>The agent hears the refusal in order: the target→agent loop, the only writer of the agent's
/// side, writes the gateway's 42501 error in place of the server's answer to the stand-in.</item>
/// <item>Target → agent: messages are forwarded as they came; the ledger follows them to record
/// every statement with its duration, rows, error and first result rows.</item>
/// <item>Writes are coalesced: the whole messages of one read leave in one write, straight from the
/// input buffer (<see cref="FrameBuffer"/>), as pgbouncer does.</item>
/// <item>Memory per connection is bounded by the largest message (<c>MaxMessageBytes</c>) and the
/// result capture cap; results are never buffered whole.</item>
/// </list>
/// Any end — agent gone, target gone, protocol violation, terminate — goes through <see cref="End"/>:
/// the first reason wins, both loops stop at a message boundary, and the agent gets the FATAL (if
/// any) from the target→agent loop, so it never lands inside another message.
/// </summary>
internal sealed class PostgresRelay(
    Stream client,
    UpstreamSession upstream,
    StatementLedger ledger,
    SessionRecording recording,
    PostgresGatewayOptions options,
    PostgresStatementGuard guard,
    SessionMasking? masking = null,
    Approvals.SessionApprovals? approvals = null)
{
    private readonly Lock _endLock = new();
    private readonly CancellationTokenSource _ended = new(); // not disposed: End() may still run after the loops
    /// <summary>
    /// Fires <see cref="WriteGrace"/> after the end: a peer that stopped reading cannot hold a write
    /// (and so the session, and the target's backend) forever once the session was ended.
    /// </summary>
    private readonly CancellationTokenSource _abandonWrites = new();
    private static readonly TimeSpan WriteGrace = TimeSpan.FromSeconds(5);
    private volatile bool _clientWriteAbandoned;

    private string? _endReason;
    private PgError? _endError;

    /// <summary>Runs until the session ends; returns why it ended.</summary>
    public async Task<string> RunAsync()
    {
        var agentLoop = Task.Run(() => EndOnFailureAsync(AgentToTargetAsync));
        var targetLoop = Task.Run(() => EndOnFailureAsync(TargetToAgentAsync));
        await Task.WhenAll(agentLoop, targetLoop);

        lock (_endLock)
            return _endReason ?? "ended";
    }

    /// <summary>What broke a loop unexpectedly (a bug), for the caller to log; null when nothing did.</summary>
    public Exception? Failure { get; private set; }

    /// <summary>
    /// A loop that fails unexpectedly ends the session (fail closed; the agent gets XX000 from the
    /// target→agent loop, which catches its own faults for that) instead of leaving the other loop
    /// waiting for a peer that waits for it.
    /// </summary>
    private async Task EndOnFailureAsync(Func<Task> loop)
    {
        try
        {
            await loop();
        }
        catch (Exception e)
        {
            Fail(e);
        }
    }

    private void Fail(Exception e)
    {
        lock (_endLock)
            Failure ??= e;
        End($"error: the gateway failed: {e.GetType().Name}: {e.Message}", PgError.Fatal(SqlStates.InternalError, "internal error in the Airlock gateway; the session is ended"));
    }

    /// <summary>Ends the session with a reason; the agent gets <paramref name="error"/> (a FATAL) if given. The first call wins.</summary>
    public void End(string reason, PgError? error)
    {
        lock (_endLock)
        {
            if (_endReason is not null)
                return;
            _endReason = reason;
            _endError = error;
        }
        // Wakes both loops' reads; their continuations run on the thread pool, not inside this call.
        // Writes in flight get a grace period to finish (the agent should still hear why).
        _ = _ended.CancelAsync();
        _abandonWrites.CancelAfter(WriteGrace);
    }

    private bool Ended
    {
        get
        {
            lock (_endLock)
                return _endReason is not null;
        }
    }

    private async Task AgentToTargetAsync()
    {
        using var input = new FrameBuffer();
        try
        {
            var needed = 0;
            while (!Ended)
            {
                if (await FillFromClientAsync(input, needed) == 0)
                {
                    End(input.Length == 0 ? "client disconnected" : "error: the client disconnected in the middle of a message", null);
                    return;
                }
                // One clock reading per read: its messages arrived together (a reading per message cost
                // more than the ledger's bookkeeping of it).
                var arrived = Stopwatch.GetTimestamp();
                // Whole messages are checked one by one and leave together, straight from the input; a refused
                // one is replaced by its stand-in (then the batch is copied: rare).
                var forwarded = 0;
                var sentUpTo = 0;
                ArrayBufferWriter<byte>? rewritten = null;
                var terminate = false;
                needed = 0;
                while (!terminate)
                {
                    var status = PgWire.TryReadHeader(input.Span[forwarded..], options.MaxMessageBytes, out var type, out var length);
                    if (status == FrameStatus.Incomplete)
                    {
                        needed = length == 0 ? 5 : 1 + length;
                        break;
                    }
                    if (status == FrameStatus.Invalid)
                    {
                        End($"error: the agent sent a message '{Printable(type)}' with invalid length {length}", length > options.MaxMessageBytes
                            ? PgError.Fatal(SqlStates.ProgramLimitExceeded, $"message of {length} bytes is over the gateway's {options.MaxMessageBytes}-byte limit")
                            : PgError.Fatal(SqlStates.ProtocolViolation, $"invalid message length {length}"));
                        return;
                    }
                    if (!PgWire.IsFrontendType(type))
                    {
                        End($"error: the agent sent an unknown message type '{Printable(type)}'", PgError.Fatal(SqlStates.ProtocolViolation, $"invalid frontend message type '{Printable(type)}'"));
                        return;
                    }
                    if (IsStatementBearing(type) && !await recording.WaitForRoomAsync())
                    {
                        End("error: the recorder cannot keep up", PgError.Fatal(SqlStates.InsufficientResources, "the session cannot be recorded right now, so it is ended (fail closed); try again later"));
                        return;
                    }
                    if (IsAnswered(type))
                    {
                        try
                        {
                            var ruling = await guard.JudgeAsync(type, input.Memory.Slice(forwarded + 5, length - 4));
                            if (ruling?.Approval is { } need && approvals is not null)
                            {
                                // Everything before the message goes now; the message and everything after it wait.
                                if (!await ForwardAsync(input, forwarded, sentUpTo, rewritten))
                                    return;
                                forwarded = sentUpTo = 0;
                                rewritten = null;
                                var messageType = type;
                                var messageLength = length;
                                ruling = await DecideApprovalAsync(ruling.Value, need, input,
                                    () => guard.JudgeAsync(messageType, input.Memory.Slice(5, messageLength - 4))); // the message is first in the input now
                                if (ruling is null)
                                    return; // the session ended while the statement waited
                                arrived = Stopwatch.GetTimestamp(); // its duration counts from when it may run
                            }
                            InspectFrontend(input.Span.Slice(forwarded + 5, length - 4), type, arrived, ruling);
                            if (ruling?.Refusal is not null)
                            {
                                rewritten ??= new ArrayBufferWriter<byte>(forwarded + 64);
                                rewritten.Write(input.Span[sentUpTo..forwarded]);
                                WriteStandIn(rewritten, type);
                                sentUpTo = forwarded + 1 + length;
                            }
                        }
                        catch (PgProtocolException e)
                        {
                            End($"error: the agent broke the protocol: {e.Message}", PgError.Fatal(SqlStates.ProtocolViolation, e.Message));
                            return;
                        }
                    }
                    forwarded += 1 + length;
                    terminate = type == (byte)'X';
                }
                if (!await ForwardAsync(input, forwarded, sentUpTo, rewritten))
                    return;
                if (terminate)
                {
                    End("client", null);
                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
            // End() woke the read
        }
        catch (IOException)
        {
            End("client connection lost", null);
        }
        catch (ObjectDisposedException)
        {
            End("client connection lost", null);
        }
    }

    /// <summary>
    /// Sends the first <paramref name="upTo"/> bytes of the input upstream — as they came, or as rewritten
    /// (stand-ins in place of refused messages; <paramref name="sentUpTo"/> is where the rewrite stopped) —
    /// and consumes them. False when the target is gone (the session is ended).
    /// </summary>
    private async ValueTask<bool> ForwardAsync(FrameBuffer input, int upTo, int sentUpTo, ArrayBufferWriter<byte>? rewritten)
    {
        if (upTo == 0)
            return true;
        rewritten?.Write(input.Span[sentUpTo..upTo]);
        if (!await TryWriteAsync(upstream.Stream, rewritten is null ? input.Memory[..upTo] : rewritten.WrittenMemory, toClient: false))
        {
            End("target closed the connection", PgError.Fatal(SqlStates.ConnectionFailure, "the target closed the connection"));
            return false;
        }
        input.Consume(upTo);
        return true;
    }

    // --- approvals ----------------------------------------------------------------------------
    // A held statement waits in the agent→target loop, which stops reading the agent's messages as
    // they are parsed; a watcher reads what the agent sends meanwhile into a side buffer (to notice a
    // client that goes away), and hands it, and its read in flight, back to the loop afterwards.

    private readonly byte[] _asideBuffer = new byte[4096];
    private ArrayBufferWriter<byte> _aside = new();
    private Task<int>? _carriedRead;
    private readonly SemaphoreSlim _clientWrite = new(1, 1);

    /// <summary>Reads the agent's next bytes: first those of a read begun while a statement was held.</summary>
    private ValueTask<int> FillFromClientAsync(FrameBuffer input, int needed) =>
        _carriedRead is null ? input.FillAsync(client, needed, _ended.Token) : CarriedAsync(input);

    private async ValueTask<int> CarriedAsync(FrameBuffer input)
    {
        var carried = _carriedRead!;
        _carriedRead = null;
        var read = await carried;
        input.Append(_asideBuffer.AsSpan(0, read));
        return read;
    }

    /// <summary>
    /// Puts a statement to approvers: its final ruling (approved, or refused with the reason), or null when
    /// the session ended meanwhile. An approved statement is judged again before it runs (<paramref name="rejudge"/>):
    /// the rules may have changed while it waited.
    /// </summary>
    private async Task<Ruling?> DecideApprovalAsync(Ruling ruling, Approvals.ApprovalNeed need, FrameBuffer input, Func<ValueTask<Ruling?>> rejudge)
    {
        var raised = await approvals!.RaiseAsync(need);
        if (raised.Refusal is { } refusal)
            return ruling with { Refusal = refusal, Approval = null };
        var ticket = raised.Ticket!;
        if (ticket.Status == Contracts.Hubs.ApprovalOutcomes.Approved)
            return ruling with { Refusal = null, Approval = null };

        var notice = new ArrayBufferWriter<byte>();
        PgWire.WriteError(notice, Approvals.SessionApprovals.HoldNotice(need, ticket), (byte)'N');
        if (!await TryWriteAsync(client, notice.WrittenMemory, toClient: true))
        {
            End("client connection lost", null);
            return null;
        }
        using var holdOver = new CancellationTokenSource();
        var watcher = WatchClientAsync(input.Length, holdOver.Token);
        (Approvals.HoldEnd End, Contracts.Hubs.ApprovalDecision? Decision) outcome;
        try
        {
            outcome = await approvals.WaitAsync(ticket, watcher, _ended.Token, KeepTargetAliveAsync);
        }
        finally
        {
            holdOver.Cancel();
            await watcher.ContinueWith(_ => { }, TaskScheduler.Default);
            input.Append(_aside.WrittenSpan);
            _aside = _aside.Capacity > FrameBuffer.DefaultSize ? new ArrayBufferWriter<byte>() : _aside; // a long hold's bytes are not kept for the session's life
            _aside.ResetWrittenCount();
        }
        switch (outcome.End)
        {
            case Approvals.HoldEnd.Approved:
                if (await rejudge() is { } now && now.Refusal is not null && now.Approval?.Decision.DecidedBy != need.Decision.DecidedBy)
                {
                    await approvals.NotRunAsync(ticket.RequestId, "the rules changed while it waited");
                    return ruling with
                    {
                        Refusal = now.Refusal with { Message = $"approval request #{ticket.RequestId} was approved, but the rules changed while the statement waited and now refuse it: {now.Refusal.Message}" },
                        Approval = null,
                    };
                }
                await approvals.ExecutedAsync(ticket.RequestId);
                return ruling with { Refusal = null, Approval = null };
            case Approvals.HoldEnd.ClientGone:
                End("client disconnected while a statement waited for approval", null);
                return null;
            case Approvals.HoldEnd.SessionEnded:
                return null;
            default:
                return ruling with { Refusal = Approvals.SessionApprovals.Refusal(need, ticket, outcome.End, outcome.Decision), Approval = null };
        }
    }

    /// <summary>
    /// A Flush to the target while a statement is held: it has no answer, and it keeps the server's idle
    /// timeouts (armed only after ReadyForQuery) and anything idle-minded between the two from ending the session.
    /// </summary>
    private async ValueTask KeepTargetAliveAsync()
    {
        if (!await TryWriteAsync(upstream.Stream, FlushMessage, toClient: false))
            End("target closed the connection", PgError.Fatal(SqlStates.ConnectionFailure, "the target closed the connection"));
    }

    private static readonly byte[] FlushMessage = [(byte)'H', 0, 0, 0, 4];

    /// <summary>
    /// Reads what the agent sends while a statement is held; completes when the agent is gone (or the hold
    /// is over). What it keeps, with what the loop holds already (<paramref name="held"/>), stays within one
    /// message's limit: beyond it the agent waits (TCP back-pressure), hold after hold.
    /// </summary>
    private async Task WatchClientAsync(int held, CancellationToken holdOver)
    {
        var over = Task.Delay(Timeout.Infinite, holdOver);
        while (!holdOver.IsCancellationRequested)
        {
            if (held + _aside.WrittenCount > options.MaxMessageBytes)
            {
                await over.ContinueWith(_ => { }, TaskScheduler.Default); // enough kept: the agent waits (TCP back-pressure)
                return;
            }
            _carriedRead ??= client.ReadAsync(_asideBuffer, _ended.Token).AsTask();
            if (await Task.WhenAny(_carriedRead, over) == over)
                return;
            int read;
            try
            {
                read = await _carriedRead;
            }
            catch (Exception)
            {
                return; // gone; the loop's next read fails the same way
            }
            if (read == 0)
                return; // gone; _carriedRead stays, and the loop ends the session on it
            _aside.Write(_asideBuffer.AsSpan(0, read));
            _carriedRead = null;
        }
    }

    private async Task TargetToAgentAsync()
    {
        using var input = new FrameBuffer();
        var lastWasFatal = false;
        try
        {
            var needed = 0;
            while (true)
            {
                var atEnd = await input.FillAsync(upstream.Stream, needed, _ended.Token) == 0;
                var arrived = Stopwatch.GetTimestamp();
                var forwarded = 0;
                var sentUpTo = 0;
                ArrayBufferWriter<byte>? rewritten = null;
                needed = 0;
                while (true)
                {
                    var status = PgWire.TryReadHeader(input.Span[forwarded..], options.MaxMessageBytes, out var type, out var length);
                    if (status == FrameStatus.Incomplete)
                    {
                        needed = length == 0 ? 5 : 1 + length;
                        break;
                    }
                    if (status == FrameStatus.Invalid || !PgWire.IsBackendType(type))
                    {
                        End($"error: the target sent an invalid message ('{Printable(type)}', length {length})",
                            length > options.MaxMessageBytes
                                ? PgError.Fatal(SqlStates.ProgramLimitExceeded, $"a result message of {length} bytes is over the gateway's {options.MaxMessageBytes}-byte limit")
                                : PgError.Fatal(SqlStates.ProtocolViolation, "the target sent an invalid message; the session is ended"));
                        break;
                    }
                    if (type == (byte)'S')
                    {
                        try
                        {
                            var reader = new PgReader(input.Span.Slice(forwarded + 5, length - 4));
                            guard.OnParameterStatus(reader.ReadCString(), reader.ReadCString());
                        }
                        catch (PgProtocolException e)
                        {
                            End($"error: the target broke the protocol: {e.Message}", PgError.Fatal(SqlStates.ProtocolViolation, "the target sent a malformed message; the session is ended"));
                            break;
                        }
                    }
                    else if (type is not ((byte)'d' or (byte)'A') || (type == (byte)'d' && _copy is not null) || (type == (byte)'A' && masking is { Active: true }))
                    {
                        try
                        {
                            PgError? replacement = null;
                            if (type == (byte)'E')
                                lock (ledger)
                                    replacement = ledger.BlockedAtHead;
                            PgError? notice;
                            if (replacement is null && masking is { Active: true } && MaskBackend(type, input.Span.Slice(forwarded + 5, length - 4), arrived, out notice))
                            {
                                // Masked rows, COPY data or a withheld message go instead (the ledger saw them as sent).
                                rewritten ??= ToAgentBuffer();
                                rewritten.Write(input.Span[sentUpTo..forwarded]);
                                rewritten.Write(_maskScratch.WrittenSpan);
                                _maskScratch.ResetWrittenCount();
                                sentUpTo = forwarded + 1 + length;
                            }
                            else
                                notice = Inspect(input.Span.Slice(forwarded + 5, length - 4), type, frontend: false, arrived);
                            if (replacement is not null)
                            {
                                // The server refused the stand-in of a message the gateway refused: the agent hears the gateway's reason.
                                rewritten ??= ToAgentBuffer();
                                rewritten.Write(input.Span[sentUpTo..forwarded]);
                                PgWire.WriteError(rewritten, replacement);
                                sentUpTo = forwarded + 1 + length;
                                notice = null;
                            }
                            lastWasFatal = type == (byte)'E' && notice?.Severity is "FATAL" or "PANIC";
                            if (type == (byte)'N' && notice is not null)
                                await recording.RecordAsync(RecordingEventTypes.Notice, RecordingJson.Encode(new NoticePayload(
                                    RecordingLimits.Truncate(notice.Severity, RecordingLimits.MaxSeverityChars), RecordingLimits.Truncate(notice.Message, RecordingLimits.MaxMessageChars))));
                        }
                        catch (Exception e) when (e is PgProtocolException or FormatException)
                        {
                            End($"error: the target broke the protocol: {e.Message}", PgError.Fatal(SqlStates.ProtocolViolation, "the target sent a malformed message; the session is ended"));
                            break;
                        }
                        catch (MaskingFailure e)
                        {
                            End($"error: {e.Message}", PgError.Fatal(SqlStates.InsufficientPrivilege, e.Message));
                            break;
                        }
                    }
                    forwarded += 1 + length;
                }
                if (forwarded > 0)
                {
                    rewritten?.Write(input.Span[sentUpTo..forwarded]);
                    if (!await TryWriteAsync(client, rewritten is null ? input.Memory[..forwarded] : rewritten.WrittenMemory, toClient: true))
                    {
                        End("client connection lost", null);
                        break;
                    }
                    input.Consume(forwarded);
                }
                await RecordCompletedAsync();
                if (atEnd)
                {
                    End(lastWasFatal ? "server ended the session" : "target closed the connection",
                        lastWasFatal ? null : PgError.Fatal(SqlStates.ConnectionFailure, "the target closed the connection unexpectedly"));
                    break;
                }
                if (Ended)
                    break;
            }
        }
        catch (OperationCanceledException)
        {
            // End() woke the read
        }
        catch (IOException)
        {
            End("target connection lost", PgError.Fatal(SqlStates.ConnectionFailure, "the connection to the target was lost"));
        }
        catch (ObjectDisposedException)
        {
            End("target connection lost", null);
        }
        catch (RecorderUnavailableException)
        {
            End("error: the recorder cannot keep up", PgError.Fatal(SqlStates.InsufficientResources, "the session cannot be recorded right now, so it is ended (fail closed); try again later"));
        }
        catch (Exception e)
        {
            // A fault of the gateway's own (a bug): this loop is the agent's only writer and it stopped
            // between messages (a batch is inspected whole before it is written), so the agent still hears XX000.
            Fail(e);
        }

        // The agent hears why, at a message boundary (nothing else is written to it after this).
        PgError? error;
        string? reason;
        lock (_endLock)
            (error, reason) = (_endError, _endReason);
        // What was still running upstream goes into the recording as not finished, with why.
        lock (ledger)
            ledger.AbandonPending(PgError.Error(SqlStates.AdminShutdown, $"not finished: the session ended ({reason ?? "the target stopped answering"})"), Stopwatch.GetTimestamp());
        try
        {
            await RecordCompletedAsync();
        }
        catch (RecorderUnavailableException)
        {
            // the statements ran; their completion cannot be recorded — the session end says why
        }
        // Not after an abandoned write: the agent's stream may end inside a message.
        if (error is not null && !_clientWriteAbandoned)
        {
            var fatal = new ArrayBufferWriter<byte>();
            PgWire.WriteError(fatal, error);
            await TryWriteAsync(client, fatal.WrittenMemory, toClient: true);
        }
    }

    private readonly ArrayBufferWriter<byte> _maskScratch = new(); // the target→agent loop's: what goes instead of a masked message
    private readonly ArrayBufferWriter<byte> _toAgent = new(); // the target→agent loop's batch when some of it is rewritten (reused: masked results rewrite every batch)

    /// <summary>The target→agent loop's rewrite buffer, emptied (its previous batch has been written).</summary>
    private ArrayBufferWriter<byte> ToAgentBuffer()
    {
        _toAgent.ResetWrittenCount();
        return _toAgent;
    }
    private CopyMasker? _copy; // the COPY being masked now, from its CopyOutResponse to its CopyDone
    private ResultMaskPlan? _reportPending; // the plan whose masked-value counts are not yet in the ledger

    /// <summary>
    /// Masking of one message from the target (masking is active): a DataRow is rewritten by its result's
    /// plan, COPY data by the COPY's masker, an error or notice of a statement that touches masked columns
    /// is withheld. Returns true when <see cref="_maskScratch"/> holds what goes to the agent instead (the
    /// ledger has seen that); false when the message goes as it came (the caller feeds the ledger).
    /// </summary>
    private bool MaskBackend(byte type, ReadOnlySpan<byte> body, long arrived, out PgError? notice)
    {
        notice = null;
        lock (ledger)
        {
            if (type is (byte)'C' or (byte)'s' or (byte)'I' or (byte)'E' or (byte)'Z' or (byte)'T')
                ReportMasked();
            switch (type)
            {
                case (byte)'D':
                {
                    if (ledger.CurrentResult is not { } result || masking!.PlanFor(result.Columns, result.Verdict) is not { } plan)
                        return false;
                    _reportPending = plan;
                    plan.Rewrite(body, _maskScratch);
                    Inspect(_maskScratch.WrittenSpan[5..], type, frontend: false, arrived);
                    return true;
                }
                case (byte)'E' or (byte)'N':
                {
                    if (!ledger.HeadMayQuoteMaskedData)
                        return false;
                    var withheld = SessionMasking.Withheld(StatementLedger.ReadError(body));
                    PgWire.WriteError(_maskScratch, withheld, type);
                    Inspect(_maskScratch.WrittenSpan[5..], type, frontend: false, arrived);
                    notice = withheld;
                    return true;
                }
                case (byte)'H':
                {
                    var verdict = ledger.HeadVerdict;
                    if (verdict?.Copy is not { } copy)
                    {
                        if (verdict is { Masked: false })
                            return false; // a COPY of tables without masked columns
                        throw new MaskingFailure("the target began a COPY the gateway cannot tell how to mask; the session is ended so that none of it reaches the agent");
                    }
                    if (body.Length > 0 && body[0] != 0)
                        throw new MaskingFailure("the target began a binary COPY of a table with masked columns; the session is ended so that none of it reaches the agent");
                    _copy = masking!.StartCopy(copy)
                            ?? throw new MaskingFailure($"the columns of \"{copy.Relation}\" could not be matched to its masking rules; the COPY is not streamed and the session is ended");
                    return false;
                }
                case (byte)'d':
                    _copy!.Feed(body, _maskScratch);
                    return true;
                case (byte)'A':
                {
                    // A notification raised while a statement that touches masked columns runs (a trigger's
                    // pg_notify, say) may carry a masked value: its payload is withheld, its channel kept.
                    if (ledger.Pending == 0 || !ledger.HeadMayQuoteMaskedData)
                        return false; // idle: another session's notification
                    var reader = new PgReader(body);
                    var pid = reader.ReadInt32();
                    var channel = reader.ReadCString();
                    var replaced = new ArrayBufferWriter<byte>();
                    PgWire.WriteInt32(replaced, pid);
                    PgWire.WriteCString(replaced, channel);
                    PgWire.WriteCString(replaced, "(withheld by the Airlock gateway: raised while a statement touching masked columns ran)");
                    PgWire.WriteMessage(_maskScratch, type, replaced.WrittenSpan);
                    return true;
                }
                case (byte)'c' when _copy is not null:
                    _copy.Finish(_maskScratch);
                    _copy.ReportTo(ledger.NoteMasked);
                    _copy = null;
                    PgWire.WriteMessage(_maskScratch, type, body);
                    Inspect(body, type, frontend: false, arrived);
                    return true;
                default:
                    return false;
            }
        }
    }

    /// <summary>The values masked in the result that is ending go into the ledger with its statement.</summary>
    private void ReportMasked()
    {
        _reportPending?.ReportTo(ledger.NoteMasked);
        _reportPending = null;
    }

    /// <summary>What the target sent cannot be masked: the session ends before any of it reaches the agent.</summary>
    private sealed class MaskingFailure(string message) : Exception(message);

    /// <summary>False when the other side is gone, or stopped reading after the session ended.</summary>
    private async ValueTask<bool> TryWriteAsync(Stream destination, ReadOnlyMemory<byte> bytes, bool toClient)
    {
        // The agent's side has a second writer only while a statement is held (its notice): whole messages either way.
        var locked = false;
        try
        {
            if (toClient && approvals is not null)
            {
                await _clientWrite.WaitAsync(_abandonWrites.Token);
                locked = true;
            }
            await destination.WriteAsync(bytes, _abandonWrites.Token);
            await destination.FlushAsync(_abandonWrites.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            if (toClient)
                _clientWriteAbandoned = true;
            return false;
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException or NotSupportedException)
        {
            return false;
        }
        finally
        {
            if (locked)
                _clientWrite.Release();
        }
    }

    /// <summary>
    /// What goes upstream instead of a refused message: something the server refuses for certain (a
    /// syntax error), answered as the original would be when it fails — a Query or FunctionCall with
    /// ErrorResponse and ReadyForQuery, a Parse or Bind with ErrorResponse, after which the server skips
    /// to Sync. A named Parse leaves the client's unnamed statement alone.
    /// </summary>
    private static void WriteStandIn(IBufferWriter<byte> w, byte type)
    {
        var body = new ArrayBufferWriter<byte>(96);
        if (type is (byte)'Q' or (byte)'F')
        {
            PgWire.WriteCString(body, StandInSql);
            PgWire.WriteMessage(w, (byte)'Q', body.WrittenSpan);
            return;
        }
        PgWire.WriteCString(body, "airlock_refused");
        PgWire.WriteCString(body, StandInSql);
        body.Write<byte>([0, 0]); // no parameter types
        PgWire.WriteMessage(w, (byte)'P', body.WrittenSpan);
    }

    /// <summary>A syntax error in any server state; it names Airlock in the server's log.</summary>
    internal const string StandInSql = "/* refused by the Airlock gateway */ AIRLOCK_REFUSED";

    private void InspectFrontend(ReadOnlySpan<byte> body, byte type, long now, Ruling? ruling)
    {
        lock (ledger)
            ledger.OnFrontend(type, body, now, ruling?.Verdict, ruling?.Refusal, ruling?.Text, ruling?.Tag);
    }

    /// <summary>Feeds one message body, read at <paramref name="now"/>, to the ledger; returns the error/notice for 'E' and 'N'.</summary>
    private PgError? Inspect(ReadOnlySpan<byte> body, byte type, bool frontend, long now)
    {
        lock (ledger)
        {
            if (frontend)
                ledger.OnFrontend(type, body, now);
            else
            {
                ledger.OnBackend(type, body, now);
                // Statement names the server created or dropped (or did not): the guard follows it.
                ledger.TakeSettled(_settled);
                foreach (var (tag, done) in _settled)
                    guard.OnSettled(tag, done);
                _settled.Clear();
            }
        }
        return type is (byte)'E' or (byte)'N' && !frontend ? StatementLedger.ReadError(body) : null;
    }

    private readonly List<(object Tag, bool Done)> _settled = []; // used by the target→agent loop only, under the ledger's lock
    private readonly List<CompletedStatement> _completed = []; // reused: taken and recorded by the target→agent loop only

    private async Task RecordCompletedAsync()
    {
        lock (ledger)
        {
            if (!ledger.HasCompleted)
                return;
            ledger.TakeCompleted(_completed);
        }
        try
        {
            foreach (var statement in _completed)
            {
                await recording.RecordAsync(RecordingEventTypes.Statement, new StatementEvent(statement));
                recording.Statements.Add(statement);
            }
        }
        finally
        {
            _completed.Clear();
        }
    }

    /// <summary>Messages that carry or run a statement: nothing of them goes upstream before they are parsed and recordable.</summary>
    private static bool IsStatementBearing(byte type) => type is (byte)'Q' or (byte)'P' or (byte)'B' or (byte)'E' or (byte)'F';

    /// <summary>Messages the server answers: the ledger must see them to match the answers (Flush, COPY data and Terminate get none).</summary>
    private static bool IsAnswered(byte type) => IsStatementBearing(type) || type is (byte)'C' or (byte)'D' or (byte)'S';

    private static string Printable(byte type) => type is >= 0x20 and < 0x7f ? ((char)type).ToString() : $"0x{type:x2}";
}

/// <summary>A completed statement as its recording event's payload, encoded on the recorder's thread.</summary>
internal sealed class StatementEvent(CompletedStatement statement) : Recording.DeferredPayload
{
    public override byte[] Encode()
    {
        var result = statement.CapturedRows.Count > 0 || statement.Truncated
            ? new StatementResult(statement.Columns, statement.CapturedRows, statement.Truncated)
            : null;
        var verdict = statement.Verdict;
        return RecordingJson.EncodeStatement(new StatementPayload(
            SqlRedaction.Redact(statement.Text), statement.Parameters.Select(p => p is null ? null : SqlRedaction.RedactValue(p)).ToList(),
            verdict?.Classification ?? "unknown", verdict?.Decision ?? "allow", verdict?.Rule, Math.Round(statement.DurationMs, 3), statement.Rows,
            statement.Error is { } e ? RecordingLimits.Truncate($"{e.SqlState}: {e.Message}", RecordingLimits.MaxMessageChars) : null, result, statement.Masked));
    }
}
