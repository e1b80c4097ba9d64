using System.Collections.Concurrent;
using Airlock.Sidecar.Protocols.Sql;

namespace Airlock.Sidecar.Policy.Guardrails;

/// <summary>What the target's catalog says about a function the classifier does not know.</summary>
public enum FunctionVolatility
{
    /// <summary>No function of that name exists (the server will refuse the call).</summary>
    Missing,
    Immutable,
    Stable,
    Volatile,
    /// <summary>The catalog could not be read: judged as volatile (fail closed).</summary>
    Unavailable,
}

/// <summary>One statement as judged: its classification (resolved in the session) and the decision.</summary>
public sealed record StatementJudgement(SqlStatement Statement, Decision Decision, NormalizedText Normalized);

/// <summary>The judgement of one message's text: every statement, and the message's decision (the most restrictive).</summary>
public sealed record Judgement(IReadOnlyList<StatementJudgement> Statements, Decision Decision)
{
    /// <summary>The riskiest class among the statements (what the recording shows as the classification).</summary>
    public StatementClass Class => Statements.Count == 0 ? StatementClass.Read : Statements.Max(s => s.Statement.Class);

    public string Commands => string.Join("; ", Statements.Select(s => s.Statement.Command).Distinct());

    public StatementFlags Flags => Statements.Aggregate(StatementFlags.None, (f, s) => f | s.Statement.Flags);

    public static Judgement Of(SqlStatement statement, Decision decision, string normalized) => new([new StatementJudgement(statement, decision, NormalizedText.Of(normalized))], decision);

    /// <summary>What the gateway made of this judgement (its wire answer), kept with it: a cached judgement is reused by every session.</summary>
    public object? GatewayTag { get; set; }
}

/// <summary>
/// Judges SQL text for one session: classifies it (cached by text), resolves what depends on the
/// session (SQL-level <c>PREPARE</c>/<c>EXECUTE</c> names; functions unknown to the classifier, through
/// the target's catalog), and decides each statement with the role's <see cref="RuleSet"/>. Pure and
/// single-threaded per session; the gateway updates <see cref="StandardConformingStrings"/> and
/// <see cref="ClientEncoding"/> from the server's ParameterStatus messages.
/// </summary>
/// <param name="byShape">May reuse the classification of a text of the same shape (see <see cref="AnalysisCache"/>); not where statement offsets are read (the simulator).</param>
public sealed class SqlSessionJudge(bool readOnlySession, IReadOnlySet<string>? operatorSafeFunctions = null, Func<string, FunctionVolatility>? catalog = null, bool byShape = false)
{
    public const string ReadOnlyGuard = "read-only-session";
    public const string EncodingGuard = "client-encoding";
    public const int MaxPreparedNames = 4096;

    /// <summary>True unless the server reported standard_conforming_strings off.</summary>
    public bool StandardConformingStrings { get; set; } = true;

    /// <summary>The session's value at startup, what RESET and DISCARD ALL return to.</summary>
    public bool StartupStandardConformingStrings { get; set; } = true;

    /// <summary>
    /// Whether the setting could change while a message is in flight: then a text with a backslash is
    /// read both ways (see <see cref="SqlClassifier.Analyze"/>). It cannot when it is on, was on at
    /// startup, and the rules refuse every statement that changes it.
    /// </summary>
    private bool BothReadings(RuleSet rules) => !(StandardConformingStrings && StartupStandardConformingStrings && !rules.AllowsLexerSettings);

    /// <summary>The client encoding the server reported; text is read safely only in encodings whose multibyte characters contain no ASCII bytes.</summary>
    public string ClientEncoding { get; set; } = "UTF8";

    /// <summary>Whether the upstream session runs read-only (then nothing may turn that off).</summary>
    public bool ReadOnlySession => readOnlySession;

    private readonly Dictionary<string, SqlStatement> _prepared = new(StringComparer.Ordinal);

    /// <summary>Client encodings in which no byte of a multibyte character is an ASCII quote or backslash.</summary>
    public static bool IsSafeEncoding(string encoding) => encoding.Replace("-", "").Replace("_", "").ToUpperInvariant() is not
        ("SJIS" or "SHIFTJIS" or "SHIFTJIS2004" or "BIG5" or "GBK" or "GB18030" or "UHC" or "JOHAB" or "WIN932" or "WIN936" or "WIN950" or "MSKANJI" or "CP932" or "CP936" or "CP949" or "CP950");

    /// <summary>Judges <paramref name="text"/>; session effects (PREPARE/DEALLOCATE names) apply only when the message is allowed.</summary>
    public Judgement Judge(RuleSet rules, string text) => Judge(rules, Read(rules, text));

    /// <summary>The classification of <paramref name="text"/> (cached), to ask <see cref="FunctionsToLearn(SqlText)"/> and then <see cref="Judge(RuleSet, SqlText)"/> without reading it twice.</summary>
    public SqlText Read(RuleSet rules, string text) => AnalysisCache.Get(text, StandardConformingStrings, BothReadings(rules), byShape && !rules.HasPatterns);

    /// <summary>Judges a text read by <see cref="Read"/>; session effects (PREPARE/DEALLOCATE names) apply only when the message is allowed.</summary>
    public Judgement Judge(RuleSet rules, SqlText analysis)
    {
        // The common case — one statement that depends on nothing in the session — is judged once per
        // rule set and cached text: a repeated statement costs a lookup and no allocation.
        var independent = analysis.Statements.Count == 1 && IsSessionIndependent(analysis.Statements[0]) && IsSafeEncoding(ClientEncoding)
            && (catalog is null || analysis.Statements[0].Fields is null); // x.f is judged by the catalog, which changes
        if (independent && analysis.Last is { } last && ReferenceEquals(last.Rules, rules))
            return last.Judgement;
        var judgement = JudgeAll(rules, analysis);
        if (independent)
            analysis.Last = (rules, judgement);
        return judgement;
    }

    /// <summary>Its decision depends only on its text and the rules: no prepared names, catalog, read-only guard.</summary>
    private static bool IsSessionIndependent(SqlStatement s) =>
        (s.Flags & (StatementFlags.Execute | StatementFlags.Prepare | StatementFlags.UnknownFunction | StatementFlags.ReadWriteTransaction)) == 0
        && s.Command is not ("DEALLOCATE" or "DISCARD ALL");

    private Judgement JudgeAll(RuleSet rules, SqlText analysis)
    {
        var judged = new List<StatementJudgement>(analysis.Statements.Count);
        Dictionary<string, SqlStatement?>? pending = null; // this message's own PREPARE/DEALLOCATE, in order
        Decision? overall = null;
        for (var i = 0; i < analysis.Statements.Count; i++)
        {
            var statement = analysis.Statements[i];
            var normalized = analysis.Normalized(i);
            if (!IsSafeEncoding(ClientEncoding))
            {
                statement = statement with { Class = StatementClass.Unknown, Reason = $"the client encoding {ClientEncoding} cannot be read safely" };
                var refused = new Decision(DecisionAction.Block, null, $"the session's client encoding {ClientEncoding} cannot be read safely by the gateway; use UTF8", BuiltIn: EncodingGuard);
                judged.Add(new StatementJudgement(statement, refused, normalized));
                overall = Restrictive(overall, refused);
                continue;
            }
            if (statement.ExecuteName is { } name && statement.Has(StatementFlags.Execute))
                statement = ResolveExecute(statement, name, pending);
            statement = WithCatalog(statement);
            var decision = Decide(rules, statement, normalized);
            judged.Add(new StatementJudgement(statement, decision, normalized));
            overall = Restrictive(overall, decision);

            if (statement.Has(StatementFlags.Prepare) && statement.PreparedName is { } prepared)
            {
                pending ??= new(StringComparer.Ordinal);
                // A name already prepared makes the server refuse this PREPARE: the old statement stays.
                if (!(pending.TryGetValue(prepared, out var p) ? p is not null : _prepared.ContainsKey(prepared)))
                    pending[prepared] = statement;
            }
            else if (statement.Command == "DEALLOCATE" && statement.PreparedName is { } gone)
            {
                pending ??= new(StringComparer.Ordinal);
                if (gone == "*")
                {
                    foreach (var key in _prepared.Keys.Concat(pending.Keys).ToList())
                        pending[key] = null;
                }
                else
                {
                    pending[gone] = null;
                }
            }
            else if (statement.Command == "DISCARD ALL")
            {
                pending ??= new(StringComparer.Ordinal);
                foreach (var key in _prepared.Keys.Concat(pending.Keys).ToList())
                    pending[key] = null;
            }
        }
        overall ??= new Decision(DecisionAction.Allow, null, "an empty statement", BuiltIn: "empty");
        if (overall.Allowed && pending is not null)
            foreach (var (key, value) in pending)
            {
                if (value is null)
                    _prepared.Remove(key);
                else if (_prepared.Count < MaxPreparedNames)
                    _prepared[key] = value;
            }
        return new Judgement(judged, overall);
    }

    /// <summary>Functions in <paramref name="text"/> that only the target's catalog can judge (neither known to the classifier nor vouched for by the operator).</summary>
    public IReadOnlyList<string> FunctionsToLearn(SqlText analysis)
    {
        if (catalog is null)
            return [];
        List<string>? names = null;
        foreach (var statement in analysis.Statements)
        {
            foreach (var f in statement.Has(StatementFlags.UnknownFunction) ? statement.Functions : [])
                if (SqlFunctions.Known(f) is null && operatorSafeFunctions?.Contains(f) != true)
                    (names ??= []).Add(f);
            foreach (var f in statement.Fields ?? [])
                if (operatorSafeFunctions?.Contains(f) != true)
                    (names ??= []).Add(f);
        }
        return names ?? (IReadOnlyList<string>)[];
    }

    /// <summary>Decides a statement built by the gateway (a fastpath function call stands for <c>SELECT f(…)</c>).</summary>
    public Decision Decide(RuleSet rules, SqlStatement statement, NormalizedText normalized)
    {
        if (readOnlySession && statement.Has(StatementFlags.ReadWriteTransaction))
            return new Decision(DecisionAction.Block, null,
                "this session is read-only because role's rules allow no writes on this target; it cannot be made writable", BuiltIn: ReadOnlyGuard);
        return rules.Decide(statement, normalized);
    }

    private static Decision Restrictive(Decision? a, Decision b) => a is null || b.Action > a.Action ? b : a;

    private SqlStatement ResolveExecute(SqlStatement execute, string name, Dictionary<string, SqlStatement?>? pending)
    {
        var prepared = pending is not null && pending.TryGetValue(name, out var p) ? p : _prepared.GetValueOrDefault(name);
        if (prepared is null)
            return execute; // unknown: the server has no such statement either
        // What was prepared, plus whatever the EXECUTE's own arguments call.
        var argumentClass = StatementClass.Read;
        var argumentFlags = StatementFlags.Execute;
        foreach (var f in execute.Functions)
            if (SqlFunctions.Known(f) is { } risk)
            {
                argumentClass = risk.Class > argumentClass ? risk.Class : argumentClass;
                argumentFlags |= risk.Flags;
            }
            else
            {
                argumentFlags |= StatementFlags.UnknownFunction;
            }
        return prepared with
        {
            Command = "EXECUTE",
            Class = prepared.Class > argumentClass ? prepared.Class : argumentClass,
            Flags = (prepared.Flags & ~StatementFlags.Prepare) | argumentFlags,
            Functions = prepared.Functions.Concat(execute.Functions).Distinct().ToArray(),
            Start = execute.Start,
            Length = execute.Length,
            PreparedName = null,
            ExecuteName = name,
            Reason = prepared.Reason,
        };
    }

    /// <summary>Functions the classifier does not know: the operator's safe list, else the target's catalog (volatile, or unreadable → at least a write).</summary>
    private SqlStatement WithCatalog(SqlStatement statement)
    {
        if (!statement.Has(StatementFlags.UnknownFunction) && (statement.Fields is null || catalog is null))
            return statement;
        string? volatileFunction = null;
        foreach (var f in statement.Has(StatementFlags.UnknownFunction) ? statement.Functions : [])
        {
            if (SqlFunctions.Known(f) is not null || operatorSafeFunctions?.Contains(f) == true)
                continue;
            var volatility = catalog?.Invoke(f) ?? FunctionVolatility.Unavailable;
            if (volatility is FunctionVolatility.Volatile or FunctionVolatility.Unavailable)
            {
                volatileFunction = f;
                break;
            }
        }
        // x.f may be f(x) (attribute notation): a field whose name is a volatile function counts as the call.
        // Only with a catalog: without one (the simulator) a field is taken for a column.
        if (volatileFunction is null && catalog is not null)
            foreach (var f in statement.Fields ?? [])
            {
                if (operatorSafeFunctions?.Contains(f) == true)
                    continue;
                if (catalog(f) is FunctionVolatility.Volatile or FunctionVolatility.Unavailable)
                {
                    volatileFunction = f;
                    break;
                }
            }
        if (volatileFunction is null || statement.Class >= StatementClass.Write)
            return volatileFunction is null ? statement : statement with { Flags = statement.Flags | StatementFlags.VolatileFunction };
        return statement with
        {
            Class = StatementClass.Write,
            Flags = statement.Flags | StatementFlags.VolatileFunction,
            Reason = catalog is null
                ? $"calls {volatileFunction}(), which the classifier does not know (judged as a volatile function: at least a write)"
                : $"calls {volatileFunction}(), a volatile function not on the safe list (at least a write)",
        };
    }

    /// <summary>
    /// Classifications by text, shared by every session: a repeated statement is classified once. A
    /// text enters the cache the second time it is seen, so one-off texts cost their classification and
    /// nothing else. Bounded in entries and text length.
    /// <para>
    /// By shape: queries that differ only in their number and string literals (<c>… WHERE aid = 48213</c>)
    /// are classified the same — for texts where no part of the classification reads a literal's value:
    /// reads and plain inserts (no UPDATE, DELETE, SET, EXPLAIN, COPY, PREPARE, EXECUTE, UESCAPE, no
    /// backslash), and only for rule sets without patterns (a shape's cached statement offsets and
    /// normalized text are those of the first text of that shape).
    /// </para>
    /// </summary>
    internal static class AnalysisCache
    {
        private const int MaxEntries = 10_000;
        private const int MaxCachedTextLength = 64 * 1024;
        private static readonly ConcurrentDictionary<(string, bool, bool), SqlText> Entries = new();
        private static readonly ConcurrentDictionary<(int, int), byte> SeenOnce = new();

        private static readonly ConcurrentDictionary<(string, bool), SqlText> Shapes = new();

        public static SqlText Get(string text, bool standardConformingStrings, bool bothReadings, bool byShape = false)
        {
            var key = (text, standardConformingStrings, bothReadings);
            if (Entries.TryGetValue(key, out var entry))
                return entry;
            var shape = byShape && text.Length <= MaxCachedTextLength ? Shape(text, standardConformingStrings) : null;
            if (shape is not null && Shapes.TryGetValue((shape, standardConformingStrings), out var sameShape))
                return sameShape;
            var analysis = SqlClassifier.Analyze(text, standardConformingStrings, bothReadings);
            entry = new SqlText(analysis.Statements, text, standardConformingStrings);
            if (shape is not null && analysis.Problem is null)
            {
                if (Shapes.Count >= MaxEntries)
                    Shapes.Clear();
                Shapes[(shape, standardConformingStrings)] = entry;
                return entry;
            }
            if (text.Length <= MaxCachedTextLength)
            {
                var seen = (HashCode.Combine(text, standardConformingStrings, bothReadings), text.Length);
                if (SeenOnce.TryRemove(seen, out _))
                {
                    if (Entries.Count >= MaxEntries)
                        Entries.Clear(); // bounded: a flood of distinct texts costs classification, not memory
                    Entries[key] = entry;
                }
                else
                {
                    if (SeenOnce.Count >= MaxEntries)
                        SeenOnce.Clear();
                    SeenOnce.TryAdd(seen, 0);
                }
            }
            return entry;
        }

        private static readonly string[] ShapeStarts = ["select", "with", "values", "table", "insert"];
        private static readonly string[] ShapeExcluded = ["update", "delete", "set", "explain", "copy", "prepare", "execute", "uescape", "do", "call", "declare"];

        /// <summary>The text with number and string literals replaced by '?', when its classification cannot depend on their values; else null.</summary>
        private static string? Shape(string text, bool standardConformingStrings)
        {
            if (text.Contains('\\'))
                return null;
            List<SqlToken> tokens;
            try
            {
                tokens = SqlLexer.Tokenize(text, standardConformingStrings);
            }
            catch (SqlLexError)
            {
                return null;
            }
            if (tokens.Count == 0 || !((tokens[0].Kind == SqlTokenKind.Word && ShapeStarts.Any(w => SqlTokens.Is(text, tokens[0], w))) || SqlTokens.IsPunctuation(text, tokens[0], '(')))
                return null;
            var shape = new System.Text.StringBuilder(text.Length);
            foreach (var t in tokens)
            {
                switch (t.Kind)
                {
                    case SqlTokenKind.Number or SqlTokenKind.String or SqlTokenKind.BitString:
                        shape.Append(t.Kind == SqlTokenKind.Number ? "?n" : "?s");
                        break;
                    case SqlTokenKind.Word when ShapeExcluded.Any(w => SqlTokens.Is(text, t, w)):
                        return null;
                    case SqlTokenKind.QuotedIdentifier when text[t.Start] is 'u' or 'U':
                        return null;
                    default:
                        shape.Append(text, t.Start, t.Length);
                        break;
                }
                shape.Append(' ');
            }
            return shape.ToString();
        }
    }
}

/// <summary>A message's text as classified (shared through the cache by every session that sends the same text).</summary>
public sealed class SqlText(IReadOnlyList<SqlStatement> statements, string text, bool standardConformingStrings)
{
    private readonly NormalizedText?[] _normalized = new NormalizedText?[statements.Count];

    public IReadOnlyList<SqlStatement> Statements { get; } = statements;

    public NormalizedText Normalized(int i) =>
        _normalized[i] ??= new NormalizedText(text, Statements[i].Start, Statements[i].Length, standardConformingStrings);

    /// <summary>The judgement of this text under the rule set that last judged it (session-independent texts only).</summary>
    internal (RuleSet Rules, Judgement Judgement)? Last { get; set; }
}

/// <summary>A statement's normalized text (see <see cref="SqlNormalizer"/>), made only when a rule's pattern or an approval needs it.</summary>
public sealed class NormalizedText(string text, int start, int length, bool standardConformingStrings)
{
    private string? _value;

    public string Value => _value ??= SqlNormalizer.Normalize(text.Substring(start, length), standardConformingStrings);

    public static NormalizedText Of(string normalized) => new(normalized, 0, normalized.Length, true) { _value = normalized };

    public override string ToString() => Value;
}
