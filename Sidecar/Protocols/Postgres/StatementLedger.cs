using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Airlock.Sidecar.Protocols.Postgres;

/// <summary>A statement as it ended: what was asked, how long it took, what came back, and how the gateway judged it.</summary>
public sealed record CompletedStatement(
    string Text,
    IReadOnlyList<string?> Parameters,
    double DurationMs,
    long? Rows,
    PgError? Error,
    IReadOnlyList<string> Columns,
    IReadOnlyList<IReadOnlyList<string?>> CapturedRows,
    bool Truncated,
    StatementVerdict? Verdict = null,
    IReadOnlyDictionary<string, long>? Masked = null);

/// <summary>How the gateway judged a statement, as its recording shows it (names are made when the event is encoded, off the data path).</summary>
/// <param name="Class">The riskiest class of the statement(s).</param>
/// <param name="Decision"><c>allow</c>, <c>block</c> or <c>require_approval</c>.</param>
/// <param name="Rule">The deciding rule, a built-in guard, or <c>default-deny</c>.</param>
/// <param name="Masked">The statement names a relation with masked columns: the server's error and notice texts for it are withheld.</param>
/// <param name="Copy">A COPY of a table with masked columns to the client: how its rows are masked.</param>
public sealed record StatementVerdict(Sql.StatementClass Class, string Decision, string? Rule, string Command, Sql.StatementFlags Flags, bool Masked = false, Sql.CopyOut? Copy = null)
{
    public string Classification => Sql.StatementNames.Of(Class);
}

/// <summary>
/// Follows one connection's conversation to say, for every statement, its text, parameters,
/// duration, rows, error and the first result rows. The server answers frontend messages strictly in
/// order, so the ledger keeps a queue of what was sent and matches each backend message to its head:
/// <list type="bullet">
/// <item>Parse → ParseComplete; Bind → BindComplete; Close → CloseComplete;</item>
/// <item>Describe statement → ParameterDescription, then RowDescription or NoData (remembered for the
/// statement); Describe portal → RowDescription or NoData (remembered for the portal);</item>
/// <item>Execute → DataRow* then CommandComplete, EmptyQueryResponse or PortalSuspended;</item>
/// <item>Query → any number of result sets, then ReadyForQuery; FunctionCall → FunctionCallResponse, ReadyForQuery; Sync → ReadyForQuery;</item>
/// <item>an ErrorResponse in the extended protocol ends the failing message and the server skips
/// everything up to the next Sync: those statements are reported as not executed.</item>
/// </list>
/// Pure and single-threaded: the gateway serialises calls. Malformed frontend bodies throw
/// <see cref="PgProtocolException"/>; malformed backend bodies too.
/// </summary>
public sealed class StatementLedger(int captureBytes, int maxPending = StatementLedger.DefaultMaxPending)
{
    public const int DefaultMaxPending = 100_000;
    public const int MaxRememberedStatements = 4096;
    public const int MaxRecordedTextChars = 16 * 1024;
    public const int MaxRecordedParameterChars = 1024;
    public const int MaxRecordedParameterTotalChars = 64 * 1024;
    public const int MaxRecordedResultValueChars = 64 * 1024;
    public const int MaxRecordedColumnNameChars = 256;

    private enum Kind { Parse, Bind, DescribeStatement, DescribePortal, Execute, Close, Sync, Query, FunctionCall }

    private sealed class Prepared(string text, int[]? parameterTypes = null, StatementVerdict? verdict = null)
    {
        public string Text { get; } = text;
        public StatementVerdict? Verdict { get; } = verdict;
        public int[] ParameterTypes { get; } = parameterTypes ?? [];
        public IReadOnlyList<ResultColumn>? Columns { get; set; }
    }

    private sealed class Portal(Prepared statement, IReadOnlyList<string?> parameters, short[] resultFormats, string statementName = "")
    {
        /// <summary>As the Bind found it; set again when the server completes the Bind (an earlier Parse of the name may have failed or succeeded since).</summary>
        public Prepared Statement { get; set; } = statement;
        public string StatementName { get; } = statementName;
        public IReadOnlyList<string?> Parameters { get; } = parameters;
        public short[] ResultFormats { get; } = resultFormats;
        public IReadOnlyList<ResultColumn>? Columns { get; set; }
        /// <summary>The gateway's ruling on the Bind (the statement as bound now, which may differ from its Parse's).</summary>
        public StatementVerdict? Verdict { get; init; }
    }


    private sealed class Request(Kind kind, long sentAt)
    {
        public Kind Kind { get; } = kind;
        public long SentAt { get; } = sentAt;
        public string Name { get; init; } = "";
        public Prepared? Statement { get; init; }
        public Portal? Portal { get; init; }
        public string? Text { get; init; }
        public StatementVerdict? Verdict { get; init; }
        /// <summary>The gateway refused this message: it sent the server a stand-in that fails, and this is the error the agent gets instead of the server's.</summary>
        public PgError? Blocked { get; init; }
        /// <summary>The caller's token for a Parse or Close whose outcome it needs (<see cref="TakeSettled"/>).</summary>
        public object? Tag { get; init; }
        // results
        public IReadOnlyList<ResultColumn>? Columns { get; set; }
        // Created with the first captured row: most requests (Bind, Sync, …) never capture one.
        public List<string>? ColumnNames { get; set; }
        public List<IReadOnlyList<string?>>? Rows { get; set; }
        public long CapturedBytes { get; set; }
        public bool Truncated { get; set; }
        public long? RowCount { get; set; }
        public PgError? Error { get; set; }
        /// <summary>Values masked per column label, for the recording.</summary>
        public Dictionary<string, long>? Masked { get; set; }
        /// <summary>The columns an Execute streams, once worked out (the same list for every row: masking plans are kept per list).</summary>
        public IReadOnlyList<ResultColumn>? Resolved { get; set; }
    }

    // Requests whose answer only has to be matched (no duration, rows or error of their own): one
    // shared instance each instead of an object per message, as the data path sends them constantly.
    private static readonly Request ParseSent = new(Kind.Parse, 0), BindSent = new(Kind.Bind, 0), CloseSent = new(Kind.Close, 0), SyncSent = new(Kind.Sync, 0);

    private readonly Dictionary<string, Prepared> _prepared = new(StringComparer.Ordinal);
    private readonly Queue<Portal> _bindsAwaiting = new(); // Binds sent and not yet answered, in order
    private readonly Dictionary<string, Prepared> _pendingParses = new(StringComparer.Ordinal); // named Parses sent and not yet answered
    private readonly Dictionary<string, Portal> _portals = new(StringComparer.Ordinal);
    private readonly Queue<Request> _pending = new();
    private readonly List<CompletedStatement> _completed = [];

    /// <summary>Statements completed since the last call.</summary>
    public List<CompletedStatement> TakeCompleted()
    {
        var taken = new List<CompletedStatement>(_completed.Count);
        TakeCompleted(taken);
        return taken;
    }

    /// <summary>Moves the statements completed since the last call into <paramref name="into"/> (a list the caller reuses).</summary>
    public void TakeCompleted(List<CompletedStatement> into)
    {
        into.AddRange(_completed);
        _completed.Clear();
    }

    public bool HasCompleted => _completed.Count > 0;

    /// <summary>
    /// The session ended with statements sent upstream and not answered (a terminate, the agent or
    /// the target going away): each is completed with <paramref name="why"/>, so the recording shows
    /// what was running — it may have run in part or whole — instead of leaving it out.
    /// </summary>
    public void AbandonPending(PgError why, long timestamp)
    {
        while (_pending.TryDequeue(out var request))
        {
            Settle(request, done: false);
            DropAwaitingBind(request);
            // A refused one keeps its refusal (it never ran); a Parse or Bind refused is recorded too.
            if (request.Kind is Kind.Query or Kind.FunctionCall or Kind.Execute || request.Blocked is not null)
            {
                request.Error ??= request.Blocked ?? why;
                Complete(request, timestamp);
            }
        }
    }

    /// <summary>Requests sent and not yet answered.</summary>
    public int Pending => _pending.Count;

    /// <param name="verdict">How the gateway judged the statement this message carries or runs (Query, Parse, Bind, FunctionCall).</param>
    /// <param name="blocked">The gateway refused the message and sent a failing stand-in: the error the agent gets instead of the server's.</param>
    /// <param name="knownText">The statement text of a Query or Parse when the caller decoded it already.</param>
    /// <param name="tag">For a Parse or Close: a token reported by <see cref="TakeSettled"/> once the server answered it (done) or skipped or refused it (not done).</param>
    public void OnFrontend(byte type, ReadOnlySpan<byte> body, long timestamp, StatementVerdict? verdict = null, PgError? blocked = null, string? knownText = null, object? tag = null)
    {
        var reader = new PgReader(body);
        switch (type)
        {
            case (byte)'Q':
                Enqueue(new Request(Kind.Query, timestamp) { Text = PgValueText.Cut(knownText ?? reader.ReadCString(), MaxRecordedTextChars), Verdict = verdict, Blocked = blocked });
                break;
            case (byte)'P':
            {
                var name = reader.ReadCString();
                string text;
                if (knownText is null)
                    text = reader.ReadCString();
                else
                {
                    text = knownText;
                    reader.ReadCStringBytes();
                }
                var types = new int[reader.ReadCount16()];
                for (var i = 0; i < types.Length; i++)
                    types[i] = reader.ReadInt32();
                var prepared = new Prepared(PgValueText.Cut(text, MaxRecordedTextChars), types, verdict);
                // The server drops the unnamed statement as any Parse starts; a named one exists only once the
                // server answered ParseComplete (a Parse of a name in use fails and leaves the old statement).
                if (name.Length == 0)
                    Remember(_prepared, name, prepared);
                else if (blocked is null)
                    _pendingParses[name] = prepared;
                Enqueue(blocked is null && tag is null && name.Length == 0 ? ParseSent
                    : new Request(Kind.Parse, timestamp) { Name = name, Text = prepared.Text, Statement = prepared, Verdict = verdict, Blocked = blocked, Tag = tag });
                break;
            }
            case (byte)'B':
            {
                var portal = reader.ReadCString();
                var statementName = reader.ReadCString();
                var parameterFormats = ReadFormats(ref reader);
                var count = reader.ReadCount16();
                // A Parse of the name not answered yet is the likelier one (clients pipeline Parse and Bind); the
                // server's answer to the Bind settles it (below, at BindComplete).
                var statement = _pendingParses.GetValueOrDefault(statementName) ?? _prepared.GetValueOrDefault(statementName) ?? new Prepared($"(prepared statement \"{PgValueText.Cut(statementName, MaxRecordedColumnNameChars)}\" not seen on this connection)");
                // Recorded parameters are bounded in total, so one event stays far below the control plane's 1 MiB limit.
                var parameters = new List<string?>(Math.Min(count, 1024));
                var recordedChars = 0;
                for (var i = 0; i < count; i++)
                {
                    var value = reader.ReadValue(out var isNull);
                    if (recordedChars > MaxRecordedParameterTotalChars)
                        continue;
                    var typeOid = i < statement.ParameterTypes.Length ? statement.ParameterTypes[i] : 0;
                    var text = isNull ? null : PgValueText.Render(value, FormatOf(parameterFormats, i), typeOid, MaxRecordedParameterChars);
                    recordedChars += text?.Length ?? 4;
                    parameters.Add(recordedChars > MaxRecordedParameterTotalChars ? $"{PgValueText.TruncationMarker}{count - i} more parameters not recorded]" : text);
                }
                var resultFormats = ReadFormats(ref reader);
                var bound = new Portal(statement, parameters, resultFormats, statementName) { Verdict = verdict ?? statement.Verdict };
                Remember(_portals, portal, bound);
                _bindsAwaiting.Enqueue(bound);
                Enqueue(blocked is null ? BindSent : new Request(Kind.Bind, timestamp) { Text = statement.Text, Portal = bound, Verdict = verdict ?? statement.Verdict, Blocked = blocked });
                break;
            }
            case (byte)'D':
            {
                var what = reader.ReadByte();
                var name = reader.ReadCString();
                if (what == (byte)'S')
                    Enqueue(new Request(Kind.DescribeStatement, timestamp) { Name = name, Statement = _prepared.GetValueOrDefault(name) });
                else if (what == (byte)'P')
                    Enqueue(new Request(Kind.DescribePortal, timestamp) { Name = name, Portal = _portals.GetValueOrDefault(name) });
                else
                    throw new PgProtocolException("Describe: neither 'S' nor 'P'");
                break;
            }
            case (byte)'E':
            {
                var name = reader.ReadCString();
                reader.ReadInt32(); // row limit
                var portal = _portals.GetValueOrDefault(name);
                Enqueue(new Request(Kind.Execute, timestamp) { Name = name, Portal = portal, Text = portal?.Statement.Text ?? $"(portal \"{PgValueText.Cut(name, MaxRecordedColumnNameChars)}\" not seen on this connection)" });
                break;
            }
            case (byte)'C':
            {
                var what = reader.ReadByte();
                var name = reader.ReadCString();
                if (what == (byte)'S')
                    _prepared.Remove(name);
                else if (what == (byte)'P')
                    _portals.Remove(name);
                else
                    throw new PgProtocolException("Close: neither 'S' nor 'P'");
                Enqueue(tag is null ? CloseSent : new Request(Kind.Close, timestamp) { Tag = tag });
                break;
            }
            case (byte)'S':
                Enqueue(SyncSent);
                break;
            case (byte)'F':
            {
                var oid = reader.ReadInt32();
                Enqueue(new Request(Kind.FunctionCall, timestamp) { Text = $"(fastpath function call: function oid {oid.ToString(CultureInfo.InvariantCulture)})", Verdict = verdict, Blocked = blocked });
                break;
            }
            // Flush, CopyData, CopyDone, CopyFail and Terminate get no answer of their own.
        }
    }

    public void OnBackend(byte type, ReadOnlySpan<byte> body, long timestamp)
    {
        _pending.TryPeek(out var head);
        switch (type)
        {
            case (byte)'1' when head?.Kind == Kind.Parse:
                if (head.Name.Length > 0 && head.Statement is { } parsed && head.Blocked is null)
                    Remember(_prepared, head.Name, parsed);
                DropAwaitingBind(head);
                Settle(_pending.Dequeue(), done: true);
                break;
            case (byte)'2' when head?.Kind == Kind.Bind:
                // The statement the server bound: the name as it stands now that earlier Parses are answered.
                // (Not the unnamed statement: each Parse replaces it in order, so the Bind's view of it was right.)
                if (_bindsAwaiting.TryDequeue(out var completed) && completed.StatementName.Length > 0 && _prepared.GetValueOrDefault(completed.StatementName) is { } now)
                    completed.Statement = now;
                Settle(_pending.Dequeue(), done: true);
                break;
            case (byte)'3' when head?.Kind == Kind.Close:
                Settle(_pending.Dequeue(), done: true);
                break;
            case (byte)'T':
            {
                var columns = RowDescription(body);
                if (head?.Kind == Kind.DescribeStatement)
                {
                    _pending.Dequeue();
                    // The statement the name stands for now (a Parse sent after the Describe's was answered before it).
                    (head.Name.Length == 0 ? head.Statement : _prepared.GetValueOrDefault(head.Name) ?? head.Statement)?.Columns = columns;
                }
                else if (head?.Kind == Kind.DescribePortal)
                {
                    _pending.Dequeue();
                    head.Portal?.Columns = columns;
                }
                else if (head?.Kind is Kind.Query or Kind.Execute)
                {
                    head.Columns = columns;
                    head.Resolved = null;
                }
                break;
            }
            case (byte)'n' when head?.Kind is Kind.DescribeStatement or Kind.DescribePortal:
                _pending.Dequeue();
                break;
            case (byte)'D' when head?.Kind is Kind.Query or Kind.Execute:
                Capture(head, body);
                break;
            case (byte)'C' when head?.Kind is Kind.Query or Kind.Execute:
            {
                var reader = new PgReader(body);
                var rows = RowsOf(reader.ReadCStringBytes());
                if (rows is not null)
                    head.RowCount = (head.RowCount ?? 0) + rows;
                if (head.Kind == Kind.Execute)
                    Complete(_pending.Dequeue(), timestamp);
                else
                    (head.Columns, head.Resolved) = (null, null); // the next result set brings its own RowDescription
                break;
            }
            case (byte)'I' or (byte)'s' when head?.Kind == Kind.Execute:
                Complete(_pending.Dequeue(), timestamp);
                break;
            case (byte)'E':
            {
                var error = ReadError(body);
                OnError(head, head?.Blocked ?? error, timestamp);
                break;
            }
            case (byte)'Z':
                // Everything up to and including the first Sync (or the simple query / function call) is answered.
                while (_pending.TryDequeue(out var request))
                {
                    Settle(request, done: false);
                    DropAwaitingBind(request);
                    if (request.Kind is Kind.Query or Kind.FunctionCall or Kind.Execute)
                        Complete(request, timestamp);
                    if (request.Kind is Kind.Sync or Kind.Query or Kind.FunctionCall)
                        break;
                }
                break;
        }
    }

    private readonly List<(object Tag, bool Done)> _settled = [];

    /// <summary>A Bind or Parse answered, skipped or refused: no longer on its way.</summary>
    private void DropAwaitingBind(Request request)
    {
        if (request.Kind == Kind.Bind)
            _bindsAwaiting.TryDequeue(out _);
        if (request.Kind == Kind.Parse && request.Name.Length > 0 && _pendingParses.TryGetValue(request.Name, out var pending) && pending == request.Statement)
            _pendingParses.Remove(request.Name);
    }

    private void Settle(Request request, bool done)
    {
        if (request.Tag is { } tag)
            _settled.Add((tag, done));
    }

    /// <summary>Tagged Parse and Close messages the server has answered (done) or refused or skipped (not done) since the last call, in order.</summary>
    public void TakeSettled(List<(object Tag, bool Done)> into)
    {
        into.AddRange(_settled);
        _settled.Clear();
    }

    /// <summary>The error the agent gets for the next ErrorResponse instead of the server's, when the request it answers was refused by the gateway.</summary>
    public PgError? BlockedAtHead => _pending.TryPeek(out var head) ? head.Blocked : null;

    /// <summary>
    /// The result being streamed now, for masking: its columns with their provenance and formats (the
    /// same list object for every row of a result; null when no RowDescription announced it) and the
    /// verdict on its statement. Null when no Query or Execute is at the head.
    /// </summary>
    public (IReadOnlyList<ResultColumn>? Columns, StatementVerdict? Verdict)? CurrentResult
    {
        get
        {
            if (!_pending.TryPeek(out var head) || head.Kind is not (Kind.Query or Kind.Execute))
                return null;
            return (head.Resolved ??= ColumnsOf(head), head.Verdict ?? head.Portal?.Verdict);
        }
    }

    /// <summary>The verdict on the statement the next answer belongs to.</summary>
    public StatementVerdict? HeadVerdict => _pending.TryPeek(out var head) ? head.Verdict ?? head.Portal?.Verdict ?? head.Statement?.Verdict : null;

    /// <summary>
    /// Whether the next error or notice may quote table data the agent must not see: its statement touches
    /// masked columns, or it is not known what it answers (an idle notice, a commit at Sync, a statement
    /// the gateway did not judge). Parse, Bind, Describe and Close never read table data.
    /// </summary>
    public bool HeadMayQuoteMaskedData
    {
        get
        {
            if (!_pending.TryPeek(out var head))
                return true;
            if (head.Kind is Kind.Parse or Kind.Bind or Kind.DescribeStatement or Kind.DescribePortal or Kind.Close)
                return false;
            if (head.Kind == Kind.Sync)
                return true;
            return (head.Verdict ?? head.Portal?.Verdict)?.Masked ?? true;
        }
    }

    /// <summary>Counts values the gateway masked in the result being streamed now (recorded with its statement).</summary>
    public void NoteMasked(string column, long count)
    {
        if (count == 0 || !_pending.TryPeek(out var head))
            return;
        var masked = head.Masked ??= new Dictionary<string, long>(StringComparer.Ordinal);
        masked[column] = masked.GetValueOrDefault(column) + count;
    }

    private void OnError(Request? head, PgError error, long timestamp)
    {
        if (head is null)
            return; // an error while idle (e.g. the server shutting down): no statement of ours
        if (head.Kind is Kind.Query or Kind.FunctionCall)
        {
            head.Error ??= error; // completes at ReadyForQuery
            return;
        }
        if (head.Kind == Kind.Sync)
            return; // e.g. the implicit commit at Sync failed; ReadyForQuery follows
        // Extended protocol: the failing message ends; the server skips everything up to Sync. An
        // error in Parse, Bind or Describe belongs to the statement the agent was about to execute.
        var failed = _pending.Dequeue();
        Settle(failed, done: false);
        DropAwaitingBind(failed);
        var attributed = false;
        if (failed.Kind == Kind.Execute || failed.Blocked is not null)
        {
            // A refused Parse or Bind is recorded as the statement it carried.
            failed.Error = error;
            Complete(failed, timestamp);
            attributed = true;
        }
        while (_pending.TryPeek(out var next) && next.Kind != Kind.Sync)
        {
            var skipped = _pending.Dequeue();
            Settle(skipped, done: false);
            DropAwaitingBind(skipped);
            if (skipped.Kind != Kind.Execute)
                continue;
            // The execution of a statement the gateway refused: its refusal is already recorded.
            if (failed.Blocked is not null && skipped.Portal is { } portal && (portal == failed.Portal || portal.Statement == failed.Statement))
                continue;
            skipped.Error = attributed ? PgError.Error(error.SqlState, $"not executed: an earlier message in the pipeline failed ({error.Message})") : error;
            attributed = true;
            Complete(skipped, timestamp);
        }
    }

    private void Capture(Request request, ReadOnlySpan<byte> body)
    {
        if (request.Truncated)
            return;
        var columns = request.Resolved ??= ColumnsOf(request);
        var reader = new PgReader(body);
        var row = new string?[reader.ReadCount16()];
        long size = 0;
        for (var i = 0; i < row.Length; i++)
        {
            var value = reader.ReadValue(out var isNull);
            size += value.Length;
            var column = columns is not null && i < columns.Count ? columns[i] : default;
            row[i] = isNull ? null : PgValueText.Render(value, column.Format, column.TypeOid, MaxRecordedResultValueChars);
        }
        if (request.ColumnNames is null)
        {
            // Named even when no row fits: the recording says what was truncated.
            request.ColumnNames = new List<string>(columns?.Count ?? 0);
            if (columns is not null)
                foreach (var column in columns)
                    request.ColumnNames.Add(column.Name);
        }
        if (request.CapturedBytes + size > captureBytes)
        {
            request.Truncated = true;
            return;
        }
        request.CapturedBytes += size;
        (request.Rows ??= []).Add(row);
    }

    /// <summary>Columns of the result an Execute or Query is streaming: its own RowDescription, else the portal's or statement's, with the Bind's result formats.</summary>
    private static IReadOnlyList<ResultColumn>? ColumnsOf(Request request)
    {
        if (request.Columns is not null || request.Portal is null)
            return request.Columns;
        var described = request.Portal.Columns ?? request.Statement?.Columns ?? request.Portal.Statement.Columns;
        if (described is null || request.Portal.Columns is not null)
            return described; // a portal's RowDescription carries the real formats
        var formats = request.Portal.ResultFormats;
        return described.Select((c, i) => c with { Format = FormatOf(formats, i) }).ToList();
    }

    private void Complete(Request request, long timestamp)
    {
        if (request.Kind is not (Kind.Query or Kind.Execute or Kind.FunctionCall) && request.Blocked is null)
            return;
        _completed.Add(new CompletedStatement(
            request.Text ?? "",
            request.Portal?.Parameters ?? [],
            (timestamp - request.SentAt) * 1000.0 / Stopwatch.Frequency,
            request.RowCount,
            request.Error,
            request.ColumnNames ?? (IReadOnlyList<string>)[],
            request.Rows ?? (IReadOnlyList<IReadOnlyList<string?>>)[],
            request.Truncated,
            request.Verdict ?? request.Portal?.Statement.Verdict,
            request.Masked));
    }

    private void Enqueue(Request request)
    {
        if (_pending.Count >= maxPending)
            throw new PgProtocolException($"more than {maxPending} messages sent without an answer");
        _pending.Enqueue(request);
    }

    private static void Remember<T>(Dictionary<string, T> map, string name, T value)
    {
        if (map.Count >= MaxRememberedStatements && !map.ContainsKey(name) && name.Length > 0)
            map.Clear(); // bounded memory: later statements of forgotten names are recorded as "not seen"
        map[name] = value;
    }

    private static short[] ReadFormats(ref PgReader reader)
    {
        var count = reader.ReadCount16();
        var formats = count == 0 ? [] : new short[count];
        for (var i = 0; i < count; i++)
        {
            formats[i] = reader.ReadInt16();
            if (formats[i] is not (0 or 1))
                throw new PgProtocolException($"format code {formats[i]} is neither text (0) nor binary (1)");
        }
        return formats;
    }

    /// <summary>No codes: all text; one code: applies to all; otherwise one per column.</summary>
    private static short FormatOf(short[] formats, int index) =>
        formats.Length == 0 ? (short)0 : formats.Length == 1 ? formats[0] : index < formats.Length ? formats[index] : (short)0;

    // The last RowDescription and its columns: a client running the same statement again gets the
    // same description, and its columns are then not decoded (and allocated) again. Column lists are
    // shared, so never changed once made.
    private byte[] _lastRowDescription = [];
    private List<ResultColumn>? _lastColumns;

    private List<ResultColumn> RowDescription(ReadOnlySpan<byte> body)
    {
        if (_lastColumns is not null && body.SequenceEqual(_lastRowDescription))
            return _lastColumns;
        var columns = ReadRowDescription(body);
        if (body.Length <= 4096)
            (_lastRowDescription, _lastColumns) = (body.ToArray(), columns);
        return columns;
    }

    private static List<ResultColumn> ReadRowDescription(ReadOnlySpan<byte> body)
    {
        var reader = new PgReader(body);
        var count = reader.ReadCount16();
        var columns = new List<ResultColumn>(count);
        for (var i = 0; i < count; i++)
        {
            var name = PgValueText.Cut(reader.ReadCString(), MaxRecordedColumnNameChars);
            var table = (uint)reader.ReadInt32();
            var number = reader.ReadInt16();
            var typeOid = reader.ReadInt32();
            reader.ReadBytes(2 + 4); // type size, type modifier
            columns.Add(new ResultColumn(name, table, number, typeOid, reader.ReadInt16()));
        }
        return columns;
    }

    /// <summary>Severity, SQLSTATE and message of an ErrorResponse or NoticeResponse.</summary>
    public static PgError ReadError(ReadOnlySpan<byte> body)
    {
        string severity = "ERROR", code = "", message = "";
        string? detail = null, hint = null;
        var reader = new PgReader(body);
        while (reader.Remaining > 0)
        {
            var field = reader.ReadByte();
            if (field == 0)
                break;
            var value = reader.ReadCString();
            switch (field)
            {
                case (byte)'V': severity = value; break;
                case (byte)'S' when severity == "ERROR": severity = value; break;
                case (byte)'C': code = value; break;
                case (byte)'M': message = value; break;
                case (byte)'D': detail = value; break;
                case (byte)'H': hint = value; break;
            }
        }
        return new PgError(severity, code, message, detail, hint);
    }

    /// <summary>The row count in a command tag: <c>SELECT 5</c>, <c>INSERT 0 5</c>, <c>UPDATE 5</c>, <c>COPY 5</c>…; null for tags without one.</summary>
    public static long? RowsOf(string tag) => RowsOf(Encoding.UTF8.GetBytes(tag));

    /// <summary>The same from the tag's bytes, as the CommandComplete message carries them (no string per statement).</summary>
    public static long? RowsOf(ReadOnlySpan<byte> tag)
    {
        var space = tag.LastIndexOf((byte)' ');
        if (space < 0)
            return null;
        var verb = tag[..tag.IndexOf((byte)' ')];
        if (!(verb.SequenceEqual("SELECT"u8) || verb.SequenceEqual("INSERT"u8) || verb.SequenceEqual("UPDATE"u8) || verb.SequenceEqual("DELETE"u8)
                || verb.SequenceEqual("MERGE"u8) || verb.SequenceEqual("COPY"u8) || verb.SequenceEqual("FETCH"u8) || verb.SequenceEqual("MOVE"u8)))
            return null;
        var digits = tag[(space + 1)..];
        return digits.Length > 0 && digits.IndexOfAnyExceptInRange((byte)'0', (byte)'9') < 0
            && System.Buffers.Text.Utf8Parser.TryParse(digits, out long rows, out var consumed) && consumed == digits.Length ? rows : null;
    }

}

/// <summary>A result column as RowDescription describes it: PostgreSQL gives <see cref="TableOid"/> and <see cref="ColumnNumber"/> only for a plain column reference (0 otherwise).</summary>
public readonly record struct ResultColumn(string Name, uint TableOid, short ColumnNumber, int TypeOid, short Format);
