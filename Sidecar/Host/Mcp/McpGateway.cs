using System.Collections.Concurrent;
using System.Text.Json;
using Airlock.Sidecar.Policy;
using Airlock.Sidecar.Policy.Guardrails;
using Airlock.Sidecar.Policy.Masking;
using Airlock.Sidecar.Postgres;
using Airlock.Sidecar.Protocols;
using Airlock.Sidecar.Protocols.Postgres;
using Airlock.Sidecar.Protocols.Sql;
using Airlock.Sidecar.Snapshots;
using Microsoft.Extensions.Options;

namespace Airlock.Sidecar.Mcp;

/// <summary>
/// Who calls a tool: the agent its token proves (checked for this front door's resource), the token's
/// fingerprint (an agent's sessions are its token's), and the client as it describes itself.
/// </summary>
/// <param name="McpSession">The MCP session (Mcp-Session-Id) when the client keeps one: each is its own recorded session.</param>
internal sealed record McpCaller(string AgentId, string TokenKey, DateTimeOffset TokenExpiresAt, string ClientAddress, string? ClientName, string? ClientVersion, string? McpSession = null)
{
    /// <summary>The person the agent acts for (a delegation), if any.</summary>
    public string? Person { get; init; }

    /// <summary>The person lends read access only: the session runs read-only, whatever the role allows.</summary>
    public bool PersonReadOnly { get; init; }

    /// <summary>The call came to one target's own endpoint (Sidecar:Mcp:PerTarget): only that target exists for it.</summary>
    public string? EndpointTarget { get; init; }
}

/// <summary>
/// The MCP front door's work, behind the tools: which targets an agent reaches here, their tables, and
/// statements run through the gateway's own PostgreSQL session (<see cref="McpWireSession"/>) — never a
/// second evaluator, masker or recorder. Each agent's token has one recorded session per target, opened
/// at its first statement and ended when idle, when the token expires, or when the policy withdraws access.
/// </summary>
internal sealed class McpGateway : IHostedService, IAsyncDisposable
{
    private readonly SnapshotStore _snapshots;
    private readonly PostgresListeners _listeners;
    private readonly McpOptions _options;
    private readonly PostgresGatewayOptions _postgres;
    private readonly ILogger<McpGateway> _logger;
    private readonly ConcurrentDictionary<string, Lazy<Task<McpWireSession>>> _sessions = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _callsInFlight = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopping = new();
    private Timer? _sweeper;

    public McpGateway(SnapshotStore snapshots, PostgresListeners listeners, IOptions<Hosting.SidecarOptions> options, ILogger<McpGateway> logger)
    {
        _snapshots = snapshots;
        _listeners = listeners;
        _options = options.Value.Mcp;
        _postgres = options.Value.Postgres;
        _logger = logger;
    }

    private GatewayServices Services => _listeners.Services;

    public McpOptions Options => _options;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _sweeper = new Timer(_ => _ = SweepAsync(), null, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(5));
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync();
        if (_sweeper is not null)
            await _sweeper.DisposeAsync();
        foreach (var (key, lazy) in _sessions)
            await CloseAsync(key, lazy, "the Airlock sidecar is shutting down");
    }

    public async ValueTask DisposeAsync() => await StopAsync(CancellationToken.None);

    /// <summary>The agent as the current snapshot knows it, or why it cannot act.</summary>
    private AgentPolicy? Agent(McpCaller caller, out string? problem)
    {
        problem = null;
        var agent = _snapshots.Current?.Policy.Agents.FirstOrDefault(a => a.Id == caller.AgentId);
        if (agent is null || !agent.Enabled)
            problem = agent is null ? "the agent is no longer in this sidecar's policy" : $"agent '{agent.Name}' is disabled";
        return problem is null ? agent : null;
    }

    /// <summary>PostgreSQL targets of this sidecar served through MCP (all, or those Sidecar:Mcp:Targets names); at a target's own endpoint, that one.</summary>
    private IEnumerable<TargetPolicy> ServedTargets(McpCaller caller) =>
        (_snapshots.Current?.Policy.Targets ?? []).Where(t => t.Kind == TargetKind.Postgres
            && (_options.Targets.Count == 0 || _options.Targets.Contains(t.Name, StringComparer.Ordinal))
            && (!_options.PerTarget || t.Name == caller.EndpointTarget));

    /// <summary>The rules the agent's statements on <paramref name="target"/> are judged by now (its role's, or a temporary grant's); null when neither reaches it.</summary>
    private RuleSet? Rules(AgentPolicy agent, TargetPolicy target, bool readOnlyPerson)
    {
        var policy = _snapshots.Current?.Policy;
        if (policy is null)
            return null;
        var role = TemporaryGrant.RoleInForce(policy, agent, target.Name, DateTimeOffset.UtcNow, out _);
        return role is not null && role.Targets.Contains(target.Name, StringComparer.Ordinal)
            ? RuleSet.For(readOnlyPerson ? Baselines.ReadOnly(role) : role, target.Name)
            : null;
    }

    /// <summary>The target by name if this agent reaches it through this front door; otherwise the refusal (the same words whether it exists or not).</summary>
    private (AgentPolicy? Agent, TargetPolicy? Target, RuleSet? Rules, CallError? Refusal) Resolve(McpCaller caller, string targetName)
    {
        if (Agent(caller, out var problem) is not { } agent)
            return (null, null, null, new CallError(null, problem!, Code: "no_access"));
        if (_snapshots.Current is null)
            return (null, null, null, new CallError(null, "this sidecar has no valid policy snapshot: failing closed", Code: "unavailable"));
        var target = ServedTargets(caller).FirstOrDefault(t => t.Name == targetName);
        var rules = target is null ? null : Rules(agent, target, caller.PersonReadOnly);
        if (target is null || rules is null)
            return (agent, null, null, new CallError(SqlStates.InsufficientPrivilege,
                $"agent \"{agent.Name}\" (role \"{agent.Role}\") is not granted target \"{Shown(targetName)}\" here", Hint: "list_targets names the targets you can use", Code: "no_access"));
        return (agent, target, rules, null);
    }

    /// <summary>A slot among the agent's calls in flight, or null when it has <see cref="McpOptions.MaxConcurrentCallsPerAgent"/> already.</summary>
    private IDisposable? EnterCall(string agentId)
    {
        var now = _callsInFlight.AddOrUpdate(agentId, 1, (_, n) => n + 1);
        if (now > _options.MaxConcurrentCallsPerAgent)
        {
            Leave(agentId);
            return null;
        }
        return new Slot(() => Leave(agentId));
    }

    private void Leave(string agentId) => _callsInFlight.AddOrUpdate(agentId, 0, (_, n) => Math.Max(0, n - 1));

    private sealed class Slot(Action leave) : IDisposable
    {
        private int _left;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _left, 1) == 0)
                leave();
        }
    }

    private CallError TooManyCalls(AgentPolicy? agent) =>
        new(null, $"agent has {_options.MaxConcurrentCallsPerAgent} calls running on this sidecar already (Sidecar:Mcp:MaxConcurrentCallsPerAgent)",
            Hint: "wait for a call to finish, then try again", Code: "limit");

    public TargetList ListTargets(McpCaller caller)
    {
        if (Agent(caller, out _) is not { } agent)
            return new TargetList(CallStatus.Denied, []);
        var targets = ServedTargets(caller)
            .Select(t => (Target: t, Rules: Rules(agent, t, caller.PersonReadOnly)))
            .Where(t => t.Rules is not null)
            .Select(t => new TargetInfo(t.Target.Name, t.Target.Kind, t.Target.Upstream.Database, caller.PersonReadOnly || !t.Rules!.AllowsWrites, t.Target.Labels.Count == 0 ? null : t.Target.Labels))
            .OrderBy(t => t.Name, StringComparer.Ordinal)
            .ToList();
        return new TargetList(CallStatus.Completed, targets);
    }

    public async Task<ExplainResult> ExplainAsync(McpCaller caller, string targetName, string sql, CancellationToken ct)
    {
        var (agent, target, rules, refusal) = Resolve(caller, targetName);
        if (refusal is not null)
            return new ExplainResult(Status(refusal), targetName, Error: refusal);
        using var slot = EnterCall(agent!.Id);
        if (slot is null)
            return new ExplainResult(CallStatus.Failed, targetName, Error: TooManyCalls(agent));
        if ((BadText(sql) ?? TooLarge(sql, [])) is { } bad)
            return new ExplainResult(CallStatus.Failed, targetName, Error: bad);
        var judgement = await JudgeAsync(Judge(target!, rules!, caller.PersonReadOnly), rules!, target!, sql, ct);
        var statements = judgement.Statements.Select(s => new ExplainedStatement(
            s.Statement.Command, StatementNames.Of(s.Statement.Class), StatementNames.Names(s.Statement.Flags & ~StatementFlags.PasswordLiteral).ToList(),
            s.Statement.TablesRead, s.Statement.TablesWritten, s.Statement.Functions,
            Decision.Name(s.Decision.Action), s.Decision.DecidedBy, s.Decision.Reason)).ToList();
        var decision = judgement.Decision;
        return new ExplainResult(CallStatus.Completed, target!.Name, Decision.Name(decision.Action), decision.DecidedBy, decision.Reason, statements);
    }

    /// <summary>The tables and columns of the target the agent may read (or read after approval), with the columns masked for it marked.</summary>
    public async Task<DescribeResult> DescribeAsync(McpCaller caller, string targetName, string? schema, CancellationToken ct)
    {
        var (agent, target, rules, refusal) = Resolve(caller, targetName);
        if (refusal is not null)
            return new DescribeResult(Status(refusal), targetName, Error: refusal);
        using var slot = EnterCall(agent!.Id);
        if (slot is null)
            return new DescribeResult(CallStatus.Failed, targetName, Error: TooManyCalls(agent));
        if (schema is not null && BadText(schema) is { } bad)
            return new DescribeResult(CallStatus.Failed, targetName, Error: bad);
        List<List<string?[]>> rows;
        try
        {
            // The sidecar's own read-only connection reads the catalog (as the masking catalog is read): names and types only,
            // never a value; one read serves every agent's describe of the target for a while.
            rows = await DescribeRowsAsync(target!, schema, ct);
        }
        catch (Exception e) when (e is GatewayRefusal or PgProtocolException or IOException or OperationCanceledException)
        {
            return new DescribeResult(CallStatus.Failed, targetName,
                Error: new CallError((e as GatewayRefusal)?.Error.SqlState, $"the target's catalog could not be read: {e.Message}", Code: "unavailable"));
        }
        var role = _snapshots.Current?.Policy.Roles.FirstOrDefault(r => r.Name == agent.Role);
        var masks = role is null ? MaskRules.None : MaskRules.For(role, target!.Name);
        var judge = Judge(target!, rules!, caller.PersonReadOnly);
        var tables = new List<DescribedTable>();
        var truncated = false;
        foreach (var table in rows[0].GroupBy(r => (Schema: r[0]!, Name: r[1]!, Kind: r[2]!)))
        {
            if (tables.Count >= _options.MaxDescribedTables)
            {
                truncated = true;
                break;
            }
            var decision = (await JudgeAsync(judge, rules!, target!, $"SELECT * FROM {QuoteIdentifier(table.Key.Schema)}.{QuoteIdentifier(table.Key.Name)}", ct)).Decision;
            if (decision.Action == DecisionAction.Block)
                continue;
            var columns = table.Select(c => new DescribedColumn(c[3]!, c[4]!, MaskOf(masks, table.Key.Schema, table.Key.Name, c[3]!))).ToList();
            tables.Add(new DescribedTable(table.Key.Schema, table.Key.Name, table.Key.Kind,
                decision.Action == DecisionAction.RequireApproval ? "approval" : "read", columns));
        }
        var everywhere = masks.Detectors.Select(d => $"{d.Rule}: {string.Join(", ", d.Detectors)} ({d.Strategy.ToString().ToLowerInvariant()})").ToList();
        return new DescribeResult(CallStatus.Completed, target!.Name, tables, truncated || rows[0].Count >= MaxDescribedColumns, everywhere.Count == 0 ? null : everywhere);
    }

    private const int MaxDescribedColumns = 20_000;

    private static readonly TimeSpan DescribeCacheLifetime = TimeSpan.FromSeconds(30);
    private readonly ConcurrentDictionary<(string Target, string? Schema), (DateTimeOffset At, Task<List<List<string?[]>>> Rows)> _described = new();

    private async Task<List<List<string?[]>>> DescribeRowsAsync(TargetPolicy target, string? schema, CancellationToken ct)
    {
        var key = (target.Name, schema);
        var now = DateTimeOffset.UtcNow;
        if (_described.TryGetValue(key, out var cached) && now - cached.At < DescribeCacheLifetime && !cached.Rows.IsFaulted && !cached.Rows.IsCanceled)
            return await cached.Rows.WaitAsync(ct);
        if (_described.Count > 1000)
            _described.Clear();
        var read = CatalogQuery.RunAsync(Services.Connector, target, DescribeSql(schema, _options.MaxDescribedTables), _stopping.Token);
        _described[key] = (now, read);
        return await read.WaitAsync(ct);
    }

    /// <summary>A judge as a session on the target has it: the operator's safe functions, the target's function catalog.</summary>
    private SqlSessionJudge Judge(TargetPolicy target, RuleSet rules, bool readOnly) =>
        new(readOnly || !rules.AllowsWrites, Services.SafeFunctions, function => Services.Catalog.Lookup(target.Name, function));

    /// <summary>Judges as the session's guard does: what only the target's catalog can tell (functions, attribute notation) is learned first.</summary>
    private async Task<Judgement> JudgeAsync(SqlSessionJudge judge, RuleSet rules, TargetPolicy target, string sql, CancellationToken ct)
    {
        var read = judge.Read(rules, sql);
        if (judge.FunctionsToLearn(read) is { Count: > 0 } functions && !Services.Catalog.Knows(target.Name, functions))
            await Services.Catalog.LoadAsync(target, functions, ct);
        return judge.Judge(rules, read);
    }

    private static string? MaskOf(MaskRules masks, string schema, string table, string column) =>
        masks.Columns.FirstOrDefault(m => (m.Schema is null || string.Equals(m.Schema, schema, StringComparison.Ordinal))
            && string.Equals(m.Table, table, StringComparison.Ordinal) && string.Equals(m.Column, column, StringComparison.Ordinal)) is { } mask
            ? $"{mask.Mask.Rule} ({mask.Mask.Strategy.ToString().ToLowerInvariant()})"
            : null;

    private static string DescribeSql(string? schema, int maxTables) => $"""
        SELECT n.nspname, c.relname,
               CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'f' THEN 'foreign table' ELSE 'table' END,
               a.attname, format_type(a.atttypid, a.atttypmod)
        FROM pg_catalog.pg_class c
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
          AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
          {(schema is null ? "" : $"AND n.nspname = {CatalogQuery.Literal(schema)}")}
          AND c.oid IN (SELECT c2.oid FROM pg_catalog.pg_class c2 JOIN pg_catalog.pg_namespace n2 ON n2.oid = c2.relnamespace
                        WHERE c2.relkind IN ('r', 'p', 'v', 'm', 'f') AND n2.nspname NOT IN ('pg_catalog', 'information_schema')
                        ORDER BY n2.nspname, c2.relname LIMIT {maxTables + 1})
        ORDER BY n.nspname, c.relname, a.attnum
        LIMIT {MaxDescribedColumns}
        """;

    private static string QuoteIdentifier(string name) => "\"" + name.Replace("\"", "\"\"") + "\"";

    /// <summary>
    /// Runs one statement in the agent's session on the target, through the gateway's relay. A statement held
    /// for approval answers <see cref="CallStatus.PendingApproval"/> after <see cref="McpOptions.ApprovalWaitSeconds"/>;
    /// <see cref="ApprovalStatusAsync"/> then gives its result.
    /// </summary>
    public async Task<QueryResult> QueryAsync(McpCaller caller, string targetName, string sql, IReadOnlyList<string?> parameters, CancellationToken ct)
    {
        var (agent, target, _, refusal) = Resolve(caller, targetName);
        if (refusal is not null)
            return new QueryResult(Status(refusal), targetName, Error: refusal);
        if ((BadText(sql) ?? parameters.Select(p => p is null ? null : BadText(p)).FirstOrDefault(p => p is not null) ?? TooLarge(sql, parameters)) is { } bad)
            return new QueryResult(CallStatus.Failed, targetName, Error: bad);
        if (parameters.Count > short.MaxValue)
            return QueryResult.Refused(CallStatus.Failed, targetName, $"at most {short.MaxValue} parameters", "bad_request");
        using var slot = EnterCall(agent!.Id);
        if (slot is null)
            return new QueryResult(CallStatus.Failed, targetName, Error: TooManyCalls(agent));

        McpWireSession wire;
        try
        {
            wire = await SessionAsync(caller, agent, target!, ct);
        }
        catch (GatewayRefusal e)
        {
            return new QueryResult(CallStatus.Failed, targetName, Error: new CallError(e.Error.SqlState, e.Error.Message, Hint: e.Error.Hint,
                Code: e.Error.SqlState == SqlStates.TooManyConnections ? "limit" : "unavailable"));
        }
        if (wire.Pending is { } pending && !pending.Answer.IsCompleted)
            return QueryResult.Refused(CallStatus.Failed, targetName,
                $"a statement of this session waits for approval request #{pending.Hold.Ticket.RequestId}; one statement runs at a time", "busy",
                $"call approval_status with request_id {pending.Hold.Ticket.RequestId}");
        var timeout = TimeSpan.FromSeconds(_options.StatementTimeoutSeconds);
        if (!await wire.Turn.WaitAsync(timeout, ct))
            return QueryResult.Refused(CallStatus.Failed, targetName, "the agent's previous statement on this target is still running", "busy");
        Task<WireAnswer> answer;
        Task<HeldStatement> held;
        try
        {
            wire.LastUsed = DateTimeOffset.UtcNow;
            answer = wire.RunAsync(sql, parameters, _options.MaxRows, _options.MaxResultBytes, timeout, out held);
        }
        catch
        {
            wire.Turn.Release();
            throw;
        }
        _ = answer.ContinueWith(_ =>
        {
            wire.LastUsed = DateTimeOffset.UtcNow;
            wire.Turn.Release();
        }, TaskScheduler.Default);

        // The statement is cancelled at the timeout (McpWireSession); this is the backstop when the target does not stop.
        var deadline = Task.Delay(timeout + TimeSpan.FromSeconds(10), _stopping.Token);
        var first = await Task.WhenAny(answer, held, deadline);
        if (first == held && (await held).Mode == Policy.ApprovalModes.Hold)
        {
            var hold = await held;
            wire.Pending = (hold, answer);
            if (await Task.WhenAny(answer, Task.Delay(TimeSpan.FromSeconds(_options.ApprovalWaitSeconds), ct)) != answer)
                return Pending(wire, hold);
        }
        else if (first == deadline)
        {
            wire.End($"an MCP call ran past its {_options.StatementTimeoutSeconds} s statement timeout");
            await Task.WhenAny(answer, Task.Delay(TimeSpan.FromSeconds(5)));
            return QueryResult.Refused(CallStatus.Failed, targetName,
                $"the statement ran past the {_options.StatementTimeoutSeconds} s statement timeout (Sidecar:Mcp:StatementTimeoutSeconds); its session was ended", "limit");
        }
        return QueryOutcome.Of(wire.Target.Name, wire.SessionId?.ToString(), await answer);
    }

    /// <summary>Waits up to <paramref name="waitSeconds"/> for a held statement of the caller's to be decided, then says how it stands (its rows once it ran).</summary>
    public async Task<QueryResult> ApprovalStatusAsync(McpCaller caller, long requestId, int waitSeconds, CancellationToken ct)
    {
        if (Agent(caller, out var problem) is not { } agent)
            return QueryResult.Refused(CallStatus.Denied, "", problem!, "no_access");
        using var slot = EnterCall(agent.Id);
        if (slot is null)
            return new QueryResult(CallStatus.Failed, "", Error: TooManyCalls(agent));
        // Only the caller's own sessions are searched: a request id of another agent (or token) is unknown here.
        var wire = _sessions.Values.Where(s => s.IsValueCreated && s.Value.IsCompletedSuccessfully).Select(s => s.Value.Result)
            .FirstOrDefault(s => s.Key.StartsWith(caller.AgentId + "/" + caller.TokenKey + "/", StringComparison.Ordinal) && s.Pending?.Hold.Ticket.RequestId == requestId);
        if (wire?.Pending is not { } pending)
            return QueryResult.Refused(CallStatus.Failed, "", $"request #{requestId} is not a statement of this agent's MCP sessions here (or its answer was already given)", "unknown_request",
                "approval_status answers for statements query put on hold with the same token");
        var wait = TimeSpan.FromSeconds(Math.Clamp(waitSeconds, 0, _options.MaxApprovalWaitSeconds));
        if (await Task.WhenAny(pending.Answer, Task.Delay(wait, ct)) != pending.Answer)
            return Pending(wire, pending.Hold);
        wire.Pending = null;
        return QueryOutcome.Of(wire.Target.Name, wire.SessionId?.ToString(), await pending.Answer);
    }

    private static QueryResult Pending(McpWireSession wire, HeldStatement hold) =>
        new(CallStatus.PendingApproval, wire.Target.Name,
            Approval: new ApprovalInfo(hold.Ticket.RequestId, hold.Rule, hold.Ticket.ExpiresAt, hold.Ticket.ConsoleUrl),
            Session: wire.SessionId?.ToString());

    private static CallStatus Status(CallError refusal) => refusal.Code == "no_access" ? CallStatus.Denied : CallStatus.Failed;

    /// <summary>Text the wire cannot carry unchanged (a NUL would end it early): refused, never cut.</summary>
    private static CallError? BadText(string text) =>
        text.Contains('\0', StringComparison.Ordinal) ? new CallError(null, "the text contains a NUL character, which PostgreSQL cannot take", Code: "bad_request") : null;

    /// <summary>Statements and values past Sidecar:Mcp:MaxStatementBytes are refused whole, before any parsing.</summary>
    private CallError? TooLarge(string sql, IReadOnlyList<string?> parameters)
    {
        long size = sql.Length;
        foreach (var p in parameters)
            size += p?.Length ?? 0;
        return size * 3 > _options.MaxStatementBytes && System.Text.Encoding.UTF8.GetByteCount(sql) + parameters.Sum(p => p is null ? 0L : System.Text.Encoding.UTF8.GetByteCount(p)) > _options.MaxStatementBytes
            ? new CallError(null, $"the statement and its parameters are larger than {_options.MaxStatementBytes} bytes (Sidecar:Mcp:MaxStatementBytes)", Code: "limit")
            : null;
    }

    private static string Shown(string text) => text.Length > 64 ? text[..64] + "…" : text;

    /// <summary>
    /// The caller's session on the target: the one open, or a new one admitted and started like a wire client's.
    /// An agent holds at most <see cref="McpOptions.MaxSessionsPerAgent"/>: a new one replaces its least recently
    /// used idle one, or is refused when none is idle.
    /// </summary>
    private async Task<McpWireSession> SessionAsync(McpCaller caller, AgentPolicy agent, TargetPolicy target, CancellationToken ct)
    {
        var key = $"{caller.AgentId}/{caller.TokenKey}/{caller.McpSession}/{target.Name}";
        while (true)
        {
            if (!_sessions.ContainsKey(key))
                await MakeRoomAsync(caller.AgentId);
            var lazy = _sessions.GetOrAdd(key, k => new Lazy<Task<McpWireSession>>(() => OpenAsync(k, caller, agent, target)));
            McpWireSession wire;
            try
            {
                // The caller may give up (a cancelled call); the open goes on and stays in the map for its next call.
                wire = await lazy.Value.WaitAsync(ct);
            }
            catch when (lazy.Value.IsFaulted || lazy.Value.IsCanceled)
            {
                _sessions.TryRemove(new KeyValuePair<string, Lazy<Task<McpWireSession>>>(key, lazy));
                throw;
            }
            // A session ended by the gateway (terminated, access withdrawn) gives way to a new one. A changed target's
            // settings apply from the next session on, as for wire clients.
            if (!wire.Ended)
                return wire;
            await CloseAsync(key, lazy, "ended");
        }
    }

    /// <summary>Below the agent's session cap: its least recently used idle session is closed, or the call is refused.</summary>
    private async Task MakeRoomAsync(string agentId)
    {
        var prefix = agentId + "/";
        var mine = _sessions.Where(s => s.Key.StartsWith(prefix, StringComparison.Ordinal)).ToList();
        if (mine.Count < _options.MaxSessionsPerAgent)
            return;
        var idle = mine
            .Where(s => s.Value.IsValueCreated && s.Value.Value.IsCompletedSuccessfully && s.Value.Value.Result is { } w
                && w.Turn.CurrentCount == 1 && w.Pending is not { Answer.IsCompleted: false })
            .OrderBy(s => s.Value.Value.Result.LastUsed)
            .FirstOrDefault();
        if (idle.Value is null)
            throw new GatewayRefusal(PgError.Fatal(SqlStates.TooManyConnections,
                $"the agent has {_options.MaxSessionsPerAgent} MCP sessions on this sidecar, all busy (Sidecar:Mcp:MaxSessionsPerAgent)", "finish or wait for a running call, then try again"));
        await CloseAsync(idle.Key, idle.Value, "replaced by a newer MCP session of the agent (Sidecar:Mcp:MaxSessionsPerAgent)");
    }

    private async Task<McpWireSession> OpenAsync(string key, McpCaller caller, AgentPolicy agent, TargetPolicy target)
    {
        var services = Services;
        var wire = new McpWireSession(key, agent, target, caller.TokenExpiresAt);
        var settings = new List<KeyValuePair<string, string>>
        {
            new("application_name", "airlock-mcp"),
            new("client_encoding", "UTF8"),
            new("DateStyle", "ISO, MDY"),
        };
        using var startup = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
        startup.CancelAfter(TimeSpan.FromSeconds(services.Limits.Options.StartupTimeoutSeconds));
        var admission = await PostgresSession.AdmitAsync(services, target, agent, settings, startup.Token, readOnly: caller.PersonReadOnly);
        var origin = new SessionOrigin(caller.ClientAddress, Tls: true, Via: "mcp", caller.ClientName, caller.ClientVersion, caller.Person, caller.PersonReadOnly);
        wire.Served = Task.Run(async () =>
        {
            try
            {
                await PostgresSession.ServeAsync(wire.SessionSide, target, _postgres, services, agent, admission.Upstream, admission.ReadOnly, origin, _stopping.Token, wire);
            }
            catch (GatewayRefusal refusal)
            {
                await WriteErrorAsync(wire.SessionSide, refusal.Error);
            }
            catch (Exception e)
            {
                _logger.LogError(e, "MCP session of agent {Agent} on target {Target} failed", agent.Name, target.Name);
            }
            finally
            {
                admission.SessionLease.Dispose();
                await wire.SessionSide.DisposeAsync();
            }
        });
        try
        {
            await wire.OpenAsync(startup.Token);
            if (wire.CancelKey is not { } cancelKey)
                throw new GatewayRefusal(PgError.Fatal(SqlStates.ProtocolViolation, "the session gave no cancel key"));
            wire.Cancel = async () =>
            {
                if (services.CancelKeys.Find(cancelKey.ProcessId, cancelKey.Secret) is { } entry)
                {
                    using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                    try
                    {
                        await services.Connector.CancelAsync(entry.Target, entry.ProcessId, entry.RealSecret, timeout.Token);
                    }
                    catch (Exception e) when (e is GatewayRefusal or IOException or OperationCanceledException or System.Net.Sockets.SocketException)
                    {
                        _logger.LogWarning("MCP session {Session}: the statement timeout's cancel was not delivered: {Error}", wire.SessionId, e.Message);
                    }
                }
            };
        }
        catch
        {
            await wire.DisposeAsync();
            throw;
        }
        _logger.LogInformation("MCP session {Session}: agent {Agent} on target {Target} for client {Client} {Version}",
            wire.SessionId, agent.Name, target.Name, caller.ClientName ?? "(unnamed)", caller.ClientVersion ?? "");
        return wire;
    }

    private static async Task WriteErrorAsync(Stream stream, PgError error)
    {
        try
        {
            var buffer = new System.Buffers.ArrayBufferWriter<byte>();
            PgWire.WriteError(buffer, error);
            await stream.WriteAsync(buffer.WrittenMemory);
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or ObjectDisposedException)
        {
            // the client side is gone
        }
    }

    /// <summary>Closes the session under <paramref name="key"/> if it is still <paramref name="lazy"/> (not a newer one).</summary>
    private async Task CloseAsync(string key, Lazy<Task<McpWireSession>> lazy, string reason)
    {
        if (!_sessions.TryRemove(new KeyValuePair<string, Lazy<Task<McpWireSession>>>(key, lazy)) || !lazy.IsValueCreated)
            return;
        try
        {
            var wire = await lazy.Value;
            wire.End(reason);
            await wire.DisposeAsync();
        }
        catch (Exception e) when (e is GatewayRefusal or IOException or OperationCanceledException or PgProtocolException)
        {
            // it never opened
        }
    }

    /// <summary>Ends sessions idle too long, whose token expired, or that ended on their own; a statement waiting for approval keeps its session.</summary>
    private async Task SweepAsync()
    {
        if (Interlocked.Exchange(ref _sweeping, 1) == 1)
            return; // the previous sweep is still closing sessions
        try
        {
            await SweepOnceAsync();
        }
        finally
        {
            Volatile.Write(ref _sweeping, 0);
        }
    }

    private int _sweeping;

    private async Task SweepOnceAsync()
    {
        var now = DateTimeOffset.UtcNow;
        foreach (var (key, lazy) in _sessions)
        {
            if (!lazy.IsValueCreated || !lazy.Value.IsCompleted)
                continue;
            if (!lazy.Value.IsCompletedSuccessfully)
            {
                _sessions.TryRemove(new KeyValuePair<string, Lazy<Task<McpWireSession>>>(key, lazy));
                continue;
            }
            var wire = lazy.Value.Result;
            var waiting = wire.Pending is { } p && !p.Answer.IsCompleted;
            if (wire.Ended)
                await CloseAsync(key, lazy, "ended");
            else if (wire.TokenExpiresAt + TimeSpan.FromSeconds(60) <= now)
                await CloseAsync(key, lazy, "the agent's token expired");
            else if (!waiting && wire.Turn.CurrentCount == 1 && now - wire.LastUsed > TimeSpan.FromSeconds(_options.IdleSessionSeconds))
                await CloseAsync(key, lazy, $"idle for {_options.IdleSessionSeconds} s (Sidecar:Mcp:IdleSessionSeconds)");
        }
    }

    internal static JsonElement Json<T>(T value) => JsonSerializer.SerializeToElement(value, McpJson.Options);
}
