using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using Airlock.Sidecar.Protocols.Sql;

namespace Airlock.Sidecar.Policy.Guardrails;

/// <summary>What happens to a statement, from least to most restrictive: the most restrictive matching rule wins.</summary>
public enum DecisionAction
{
    Allow,
    RequireApproval,
    Block,
}

/// <summary>A rule's action, typed.</summary>
public enum RuleAction
{
    Allow,
    RequireApproval,
    Block,
    /// <summary>Masks result columns; does not decide whether a statement runs.</summary>
    Mask,
}

/// <summary>The decision on one statement.</summary>
/// <param name="Rule">The deciding rule's name; null when no rule decided (nothing allowed it) or a built-in guard did (<see cref="BuiltIn"/>).</param>
/// <param name="Reason">Why, in words, for the agent's error and the recording.</param>
/// <param name="Message">The deciding rule's own message, if it has one.</param>
/// <param name="Approval">For <see cref="DecisionAction.RequireApproval"/>: the rule's approval settings.</param>
public sealed record Decision(DecisionAction Action, string? Rule, string Reason, string? Message = null, ApprovalSpec? Approval = null, string? BuiltIn = null)
{
    public bool Allowed => Action == DecisionAction.Allow;

    /// <summary>The name recorded as the deciding rule: the rule's, a built-in guard's, or <c>default-deny</c>.</summary>
    public string DecidedBy => Rule ?? BuiltIn ?? DefaultDeny;

    public const string DefaultDeny = "default-deny";

    public static string Name(DecisionAction action) => action switch
    {
        DecisionAction.Allow => "allow",
        DecisionAction.RequireApproval => "require_approval",
        _ => "block",
    };
}

/// <summary>
/// A role's rules as they apply on one target, compiled once per snapshot (actions, classes and flags
/// parsed; patterns compiled), and the pure evaluator over them:
/// <list type="number">
/// <item>a rule applies when it names no targets or names this one; it matches a statement when every
/// criterion it gives holds (class, command, table, function, flag, pattern over the normalized text);</item>
/// <item>among matching rules the most restrictive action wins: block &gt; require_approval &gt; allow
/// (the first such rule in order is the one named);</item>
/// <item>no matching rule: blocked (default deny); an <c>unknown</c> statement is allowed only by a
/// rule that lists the class <c>unknown</c> by name.</item>
/// </list>
/// The same evaluator decides in the sidecar and in the console's simulator.
/// </summary>
public sealed class RuleSet
{
    private readonly CompiledRule[] _rules;
    private readonly string _role;

    private RuleSet(string role, CompiledRule[] rules)
    {
        _role = role;
        _rules = rules;
        AllowsWrites = rules.Any(r => r.Action is RuleAction.Allow or RuleAction.RequireApproval && r.CouldMatchBeyondReads);
        var lexerChange = new SqlStatement("SET", StatementClass.Admin, StatementFlags.LexerSetting, [], [], [], 0, 0);
        AllowsLexerSettings = Evaluate(lexerChange, NormalizedText.Of("SET STANDARD_CONFORMING_STRINGS = OFF")).Action != DecisionAction.Block;
    }

    /// <summary>Whether a rule reads the statement's text itself (a pattern): then texts are never judged by their shape.</summary>
    public bool HasPatterns => _rules.Any(r => r.Pattern is not null);

    /// <summary>Whether a session under these rules may change how SQL text reads (standard_conforming_strings, client_encoding).</summary>
    public bool AllowsLexerSettings { get; }

    /// <summary>
    /// Whether any allowing rule could let something other than a read through. When none can, the
    /// sidecar opens the upstream session read-only (<c>default_transaction_read_only</c>), a second wall
    /// behind the classifier.
    /// </summary>
    public bool AllowsWrites { get; }

    public string Role => _role;

    private static readonly ConditionalWeakTable<RolePolicy, Dictionary<string, RuleSet>> Compiled = new();

    /// <summary>The rules of <paramref name="role"/> that apply on <paramref name="target"/>; compiled once per role object (per snapshot).</summary>
    public static RuleSet For(RolePolicy role, string target)
    {
        var byTarget = Compiled.GetValue(role, _ => new Dictionary<string, RuleSet>(StringComparer.Ordinal));
        lock (byTarget)
        {
            if (!byTarget.TryGetValue(target, out var set))
                byTarget[target] = set = Compile(role.Name, role.Rules.Where(r => r.Targets.Count == 0 || r.Targets.Contains(target, StringComparer.Ordinal)));
            return set;
        }
    }

    /// <summary>Compiles rules (the simulator and tests; the sidecar uses <see cref="For"/>).</summary>
    public static RuleSet Compile(string role, IEnumerable<RulePolicy> rules) => new(role, rules.Select(CompiledRule.From).ToArray());

    /// <summary>Decides one statement; its normalized text is made only if a rule has a pattern.</summary>
    public Decision Decide(SqlStatement statement, NormalizedText normalized) => Evaluate(statement, normalized);

    private Decision Evaluate(SqlStatement statement, NormalizedText normalized)
    {
        CompiledRule? allow = null, approval = null;
        foreach (var rule in _rules)
        {
            if (rule.Action == RuleAction.Mask || !rule.Matches(statement, normalized))
                continue;
            switch (rule.Action)
            {
                case RuleAction.Block:
                    return new Decision(DecisionAction.Block, rule.Name,
                        $"blocked by rule \"{rule.Name}\" of role \"{_role}\"{(rule.Message is null ? "" : $": {rule.Message}")}", rule.Message);
                case RuleAction.RequireApproval:
                    approval ??= rule;
                    break;
                case RuleAction.Allow:
                    allow ??= rule;
                    break;
            }
        }
        if (approval is not null)
            return new Decision(DecisionAction.RequireApproval, approval.Name,
                $"approval required by rule \"{approval.Name}\" of role \"{_role}\"{(approval.Message is null ? "" : $": {approval.Message}")}", approval.Message, approval.Approval);
        if (allow is not null)
            return new Decision(DecisionAction.Allow, allow.Name, $"allowed by rule \"{allow.Name}\"");
        var what = statement.Class == StatementClass.Unknown
            ? $"the statement is unknown ({statement.Reason ?? "not fully understood"}) and no rule of role \"{_role}\" allows unknown statements"
            : $"no rule of role \"{_role}\" allows {statement.Command} ({StatementNames.Of(statement.Class)}{(statement.Reason is null ? "" : $": {statement.Reason}")})";
        return new Decision(DecisionAction.Block, null, what);
    }

    private sealed class CompiledRule
    {
        public required string Name { get; init; }
        public required RuleAction Action { get; init; }
        public string? Message { get; init; }
        public ApprovalSpec? Approval { get; init; }
        public StatementClass[] Classes { get; init; } = [];
        public string[] Commands { get; init; } = [];
        public string[] Tables { get; init; } = [];
        public string[] Functions { get; init; } = [];
        public StatementFlags Flags { get; init; }
        public Regex? Pattern { get; init; }
        /// <summary>An unparseable class or flag (from a newer control plane): the rule matches nothing if it allows, everything if it blocks (fail closed).</summary>
        public bool Unreadable { get; init; }

        public bool CouldMatchBeyondReads => !Unreadable && (Classes.Length == 0 || Classes.Any(c => c != StatementClass.Read));

        public static CompiledRule From(RulePolicy rule)
        {
            var action = rule.Action switch
            {
                RuleActions.Allow => RuleAction.Allow,
                RuleActions.RequireApproval => RuleAction.RequireApproval,
                RuleActions.Mask => RuleAction.Mask,
                _ => RuleAction.Block, // "block", or an action this sidecar does not know: fail closed
            };
            var unreadable = false;
            var classes = new List<StatementClass>();
            foreach (var name in rule.Match.Classes)
                if (StatementNames.TryParseClass(name, out var c))
                    classes.Add(c);
                else
                    unreadable = true;
            var flags = StatementFlags.None;
            foreach (var name in rule.Match.Flags ?? [])
                if (StatementNames.TryParseFlag(name, out var f))
                    flags |= f;
                else
                    unreadable = true;
            Regex? pattern = null;
            if (rule.Match.Pattern is { } p)
            {
                try
                {
                    pattern = new Regex(p, RegexOptions.CultureInvariant | RegexOptions.IgnoreCase, TimeSpan.FromMilliseconds(100));
                }
                catch (ArgumentException)
                {
                    unreadable = true;
                }
            }
            return new CompiledRule
            {
                Name = rule.Name,
                Action = action,
                Message = rule.Message,
                Approval = rule.Approval,
                Classes = [.. classes],
                Commands = rule.Match.Commands.Select(c => c.Trim().ToUpperInvariant()).ToArray(),
                Tables = rule.Match.Tables.Select(t => t.Trim()).ToArray(),
                Functions = (rule.Match.Functions ?? []).Select(SqlFunctions.Fold).ToArray(),
                Flags = flags,
                Pattern = pattern,
                Unreadable = unreadable,
            };
        }

        public bool Matches(SqlStatement s, NormalizedText normalized)
        {
            if (Unreadable)
                return Action == RuleAction.Block;
            if (Classes.Length == 0 ? s.Class == StatementClass.Unknown && Action != RuleAction.Block : !Classes.Contains(s.Class))
                return false;
            if (Commands.Length > 0 && !Commands.Any(c => s.Command == c || s.Command.StartsWith(c + " ", StringComparison.Ordinal)))
                return false;
            if (Tables.Length > 0 && !Tables.Any(t => s.TablesRead.Any(x => TableMatches(t, x)) || s.TablesWritten.Any(x => TableMatches(t, x))))
                return false;
            if (Functions.Length > 0 && !Functions.Any(f => s.Functions.Any(x => x == f || x.EndsWith("." + f, StringComparison.Ordinal))))
                return false;
            if (Flags != StatementFlags.None && (s.Flags & Flags) == 0)
                return false;
            if (Pattern is not null)
            {
                try
                {
                    return Pattern.IsMatch(normalized.Value);
                }
                catch (RegexMatchTimeoutException)
                {
                    return Action == RuleAction.Block; // undecided: a blocking rule holds, an allowing one does not
                }
            }
            return true;
        }

        /// <summary><c>customers</c> matches <c>customers</c> and <c>any_schema.customers</c>; <c>sales.customers</c> only that (case-insensitive).</summary>
        private static bool TableMatches(string rule, string table) =>
            string.Equals(rule, table, StringComparison.OrdinalIgnoreCase)
            || (!rule.Contains('.') && table.EndsWith("." + rule, StringComparison.OrdinalIgnoreCase));
    }
}
