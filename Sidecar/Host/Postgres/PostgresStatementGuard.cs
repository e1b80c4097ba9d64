using Airlock.Sidecar.Policy.Approvals;
using Airlock.Sidecar.Policy.Guardrails;
using Airlock.Sidecar.Policy.Masking;
using Airlock.Sidecar.Protocols.Postgres;
using Airlock.Sidecar.Protocols.Sql;
using System.Runtime.CompilerServices;

namespace Airlock.Sidecar.Postgres;

/// <summary>A statement-bearing message as judged: what the recording says, and the agent's error when it is refused.</summary>
/// <param name="Text">The statement text of a Query or Parse, decoded once for the judge and the ledger.</param>
/// <param name="Tag">For a Parse or Close: the token the ledger reports back when the server has settled it (<see cref="PostgresStatementGuard.OnSettled"/>).</param>
/// <param name="Approval">A <c>require_approval</c> decision the gateway can put to approvers: the relay holds or refuses the message by it (<see cref="Refusal"/> is the answer when it cannot).</param>
internal readonly record struct Ruling(StatementVerdict? Verdict, PgError? Refusal, string? Text = null, object? Tag = null, Approvals.ApprovalNeed? Approval = null);

/// <summary>
/// The decision on each statement-bearing message of one PostgreSQL session, before any byte of it
/// goes upstream: Query and Parse are judged on their text; Bind again on the statement it binds (the
/// policy may have changed since the Parse, and a refused Parse stays refused); a fastpath
/// FunctionCall only for the large-object functions client libraries use, judged as the SQL it stands
/// for. The rules are the role's current ones (<paramref name="rules"/> is read per message).
/// </summary>
/// <param name="catalog">Learns what the target's catalog says about functions the classifier does not know (before the judge asks); forgets after DDL.</param>
/// <param name="masking">The session's masking rules resolved against the target's catalog; null when its role has none there.</param>
internal sealed class PostgresStatementGuard(SqlSessionJudge judge, Func<RuleSet?> rules, PostgresStatementGuard.ICatalog? catalog = null, PostgresStatementGuard.IMasking? masking = null)
{
    /// <summary>The session's masking, resolved against the target's catalog.</summary>
    public interface IMasking
    {
        /// <summary>The resolved masking now (looked up again when stale); null when the role has no masking rules on the target.</summary>
        ValueTask<MaskedTarget?> CurrentAsync();

        /// <summary>The last one <see cref="CurrentAsync"/> returned (for a Bind, which is judged without waiting).</summary>
        MaskedTarget? Last { get; }
    }

    /// <summary>The target's function catalog as one session sees it.</summary>
    public interface ICatalog
    {
        bool Knows(IReadOnlyList<string> functions);
        Task LearnAsync(IReadOnlyList<string> functions);
        void Forget();
    }

    /// <summary>
    /// Judges a statement-bearing message (Query, Parse, Bind, FunctionCall; Close forgets a statement);
    /// null for other messages. Completes synchronously unless the text calls functions whose catalog
    /// entry must be learned first. <paramref name="body"/> stays valid while this runs.
    /// </summary>
    public ValueTask<Ruling?> JudgeAsync(byte type, ReadOnlyMemory<byte> body) =>
        Observer is null ? JudgeMessageAsync(type, body) : ObservedAsync(type, body);

    /// <summary>Told every ruling (a front door that sends its own statements reads the deciding rule from it); null on wire sessions.</summary>
    public Action<Ruling>? Observer { get; init; }

    private async ValueTask<Ruling?> ObservedAsync(byte type, ReadOnlyMemory<byte> body)
    {
        var ruling = await JudgeMessageAsync(type, body);
        if (ruling is { } ruled)
            Observer!(ruled);
        return ruling;
    }

    private async ValueTask<Ruling?> JudgeMessageAsync(byte type, ReadOnlyMemory<byte> body)
    {
        string? text = null, name = null, bound = null;
        BindValues? values = null;
        int[] parameterTypes = [];
        {
            var reader = new PgReader(body.Span);
            switch (type)
            {
                case (byte)'Q':
                    text = reader.ReadCString();
                    break;
                case (byte)'P':
                    name = reader.ReadCString();
                    text = reader.ReadCString();
                    parameterTypes = new int[reader.ReadCount16()];
                    for (var i = 0; i < parameterTypes.Length; i++)
                        parameterTypes[i] = reader.ReadInt32();
                    break;
                case (byte)'B':
                    reader.ReadCString(); // portal
                    bound = reader.ReadCString();
                    values = new BindValues(body, body.Length - reader.Remaining);
                    break;
                case (byte)'F':
                    return OnFunctionCall(reader.ReadInt32());
                case (byte)'C':
                    return reader.ReadByte() == (byte)'S' ? new Ruling(null, null, Tag: OnClose(reader.ReadCString())) : null;
                default:
                    return null;
            }
        }
        var masked = masking is null ? null : await masking.CurrentAsync();
        if (bound is not null)
            return OnBind(bound, values);
        if (text is null)
            return null;
        var current = rules();
        Judgement judgement;
        if (current is null)
        {
            var none = new SqlStatement("UNKNOWN", StatementClass.Unknown, StatementFlags.None, [], [], [], 0, text.Length);
            judgement = Judgement.Of(none, NoRules, "");
        }
        else
        {
            var read = judge.Read(current, text);
            if (catalog is not null && judge.FunctionsToLearn(read) is { Count: > 0 } functions && !catalog.Knows(functions))
                await catalog.LearnAsync(functions);
            judgement = judge.Judge(current, read);
            // Functions may have been created, replaced or dropped: learn them again.
            if (judgement.Decision.Allowed && judgement.Class is StatementClass.Ddl or StatementClass.Dcl or StatementClass.Admin or StatementClass.Unknown)
                catalog?.Forget();
        }
        if (masked is not null && (judgement.Decision.Allowed || judgement.Decision.Action == DecisionAction.RequireApproval) && StaleExecute(judgement, masked) is { } stale)
            return Refused(Rule(judgement), stale) with { Text = text };
        if (name is null)
            return WithApproval(Masked(Rule(judgement), judgement, text, masked, current), judgement, text, null, []) with { Text = text };
        if (name.Length > 0 && judgement.Decision.Action == DecisionAction.RequireApproval && IsApprovalRequired(Masked(Rule(judgement), judgement, text, masked, current), judgement))
            return NamedParseRefused(judgement, text);
        var parsed = Prepared(name, judgement, current, text, masked, parameterTypes, out var tag) with { Text = text, Tag = tag };
        // A Parse runs nothing: a statement that needs approval is put to approvers at its Bind, with the
        // values it runs with. Only the unnamed statement, which SQL (EXECUTE) cannot reach.
        return IsApprovalRequired(parsed, judgement) ? parsed with { Refusal = null } : parsed;
    }

    /// <summary>
    /// A statement that needs approval is not prepared under a name: the server's name space is shared with
    /// SQL-level PREPARE and EXECUTE, so a named statement waiting for its Bind could be reached around it.
    /// </summary>
    private static Ruling NamedParseRefused(Judgement judgement, string text)
    {
        var refused = Rule(judgement);
        return refused with
        {
            Text = text,
            Refusal = refused.Refusal! with
            {
                Hint = "A statement that needs approval is put to approvers with its parameter values when it runs: send it without preparing it under a name (the unnamed statement, as drivers do by default), or as a plain query.",
            },
        };
    }

    /// <summary>The parameter section of a Bind message (from <see cref="Offset"/> of its body): read only when the statement needs approval.</summary>
    private readonly record struct BindValues(ReadOnlyMemory<byte> Body, int Offset);

    private static bool IsApprovalRequired(Ruling ruling, Judgement judgement) =>
        judgement.Decision.Action == DecisionAction.RequireApproval && ruling.Refusal is not null && ruling.Verdict?.Decision == Decision.Name(DecisionAction.RequireApproval);

    /// <summary>A ruling refused by a <c>require_approval</c> rule (and by nothing else) carries what approvers need to decide it.</summary>
    private Ruling WithApproval(Ruling ruling, Judgement judgement, string text, BindValues? values, int[] parameterTypes)
    {
        if (!IsApprovalRequired(ruling, judgement))
            return ruling;
        List<BoundValue> parameters = [];
        List<string?> shown = [];
        if (values is { } bind)
        {
            var reader = new PgReader(bind.Body.Span[bind.Offset..]);
            var formatCount = reader.ReadCount16();
            var formats = new short[formatCount];
            for (var i = 0; i < formatCount; i++)
                formats[i] = reader.ReadInt16();
            var count = reader.ReadCount16();
            for (var i = 0; i < count; i++)
            {
                var format = formatCount == 0 ? (short)0 : formatCount == 1 ? formats[0] : i < formatCount ? formats[i] : (short)0;
                var value = reader.ReadValue(out var isNull);
                var copy = isNull ? (ReadOnlyMemory<byte>?)null : value.ToArray();
                parameters.Add(new BoundValue(format, copy));
                shown.Add(isNull ? null : PgValueText.Render(value, format, i < parameterTypes.Length ? parameterTypes[i] : 0, 2000));
            }
        }
        return ruling with { Approval = new Approvals.ApprovalNeed(judgement.Decision, text, StatementNames.Of(judgement.Class), parameters, parameterTypes, shown, judge.StandardConformingStrings) };
    }

    /// <summary>
    /// SQL-level PREPARE and EXECUTE are refused while masking is in force: the name space is the
    /// server's (shared with protocol-level statements, and PREPARE, DEALLOCATE and DISCARD may fail or be
    /// rolled back unseen), so the gateway cannot be sure what an EXECUTE runs. Drivers' prepared
    /// statements (the extended protocol) are followed and judged at every Bind.
    /// </summary>
    private static Decision? StaleExecute(Judgement judgement, MaskedTarget masked)
    {
        var rule = masked.Rules.FirstRule;
        foreach (var s in judgement.Statements)
            if (s.Statement.Has(StatementFlags.Execute) || s.Statement.Has(StatementFlags.Prepare))
                return new Decision(DecisionAction.Block, rule,
                    $"blocked by masking rule \"{rule}\": SQL-level {(s.Statement.Has(StatementFlags.Prepare) ? "PREPARE" : "EXECUTE")} is not accepted while masking rules are in force on this target; use your driver's prepared statements (the extended protocol), which the gateway follows");
        return null;
    }

    /// <summary>A ruling refused by masking: 42501 naming the masking rule.</summary>
    private static Ruling Refused(Ruling ruling, Decision refusal) =>
        new(ruling.Verdict! with { Decision = Decision.Name(refusal.Action), Rule = refusal.DecidedBy, Masked = true },
            new PgError("ERROR", SqlStates.InsufficientPrivilege, refusal.Reason, null,
                "A masked column may leave only as a plain output column (SELECT email FROM …), where the gateway masks it; filters may use it unless the rule is strict."));

    private readonly ConditionalWeakTable<Judgement, MaskMemo> _maskMemos = new();

    /// <summary>A masked ruling, kept for the judgement while the text and the masking stay the same (a repeated statement costs a lookup).</summary>
    private sealed record MaskMemo(MaskedTarget Target, string Text, Ruling Ruling);

    /// <summary>The ruling with masking applied: refused, or marked (errors withheld, a COPY's rows masked), or as it was.</summary>
    private Ruling Masked(Ruling ruling, Judgement judgement, string text, MaskedTarget? target, RuleSet? current)
    {
        if (target is null || ruling.Verdict is null)
            return ruling;
        if (ruling.Refusal is not null)
        {
            // A statement waiting for approval runs, once approved, masked as an allowed one would; one that
            // masking refuses is refused outright (nothing to approve).
            if (judgement.Decision.Action != DecisionAction.RequireApproval)
                return ruling;
            var asAllowed = Masked(ruling with { Refusal = null }, judgement, text, target, current);
            return asAllowed.Refusal is not null ? asAllowed : asAllowed with { Refusal = ruling.Refusal };
        }
        if (_maskMemos.TryGetValue(judgement, out var memo) && ReferenceEquals(memo.Target, target) && memo.Text == text)
            return memo.Ruling;
        var verdict = MaskingJudge.Judge(target, current?.Role ?? "", text, judgement.Statements.Select(s => s.Statement).ToList(), judge.StandardConformingStrings);
        Ruling masked;
        if (verdict.Refusal is { } refusal)
            masked = Refused(ruling, refusal);
        else
            masked = verdict.Touches ? ruling with { Verdict = ruling.Verdict with { Masked = true, Copy = verdict.Copy } } : ruling;
        _maskMemos.AddOrUpdate(judgement, new MaskMemo(target, text, masked));
        return masked;
    }

    // What the server holds under each statement name, as far as it has answered (committed), and the
    // Parse and Close messages on their way (pending, in order). A Parse of a name that exists fails at
    // the server, a Parse after an error is skipped, a Close may be skipped too: so a name changes only
    // when the server says it did (ParseComplete, CloseComplete; StatementLedger.TakeSettled). A Bind
    // is judged by every statement the name may stand for — the committed one and any pending — and the
    // most restrictive wins. Both loops use this state: the agent side judges, the target side settles.
    private readonly Lock _statementsLock = new();
    private readonly Dictionary<string, PreparedStatement> _committed = new(StringComparer.Ordinal);
    private readonly List<PendingName> _pending = [];

    /// <summary>A named Parse (<see cref="Statement"/> set) or Close (null) the server has not answered yet; the ledger's tag for it.</summary>
    private sealed record PendingName(string Name, PreparedStatement? Statement);

    private Ruling Prepared(string name, Judgement judgement, RuleSet? current, string text, MaskedTarget? masked, int[] parameterTypes, out object? tag)
    {
        var ruling = Masked(Rule(judgement), judgement, text, masked, current);
        var prepared = new PreparedStatement(judgement, current, ruling, text, masked, parameterTypes);
        lock (_statementsLock)
        {
            if (name.Length == 0)
            {
                // The server drops the unnamed statement as every Parse starts, whether the Parse then
                // succeeds or not: the unnamed statement is always the latest Parse's (or none).
                _pending.RemoveAll(p => p.Name.Length == 0);
                _committed[name] = prepared;
                tag = null;
                return ruling;
            }
            var pending = new PendingName(name, prepared);
            _pending.Add(pending);
            tag = pending;
        }
        return ruling;
    }

    /// <summary>A statement as parsed: its judgement, under which rules and masking, and the ruling then (reused at every Bind while they stay).</summary>
    private sealed record PreparedStatement(Judgement Judgement, RuleSet? Rules, Ruling Ruling, string Text, MaskedTarget? Masking, int[] ParameterTypes);

    /// <summary>A Close of a statement: the name goes when the server confirms it.</summary>
    public object OnClose(string name)
    {
        var pending = new PendingName(name, null);
        lock (_statementsLock)
            _pending.Add(pending);
        return pending;
    }

    /// <summary>The server answered (done) or refused or skipped (not done) a Parse or Close this guard tagged.</summary>
    public void OnSettled(object tag, bool done)
    {
        if (tag is not PendingName pending)
            return;
        lock (_statementsLock)
        {
            _pending.Remove(pending);
            if (!done)
                return;
            if (pending.Statement is null)
            {
                _committed.Remove(pending.Name);
                return;
            }
            if (_committed.Count >= SqlSessionJudge.MaxPreparedNames && !_committed.ContainsKey(pending.Name))
                _committed.Clear(); // bounded; a forgotten name is refused at Bind (fail closed)
            _committed[pending.Name] = pending.Statement;
        }
    }

    public Ruling OnBind(string statementName) => OnBind(statementName, null);

    private Ruling OnBind(string statementName, BindValues? values)
    {
        List<PreparedStatement> candidates = [];
        lock (_statementsLock)
        {
            if (_committed.TryGetValue(statementName, out var committed))
                candidates.Add(committed);
            foreach (var pending in _pending)
                if (pending.Statement is { } statement && pending.Name == statementName)
                    candidates.Add(statement);
        }
        if (candidates.Count == 0)
        {
            var unknown = new SqlStatement("UNKNOWN", StatementClass.Unknown, StatementFlags.None, [], [], [], 0, 0, Reason: "a prepared statement this session did not prepare through the gateway");
            return Rule(Judgement.Of(unknown, new Decision(DecisionAction.Block, null, $"prepared statement \"{statementName}\" was not prepared on this connection", BuiltIn: "unknown-statement"), ""));
        }
        Ruling? strictest = null;
        PreparedStatement? chosen = null;
        var rulings = candidates.Select(c => (Prepared: c, Ruling: Rejudged(c, out var judgement), Judgement: judgement)).ToList();
        foreach (var (prepared, ruling, judgement) in rulings)
            if (strictest is null || (ruling.Refusal is not null && strictest.Value.Refusal is null))
            {
                strictest = ruling;
                chosen = prepared;
            }
        // Approval binds to one statement: only when the name cannot stand for another one.
        if (rulings.Count == 1 && chosen is not null)
            strictest = WithApproval(strictest!.Value, rulings[0].Judgement, chosen.Text, values, chosen.ParameterTypes);
        if (strictest!.Value.Refusal is null && rulings.Count > 1 && rulings.Any(r => r.Ruling.Verdict?.Masked == true))
        {
            // The name may stand for any of them: mask as the most masked, and a COPY only if all agree how.
            var copies = rulings.Select(r => r.Ruling.Verdict?.Copy).Distinct().ToList();
            if (copies.Count > 1)
                return Refused(strictest.Value, new Decision(DecisionAction.Block, masking?.Last?.Rules.FirstRule ?? "masking",
                    $"prepared statement \"{statementName}\" may stand for statements masked differently (a Parse of the name is not answered yet); wait for it"));
            strictest = strictest.Value with { Verdict = strictest.Value.Verdict! with { Masked = true, Copy = copies[0] } };
        }
        return strictest.Value;
    }

    /// <summary>A prepared statement judged with today's rules (the policy may have changed since the Parse).</summary>
    private Ruling Rejudged(PreparedStatement prepared, out Judgement judgement)
    {
        var current = rules();
        var masked = masking?.Last;
        judgement = prepared.Judgement;
        if (ReferenceEquals(current, prepared.Rules) && ReferenceEquals(masked, prepared.Masking))
            return prepared.Ruling;
        if (current is null)
        {
            judgement = Judgement.Of(prepared.Judgement.Statements[0].Statement, NoRules, "");
            return Rule(judgement);
        }
        var statements = prepared.Judgement.Statements.Select(s => s with { Decision = judge.Decide(current, s.Statement, s.Normalized) }).ToList();
        var decision = statements.Select(s => s.Decision).Aggregate((a, b) => b.Action > a.Action ? b : a);
        judgement = new Judgement(statements, decision);
        return Masked(Rule(judgement), judgement, prepared.Text, masked, current);
    }

    public Ruling OnFunctionCall(int oid)
    {
        if (!PgFastpath.LargeObjectFunctions.TryGetValue(oid, out var function))
        {
            var unknown = new SqlStatement("FUNCTION CALL", StatementClass.Unknown, StatementFlags.None, [], [], [], 0, 0, Reason: $"fastpath call of function oid {oid}");
            return Rule(Judgement.Of(unknown, new Decision(DecisionAction.Block, null,
                $"fastpath function calls are allowed only for the large-object functions (function oid {oid} is not one)", BuiltIn: "fastpath"), ""));
        }
        var statement = new SqlStatement("SELECT", function.Writes ? StatementClass.Write : StatementClass.Read,
            function.Writes ? StatementFlags.LargeObjectWrite : StatementFlags.None, [], [], [function.Name], 0, 0);
        var normalized = $"SELECT {function.Name.ToUpperInvariant()} ( )";
        var current = rules();
        var decision = current is null ? NoRules : judge.Decide(current, statement, NormalizedText.Of(normalized));
        return Rule(Judgement.Of(statement, decision, normalized));
    }

    /// <summary>The server's settings at startup (its ParameterStatus messages among the startup messages): what RESET returns to.</summary>
    public void OnStartup(IEnumerable<byte[]> messages)
    {
        foreach (var message in messages)
        {
            if (message.Length < 5 || message[0] != (byte)'S')
                continue;
            var reader = new PgReader(message.AsSpan(5));
            OnParameterStatus(reader.ReadCString(), reader.ReadCString());
        }
        judge.StartupStandardConformingStrings = judge.StandardConformingStrings;
    }

    /// <summary>The server reported a setting that changes how SQL text reads.</summary>
    public void OnParameterStatus(string name, string value)
    {
        if (name.Equals("standard_conforming_strings", StringComparison.OrdinalIgnoreCase))
            judge.StandardConformingStrings = !value.Equals("off", StringComparison.OrdinalIgnoreCase);
        else if (name.Equals("client_encoding", StringComparison.OrdinalIgnoreCase))
            judge.ClientEncoding = value;
    }

    private static readonly Decision NoRules = new(DecisionAction.Block, null, "the agent's role is no longer in the policy", BuiltIn: "no-role");


    /// <summary>The ruling of a judgement, built once and kept with it (the judge reuses the judgement of a repeated statement).</summary>
    private static Ruling Rule(Judgement judgement)
    {
        if (judgement.GatewayTag is StrongBox<Ruling> known)
            return known.Value;
        var ruling = Build(judgement);
        judgement.GatewayTag = new StrongBox<Ruling>(ruling);
        return ruling;
    }

    private static Ruling Build(Judgement judgement)
    {
        var decision = judgement.Decision;
        var verdict = new StatementVerdict(judgement.Class, Decision.Name(decision.Action), decision.DecidedBy,
            judgement.Statements.Count == 1 ? judgement.Statements[0].Statement.Command : judgement.Commands, judgement.Flags & ~StatementFlags.PasswordLiteral);
        if (decision.Allowed)
            return new Ruling(verdict, null);
        var count = judgement.Statements.Count;
        var index = judgement.Statements.ToList().FindIndex(s => s.Decision == decision);
        var which = count > 1 ? $" (statement {index + 1} of {count}; none of them was run)" : "";
        var statement = index >= 0 ? judgement.Statements[index].Statement : null;
        var detail = statement is null ? null
            : $"The statement is {statement.Command} (class {StatementNames.Of(statement.Class)}{(statement.Flags == StatementFlags.None ? "" : ", " + string.Join(", ", StatementNames.Names(statement.Flags & ~StatementFlags.PasswordLiteral)))}).";
        var hint = decision.Action == DecisionAction.RequireApproval
            ? "This kind of message cannot be put to approvers (a fastpath function call, or a prepared statement whose name may stand for several); send it as a query or with your driver's prepared statements."
            : decision.Rule is null && decision.BuiltIn is null
                ? "Ask an admin to add a rule that allows it, or try it in the console's simulator."
                : null;
        var message = decision.Reason + which;
        return new Ruling(verdict, new PgError("ERROR", SqlStates.InsufficientPrivilege, message, detail, hint));
    }
}
