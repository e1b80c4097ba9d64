using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using Airlock.Contracts.Recording;
using Airlock.Sidecar.Protocols.Postgres;

namespace Airlock.Sidecar.Postgres;

/// <summary>
/// The data path of one authenticated session: two loops, one per direction, each the only writer
/// of its destination.
/// <list type="bullet">
/// <item>Agent → target: only whole messages are forwarded; each statement-bearing message is parsed
/// first (this is where guardrails will hold, refuse or rewrite it) and waits for room in the
/// recorder (fail closed).</item>
/// <item>Target → agent: messages are forwarded as they came; the ledger follows them to record
/// every statement with its duration, rows, error and first result rows.</item>
/// <item>Writes are coalesced: everything complete in one read is written, then flushed once.</item>
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
    PostgresGatewayOptions options)
{
    private readonly Lock _endLock = new();
    private string? _endReason;
    private PgError? _endError;
    private PipeReader? _clientReader;
    private PipeReader? _upstreamReader;

    /// <summary>Runs until the session ends; returns why it ended.</summary>
    public async Task<string> RunAsync()
    {
        _clientReader = PipeReader.Create(client, new StreamPipeReaderOptions(bufferSize: 65536, minimumReadSize: 4096, leaveOpen: true));
        _upstreamReader = PipeReader.Create(upstream.Stream, new StreamPipeReaderOptions(bufferSize: 65536, minimumReadSize: 4096, leaveOpen: true));
        var toUpstream = PipeWriter.Create(upstream.Stream, new StreamPipeWriterOptions(minimumBufferSize: 65536, leaveOpen: true));
        var toClient = PipeWriter.Create(client, new StreamPipeWriterOptions(minimumBufferSize: 65536, leaveOpen: true));

        var agentLoop = Task.Run(() => AgentToTargetAsync(_clientReader, toUpstream));
        var targetLoop = Task.Run(() => TargetToAgentAsync(_upstreamReader, toClient));
        await Task.WhenAll(agentLoop, targetLoop);

        lock (_endLock)
            return _endReason ?? "ended";
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
        _clientReader?.CancelPendingRead();
        _upstreamReader?.CancelPendingRead();
    }

    private bool Ended
    {
        get
        {
            lock (_endLock)
                return _endReason is not null;
        }
    }

    private async Task AgentToTargetAsync(PipeReader reader, PipeWriter writer)
    {
        try
        {
            while (!Ended)
            {
                var result = await reader.ReadAsync();
                if (result.IsCanceled)
                    break;
                var buffer = result.Buffer;
                var forwarded = false;
                var terminate = false;
                while (!terminate)
                {
                    var status = PgWire.TryReadHeader(buffer, options.MaxMessageBytes, out var type, out var length);
                    if (status == FrameStatus.Incomplete)
                        break;
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
                    var message = buffer.Slice(0, 1 + length);
                    if (IsStatementBearing(type) && !await recording.WaitForRoomAsync())
                    {
                        End("error: the recorder cannot keep up", PgError.Fatal(SqlStates.InsufficientResources, "the session cannot be recorded right now, so it is ended (fail closed); try again later"));
                        return;
                    }
                    if (IsAnswered(type))
                    {
                        try
                        {
                            Inspect(message, type, length, frontend: true);
                        }
                        catch (PgProtocolException e)
                        {
                            End($"error: the agent broke the protocol: {e.Message}", PgError.Fatal(SqlStates.ProtocolViolation, e.Message));
                            return;
                        }
                    }
                    foreach (var segment in message)
                        writer.Write(segment.Span);
                    forwarded = true;
                    buffer = buffer.Slice(message.End);
                    terminate = type == (byte)'X';
                }
                reader.AdvanceTo(buffer.Start, buffer.End);
                if (forwarded && (await writer.FlushAsync()).IsCompleted)
                {
                    End("target closed the connection", PgError.Fatal(SqlStates.ConnectionFailure, "the target closed the connection"));
                    return;
                }
                if (terminate)
                {
                    End("client", null);
                    return;
                }
                if (result.IsCompleted)
                {
                    End(buffer.IsEmpty ? "client disconnected" : "error: the client disconnected in the middle of a message", null);
                    return;
                }
            }
        }
        catch (IOException)
        {
            End("client connection lost", null);
        }
        catch (ObjectDisposedException)
        {
            End("client connection lost", null);
        }
        finally
        {
            await reader.CompleteAsync();
        }
    }

    private async Task TargetToAgentAsync(PipeReader reader, PipeWriter writer)
    {
        var lastWasFatal = false;
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync();
                if (result.IsCanceled)
                    break;
                var buffer = result.Buffer;
                var forwarded = false;
                while (true)
                {
                    var status = PgWire.TryReadHeader(buffer, options.MaxMessageBytes, out var type, out var length);
                    if (status == FrameStatus.Incomplete)
                        break;
                    if (status == FrameStatus.Invalid || !PgWire.IsBackendType(type))
                    {
                        End($"error: the target sent an invalid message ('{Printable(type)}', length {length})",
                            length > options.MaxMessageBytes
                                ? PgError.Fatal(SqlStates.ProgramLimitExceeded, $"a result message of {length} bytes is over the gateway's {options.MaxMessageBytes}-byte limit")
                                : PgError.Fatal(SqlStates.ProtocolViolation, "the target sent an invalid message; the session is ended"));
                        buffer = buffer.Slice(buffer.End);
                        break;
                    }
                    var message = buffer.Slice(0, 1 + length);
                    if (type is not ((byte)'d' or (byte)'A' or (byte)'S'))
                    {
                        try
                        {
                            var notice = Inspect(message, type, length, frontend: false);
                            lastWasFatal = type == (byte)'E' && notice?.Severity is "FATAL" or "PANIC";
                            if (type == (byte)'N' && notice is not null)
                                await recording.RecordAsync(RecordingEventTypes.Notice, RecordingJson.Encode(new NoticePayload(notice.Severity, notice.Message)));
                        }
                        catch (PgProtocolException e)
                        {
                            End($"error: the target broke the protocol: {e.Message}", PgError.Fatal(SqlStates.ProtocolViolation, "the target sent a malformed message; the session is ended"));
                            buffer = buffer.Slice(buffer.End);
                            break;
                        }
                    }
                    foreach (var segment in message)
                        writer.Write(segment.Span);
                    forwarded = true;
                    buffer = buffer.Slice(message.End);
                }
                reader.AdvanceTo(buffer.Start, buffer.End);
                if (forwarded && (await writer.FlushAsync()).IsCompleted)
                {
                    End("client connection lost", null);
                    break;
                }
                await RecordCompletedAsync();
                if (result.IsCompleted)
                {
                    End(lastWasFatal ? "server ended the session" : "target closed the connection",
                        lastWasFatal ? null : PgError.Fatal(SqlStates.ConnectionFailure, "the target closed the connection unexpectedly"));
                    break;
                }
                if (Ended)
                    break;
            }
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
        await reader.CompleteAsync();

        // The agent hears why, at a message boundary (nothing else is written to it after this).
        PgError? error;
        lock (_endLock)
            error = _endError;
        try
        {
            await RecordCompletedAsync();
        }
        catch (RecorderUnavailableException)
        {
            // the statements ran; their completion cannot be recorded — the session end says why
        }
        if (error is not null)
        {
            try
            {
                PgWire.WriteError(writer, error);
                await writer.FlushAsync();
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException)
            {
                // the agent is gone
            }
        }
    }

    /// <summary>Feeds one message to the ledger; returns the error/notice for 'E' and 'N'.</summary>
    private PgError? Inspect(ReadOnlySequence<byte> message, byte type, int length, bool frontend)
    {
        var bodySequence = message.Slice(5, length - 4);
        byte[]? rented = null;
        ReadOnlySpan<byte> body;
        if (bodySequence.IsSingleSegment)
        {
            body = bodySequence.FirstSpan;
        }
        else
        {
            rented = ArrayPool<byte>.Shared.Rent(length - 4);
            bodySequence.CopyTo(rented);
            body = rented.AsSpan(0, length - 4);
        }
        try
        {
            var now = Stopwatch.GetTimestamp();
            lock (ledger)
            {
                if (frontend)
                    ledger.OnFrontend(type, body, now);
                else
                    ledger.OnBackend(type, body, now);
            }
            return type is (byte)'E' or (byte)'N' && !frontend ? StatementLedger.ReadError(body) : null;
        }
        finally
        {
            if (rented is not null)
                ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private async Task RecordCompletedAsync()
    {
        List<CompletedStatement> completed;
        lock (ledger)
        {
            if (!ledger.HasCompleted)
                return;
            completed = ledger.TakeCompleted();
        }
        foreach (var statement in completed)
        {
            var result = statement.CapturedRows.Count > 0 || statement.Truncated
                ? new StatementResult(statement.Columns, statement.CapturedRows, statement.Truncated)
                : null;
            await recording.RecordAsync(RecordingEventTypes.Statement, RecordingJson.EncodeStatement(new StatementPayload(
                statement.Text, statement.Parameters, "unknown", "allow", null, Math.Round(statement.DurationMs, 3), statement.Rows,
                statement.Error is { } e ? $"{e.SqlState}: {e.Message}" : null, result)));
        }
    }

    /// <summary>Messages that carry or run a statement: nothing of them goes upstream before they are parsed and recordable.</summary>
    private static bool IsStatementBearing(byte type) => type is (byte)'Q' or (byte)'P' or (byte)'B' or (byte)'E' or (byte)'F';

    /// <summary>Messages the server answers: the ledger must see them to match the answers (Flush, COPY data and Terminate get none).</summary>
    private static bool IsAnswered(byte type) => IsStatementBearing(type) || type is (byte)'C' or (byte)'D' or (byte)'S';

    private static string Printable(byte type) => type is >= 0x20 and < 0x7f ? ((char)type).ToString() : $"0x{type:x2}";
}
