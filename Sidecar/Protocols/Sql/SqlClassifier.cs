namespace Airlock.Sidecar.Protocols.Sql;

/// <summary>The statements of one message, or why the text could not be read.</summary>
/// <param name="Problem">Set when the text is not understood as a whole (a lexer error, a reading that depends on a setting): then there is one <see cref="StatementClass.Unknown"/> statement covering it.</param>
public sealed record SqlAnalysis(IReadOnlyList<SqlStatement> Statements, string? Problem = null);

/// <summary>
/// Classifies SQL text, statement by statement: command tag, class, tables read and written, functions
/// called and flags (<see cref="StatementFlags"/>). Pure and linear in the length of the text.
/// It reads the whole token stream, not the first keyword: <c>WITH d AS (DELETE …) SELECT …</c> writes,
/// <c>EXPLAIN ANALYZE DELETE …</c> runs the delete, and a dangerous function anywhere makes the
/// statement dangerous. What it cannot fully understand is <see cref="StatementClass.Unknown"/>.
/// </summary>
public static class SqlClassifier
{
    /// <param name="bothReadings">
    /// Also read the text with standard_conforming_strings the other way, and call it unknown where
    /// the readings differ: needed when the session could change the setting while a message is in
    /// flight (the judge knows when it cannot).
    /// </param>
    public static SqlAnalysis Analyze(string text, bool standardConformingStrings = true, bool bothReadings = true)
    {
        List<SqlToken> tokens;
        try
        {
            tokens = SqlLexer.Tokenize(text, standardConformingStrings);
        }
        catch (SqlLexError e)
        {
            return Whole(text, $"the text cannot be read as SQL: {e.Message} at position {e.Position}");
        }
        var spans = SqlSplitter.Split(text, tokens);
        var statements = new List<SqlStatement>(spans.Count);
        foreach (var span in spans)
            statements.Add(new StatementReader(text, tokens, span.From, span.To, span.Start, span.End).Classify());

        // A backslash in a plain string reads differently with standard_conforming_strings on and off. The
        // gateway tracks the setting, but a SET in flight can change it between the gateway's reading and
        // the server's: so read the text the other way too, and take the riskier reading.
        if (bothReadings && text.Contains('\\'))
        {
            List<SqlToken> other;
            try
            {
                other = SqlLexer.Tokenize(text, !standardConformingStrings);
            }
            catch (SqlLexError)
            {
                return Whole(text, "the text reads differently with standard_conforming_strings on and off");
            }
            var otherSpans = SqlSplitter.Split(text, other);
            if (otherSpans.Count != spans.Count || otherSpans.Where((s, i) => s.Start != spans[i].Start || s.End != spans[i].End).Any())
                return Whole(text, "the statements of the text depend on standard_conforming_strings, which this session can change");
            for (var i = 0; i < otherSpans.Count; i++)
            {
                var alternative = new StatementReader(text, other, otherSpans[i].From, otherSpans[i].To, otherSpans[i].Start, otherSpans[i].End).Classify();
                if (alternative.Class > statements[i].Class || (alternative.Flags & ~statements[i].Flags) != 0)
                    statements[i] = Merge(statements[i], alternative);
            }
        }
        return new SqlAnalysis(statements);
    }

    private static SqlStatement Merge(SqlStatement a, SqlStatement b) => a with
    {
        Class = a.Class > b.Class ? a.Class : b.Class,
        Flags = a.Flags | b.Flags,
        TablesRead = a.TablesRead.Union(b.TablesRead).ToArray(),
        TablesWritten = a.TablesWritten.Union(b.TablesWritten).ToArray(),
        Functions = a.Functions.Union(b.Functions).ToArray(),
        Fields = (a.Fields ?? []).Union(b.Fields ?? []).ToArray(),
        Reason = a.Reason ?? b.Reason ?? "the text reads differently with standard_conforming_strings on and off",
    };

    private static SqlAnalysis Whole(string text, string problem) =>
        new([new SqlStatement("UNKNOWN", StatementClass.Unknown, StatementFlags.None, [], [], [], 0, text.Length, Reason: problem)], problem);
}

/// <summary>Classifies the tokens of one statement.</summary>
internal sealed class StatementReader
{
    private readonly string _text;
    private readonly List<SqlToken> _t;
    private readonly int _from, _to, _start, _end;
    private readonly int[] _match; // index of the matching parenthesis, or -1

    private StatementClass _class = StatementClass.Read;
    private StatementFlags _flags;
    private readonly List<string> _read = [], _written = [], _functions = [], _fields = [];
    // Made when first needed: most statements have no CTEs and no syntax that looks like a call.
    private HashSet<string>? _cteNames;
    private HashSet<int>? _notFunctions;

    private void NotAFunction(int i) => (_notFunctions ??= []).Add(i);
    private string? _reason;
    private string _command = "UNKNOWN";
    private string? _preparedName, _executeName;

    public StatementReader(string text, List<SqlToken> tokens, int from, int to, int start, int end)
    {
        (_text, _t, _from, _to, _start, _end) = (text, tokens, from, to, start, end);
        _match = new int[to - from];
        Array.Fill(_match, -1);
        var stack = new Stack<int>();
        for (var i = from; i < to; i++)
        {
            if (P(i, '('))
                stack.Push(i);
            else if (P(i, ')') && stack.Count > 0)
            {
                var open = stack.Pop();
                _match[open - from] = i;
                _match[i - from] = open;
            }
        }
    }

    /// <summary>Set when the command's classification came from a nested reader (EXPLAIN, PREPARE, DECLARE, COPY (query)), which scanned those tokens.</summary>
    private bool _delegated;

    public SqlStatement Classify()
    {
        // The command first: it names CTEs and alias lists the scan must not take for calls.
        ClassifyCommand(_from);
        if (!_delegated)
            ScanWholeStatement(_from, _to);
        return Build();
    }

    /// <summary>A reader for the nested statement in tokens <c>[from, to)</c>.</summary>
    private StatementReader Inner(int from, int to)
    {
        _delegated = true;
        var start = from < to && In(from) ? _t[from].Start : _end;
        var end = to < _to ? _t[to].Start : _end;
        return new StatementReader(_text, _t, from, Math.Max(from, to), start, Math.Max(start, end));
    }

    private SqlStatement Build() => new(
        _command, _class, _flags,
        Distinct(_read, _cteNames),
        Distinct(_written, null),
        Distinct(_functions, null),
        _start + LeadingTrivia(), _end - _start - LeadingTrivia(),
        _preparedName, _executeName, _reason, _fields.Count == 0 ? null : _fields.Distinct().ToArray());

    private static IReadOnlyList<string> Distinct(List<string> names, HashSet<string>? except) =>
        names.Count == 0 ? [] : names.Count == 1 && except?.Contains(names[0]) != true ? [names[0]] : names.Distinct().Where(n => except?.Contains(n) != true).ToArray();

    private int LeadingTrivia() => _from < _to ? _t[_from].Start - _start : 0;

    // ---- token helpers -------------------------------------------------------------------------

    private bool In(int i) => i >= _from && i < _to;
    private bool W(int i, string keyword) => In(i) && SqlTokens.Is(_text, _t[i], keyword);
    private bool P(int i, char c) => In(i) && SqlTokens.IsPunctuation(_text, _t[i], c);
    private bool IsName(int i) => In(i) && _t[i].Kind is SqlTokenKind.Word or SqlTokenKind.QuotedIdentifier;
    private bool IsWord(int i) => In(i) && _t[i].Kind == SqlTokenKind.Word;

    /// <summary>An identifier's name; <c>U&amp;"…" UESCAPE '!'</c> decoded with its escape.</summary>
    private string? Name(int i)
    {
        if (!In(i))
            return null;
        var escape = '\\';
        if (_t[i].Kind == SqlTokenKind.QuotedIdentifier && W(i + 1, "uescape") && In(i + 2) && SqlTokens.StringValue(_text, _t[i + 2]) is { Length: 1 } e)
            escape = e[0];
        return SqlTokens.Name(_text, _t[i], escape);
    }

    /// <summary>The token after the identifier at <paramref name="i"/> (past a <c>UESCAPE '…'</c> clause).</summary>
    private int AfterName(int i) => In(i) && _t[i].Kind == SqlTokenKind.QuotedIdentifier && W(i + 1, "uescape") ? i + 3 : i + 1;

    private string Lower(int i) => In(i) && _t[i].Kind == SqlTokenKind.Word ? _text.Substring(_t[i].Start, _t[i].Length).ToLowerInvariant() : "";

    private int Close(int open) => _match[open - _from] is var m and >= 0 ? m : _to;

    /// <summary>A possibly qualified name starting at <paramref name="i"/>: <c>a.b.c</c>; returns the index after it.</summary>
    private int QualifiedName(int i, out string? name)
    {
        name = null;
        if (!IsName(i))
            return i;
        var parts = new List<string> { Name(i) ?? "" };
        var j = i + 1;
        if (_t[i].Kind == SqlTokenKind.QuotedIdentifier && W(j, "uescape"))
            j += 2;
        while (P(j, '.') && IsName(j + 1))
        {
            parts.Add(Name(j + 1) ?? "");
            j += 2;
            if (_t[j - 1].Kind == SqlTokenKind.QuotedIdentifier && W(j, "uescape"))
                j += 2;
        }
        name = string.Join('.', parts);
        return j;
    }

    private void Raise(StatementClass c, StatementFlags flags = StatementFlags.None, string? reason = null)
    {
        if (c > _class)
        {
            _class = c;
            if (reason is not null)
                _reason = reason;
        }
        _flags |= flags;
    }

    // ---- the whole token stream ----------------------------------------------------------------

    private enum Context { Statement, FunctionArguments, Other }

    /// <summary>
    /// Everything that matters wherever it appears: function calls, tables after FROM and JOIN, row
    /// locks, data-modifying statements in parentheses (CTE bodies), password literals.
    /// </summary>
    private void ScanWholeStatement(int from, int to)
    {
        var contexts = new Stack<(Context Kind, bool SawSelect)>();
        contexts.Push((Context.Statement, true));
        for (var i = from; i < to; i++)
        {
            var t = _t[i];
            if (t.Kind == SqlTokenKind.Punctuation)
            {
                if (P(i, '('))
                {
                    var isCall = i > from && (IsFunctionName(i - 1) || (i - 3 >= from && W(i - 2, "uescape") && IsFunctionName(i - 3)));
                    contexts.Push((isCall ? Context.FunctionArguments : Context.Other, false));
                    // A data-modifying statement in parentheses (a CTE body), also behind a nested WITH.
                    var inner = W(i + 1, "with") ? MainOfWith(i + 1) : i + 1;
                    if (W(inner, "insert") || W(inner, "update") || W(inner, "delete") || W(inner, "merge"))
                    {
                        Raise(StatementClass.Write, StatementFlags.DataModifyingCte);
                        Dml(inner, Close(i));
                    }
                }
                else if (P(i, ')') && contexts.Count > 1)
                {
                    contexts.Pop();
                }
                continue;
            }
            if (t.Kind == SqlTokenKind.String && i > from && W(i - 1, "password"))
                _flags |= StatementFlags.PasswordLiteral;
            if (t.Kind == SqlTokenKind.String && SqlTokens.StringValue(_text, t) is { } s && s.Contains("password", StringComparison.OrdinalIgnoreCase))
                _flags |= StatementFlags.PasswordLiteral;
            if (!IsName(i))
                continue;
            if (P(AfterName(i), '(') && IsFunctionName(i))
            {
                CallFunction(i);
                continue;
            }
            FieldOrAttributeCall(i);
            if (t.Kind != SqlTokenKind.Word)
                continue;
            var top = contexts.Peek();
            if (W(i, "select"))
            {
                contexts.Pop();
                contexts.Push((top.Kind, true));
            }
            else if ((W(i, "from") && !W(i - 1, "distinct") && !W(i - 1, "delete") && (top.Kind != Context.FunctionArguments || top.SawSelect))
                || W(i, "join"))
            {
                FromList(i + 1, single: W(i, "join"));
            }
            else if (W(i, "for") && (W(i + 1, "update") || W(i + 1, "share") || (W(i + 1, "no") && W(i + 2, "key")) || (W(i + 1, "key") && W(i + 2, "share"))))
            {
                Raise(StatementClass.Write, StatementFlags.RowLock, "SELECT … FOR UPDATE/SHARE locks rows");
            }
        }
    }

    /// <summary>
    /// Words that cannot be an unqualified function's name, so a parenthesis after them is syntax: the
    /// server's reserved keywords and its column-name keywords (those have special forms: <c>EXISTS</c>,
    /// <c>VALUES</c>, <c>XMLTABLE</c> …), and <c>OPERATOR(…)</c>. Any other word before '(' is a call —
    /// unreserved keywords such as <c>execute</c> or <c>set</c> can name user functions.
    /// </summary>
    private static readonly HashSet<string> NotFunctions = new(StringComparer.Ordinal)
    {
        // reserved
        "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric", "both", "case", "cast", "check", "collate", "column",
        "constraint", "create", "current_catalog", "current_date", "current_role", "current_time", "current_timestamp", "current_user",
        "default", "deferrable", "desc", "distinct", "do", "else", "end", "except", "false", "fetch", "for", "foreign", "from", "grant",
        "group", "having", "in", "initially", "intersect", "into", "lateral", "leading", "limit", "localtime", "localtimestamp", "not", "null",
        "offset", "on", "only", "or", "order", "placing", "primary", "references", "returning", "select", "session_user", "some", "symmetric",
        "system_user", "table", "then", "to", "trailing", "true", "union", "unique", "user", "using", "variadic", "when", "where", "window", "with",
        // column-name keywords (special forms)
        "between", "bigint", "bit", "boolean", "char", "character", "coalesce", "dec", "decimal", "exists", "extract", "float", "greatest",
        "grouping", "inout", "int", "integer", "interval", "json", "json_array", "json_arrayagg", "json_exists", "json_object", "json_objectagg",
        "json_query", "json_scalar", "json_serialize", "json_table", "json_value", "least", "merge_action", "national", "nchar", "none",
        "normalize", "nullif", "numeric", "out", "overlay", "position", "precision", "real", "row", "setof", "smallint", "substring", "time",
        "timestamp", "treat", "trim", "values", "varchar", "xmlattributes", "xmlconcat", "xmlelement", "xmlexists", "xmlforest",
        "xmlnamespaces", "xmlparse", "xmlpi", "xmlroot", "xmlserialize", "xmltable",
        // syntax
        "operator",
    };

    /// <summary>Word pairs where the second word before '(' is syntax, not a call: <c>TABLESAMPLE system (10)</c>, <c>character varying (10)</c> …</summary>
    private bool IsSyntaxAfter(int i) =>
        W(i - 1, "tablesample") || (W(i, "varying") && (W(i - 1, "character") || W(i - 1, "char") || W(i - 1, "bit") || W(i - 1, "national")))
        || (W(i, "sets") && W(i - 1, "grouping")) || (W(i, "materialized") && (W(i - 1, "as") || W(i - 1, "not")))
        || (W(i, "conflict") && W(i - 1, "on")) || (W(i, "key") && (W(i - 1, "primary") || W(i - 1, "foreign")));

    /// <summary>A name directly before '(' that is a call: not a keyword construct, a table or an alias column list.</summary>
    private bool IsFunctionName(int i)
    {
        if (!IsName(i) || _notFunctions?.Contains(i) == true)
            return false;
        var qualified = P(i - 1, '.');
        if (!qualified && _t[i].Kind == SqlTokenKind.Word && (NotFunctions.Contains(Lower(i)) || IsSyntaxAfter(i)))
            return false;
        // After ')' a name is never a call: OVER (…), FILTER (…), WITHIN GROUP (…), REPEATABLE (…).
        if (!qualified && P(i - 1, ')'))
            return false;
        // The start of a qualified name chain decides what comes before it.
        var first = ChainStart(i);
        return !(W(first - 1, "into") || W(first - 1, "table") || W(first - 1, "copy") || W(first - 1, "references") || W(first - 1, "as")
            || W(first - 1, "update") || W(first - 1, "index") || W(first - 1, "view") || W(first - 1, "type") || W(first - 1, "exists"));
    }

    /// <summary>The first name of the qualified chain ending at <paramref name="i"/> (<c>a.b.c</c>, also past <c>U&amp;"…" UESCAPE '…'</c> parts).</summary>
    private int ChainStart(int i)
    {
        var first = i;
        while (P(first - 1, '.'))
        {
            if (IsName(first - 2))
                first -= 2;
            else if (W(first - 3, "uescape") && In(first - 4) && _t[first - 4].Kind == SqlTokenKind.QuotedIdentifier)
                first -= 4;
            else
                break;
        }
        return first;
    }

    private void CallFunction(int i)
    {
        QualifiedName(ChainStart(i), out var name);
        if (name is null)
            return;
        var folded = SqlFunctions.Fold(name);
        var risk = SqlFunctions.Known(folded);
        if (risk is { Class: > StatementClass.Read } dangerous)
        {
            _functions.Add(folded); // a dangerous name is judged as the real one whatever its case
            Raise(dangerous.Class, dangerous.Flags, $"calls {folded}()");
        }
        else if (risk is not null && name.Any(char.IsUpper))
        {
            // "LOWER"(x) is not lower(x): a quoted name with capitals names another function, which only
            // the target's catalog can judge (it is looked up under that exact name).
            var exact = name.StartsWith("pg_catalog.", StringComparison.OrdinalIgnoreCase) ? name["pg_catalog.".Length..] : name;
            _functions.Add(exact);
            _flags |= StatementFlags.UnknownFunction;
        }
        else
        {
            _functions.Add(folded);
            if (risk is null)
                _flags |= StatementFlags.UnknownFunction;
        }
    }

    /// <summary>
    /// <c>x.name</c> after a name, ')' or ']', not followed by '(' or '.': a column — or a call in
    /// attribute notation (<c>('/etc/passwd'::text).pg_read_file</c> is <c>pg_read_file('/etc/passwd')</c>).
    /// A dangerous function's name is judged as the call; any other is a field the catalog may know as
    /// a function.
    /// </summary>
    private void FieldOrAttributeCall(int i)
    {
        if (!P(i - 1, '.') || !(P(i - 2, ')') || P(i - 2, ']') || IsName(i - 2)) || P(AfterName(i), '(') || P(AfterName(i), '.'))
            return;
        var name = Name(i);
        if (name is null)
            return;
        var folded = name.ToLowerInvariant();
        if (SqlFunctions.Dangerous.TryGetValue(folded, out var risk))
        {
            _functions.Add(folded);
            Raise(risk.Class, risk.Flags, $"calls {folded}() in attribute notation");
        }
        else if (!SqlFunctions.Safe.Contains(folded))
        {
            _fields.Add(folded);
        }
    }

    /// <summary>FROM a [alias], b, (subquery) s, f(x) … : the tables (CTE names left out at the end).</summary>
    private void FromList(int i, bool single)
    {
        while (In(i))
        {
            while (W(i, "only") || W(i, "lateral"))
                i++;
            if (W(i, "rows") && W(i + 1, "from"))
                return; // ROWS FROM (f(), g()): functions, found by the scan
            if (IsName(i))
            {
                var after = QualifiedName(i, out var name);
                if (!P(after, '(') && name is not null && !NotFunctions.Contains(name))
                    _read.Add(name);
                i = P(after, '(') ? Close(after) + 1 : after; // a function in FROM: its arguments
            }
            else if (P(i, '('))
            {
                i = Close(i) + 1; // a subquery or a parenthesized join
            }
            // An alias with a column list, AS or not: g(d) in "generate_series(1, 3) g(d)" is not a call.
            var alias = W(i, "as") ? i + 1 : i;
            if (IsName(alias) && P(alias + 1, '(') && !(IsWord(alias) && (NotFunctions.Contains(Lower(alias)) || IsClauseWord(alias))))
                NotAFunction(alias);
            if (single)
                return;
            // Skip the alias and anything else up to the next item or clause.
            while (In(i) && !P(i, ',') && !P(i, ')') && !P(i, ';') && !IsClauseWord(i))
                i = P(i, '(') ? Close(i) + 1 : i + 1;
            if (!P(i, ','))
                return;
            i++;
        }
    }

    private bool IsClauseWord(int i) => IsWord(i) && Lower(i) is "where" or "join" or "on" or "group" or "order" or "limit" or "having" or "window"
        or "union" or "except" or "intersect" or "for" or "returning" or "fetch" or "offset" or "using" or "set" or "natural" or "left"
        or "right" or "full" or "inner" or "cross" or "into" or "when" or "to" or "with" or "select" or "values" or "do";

    // ---- commands -----------------------------------------------------------------------------

    private void ClassifyCommand(int i)
    {
        while (P(i, '('))
            i++;
        var word = Lower(i);
        switch (word)
        {
            case "select" or "values" or "table":
                Select(i);
                return;
            case "with":
                With(i);
                return;
            case "insert" or "update" or "delete" or "merge":
                _command = word.ToUpperInvariant();
                Raise(StatementClass.Write, word == "merge" ? StatementFlags.Merge : StatementFlags.None);
                Dml(i, _to);
                return;
            case "truncate":
                _command = "TRUNCATE TABLE";
                Raise(StatementClass.Write, StatementFlags.Truncate);
                NameList(W(i + 1, "table") ? i + 2 : i + 1, _written);
                return;
            case "copy":
                Copy(i);
                return;
            case "explain":
                Explain(i);
                return;
            case "create" or "alter" or "drop" or "comment" or "security" or "import" or "refresh" or "reindex" or "cluster" or "vacuum"
                or "analyze" or "analyse" or "checkpoint" or "load" or "grant" or "revoke" or "reassign":
                Ddl(i, word);
                return;
            case "set":
                Set(i + 1);
                return;
            case "reset":
                _command = "RESET";
                var reset = IsName(i + 1) ? Name(i + 1)?.ToLowerInvariant() : null;
                if (reset is "transaction_read_only" or "default_transaction_read_only")
                    Raise(StatementClass.Read, StatementFlags.ReadWriteTransaction | StatementFlags.Reset); // back to the server's value: perhaps writable
                else if (reset is "standard_conforming_strings" or "client_encoding" or "backslash_quote" or "escape_string_warning")
                    Raise(StatementClass.Admin, StatementFlags.LexerSetting, $"RESET {reset} changes how SQL text is read");
                else if (W(i + 1, "role"))
                    Raise(StatementClass.Admin, StatementFlags.RoleChange, "RESET ROLE changes the role");
                else if (W(i + 1, "session") && W(i + 2, "authorization"))
                    Raise(StatementClass.Admin, StatementFlags.SessionAuthorization, "RESET SESSION AUTHORIZATION changes the user");
                else
                    _flags |= StatementFlags.Reset; // back to the session's startup values (the read-only defence is one)
                return;
            case "show":
                _command = "SHOW";
                return;
            case "discard":
                _command = "DISCARD " + (IsWord(i + 1) ? Lower(i + 1).ToUpperInvariant() : "");
                _flags |= StatementFlags.Reset;
                return;
            case "begin" or "start":
                _command = word == "begin" ? "BEGIN" : "START TRANSACTION";
                TransactionModes(word == "begin" ? i + 1 : i + 2);
                return;
            case "commit" or "end" or "rollback" or "abort":
                _command = word == "end" ? "COMMIT" : word == "abort" ? "ROLLBACK" : word.ToUpperInvariant();
                if (W(i + 1, "prepared"))
                {
                    _command += " PREPARED";
                    Raise(StatementClass.Admin, StatementFlags.None, "two-phase commit is administration");
                }
                return;
            case "savepoint" or "release":
                _command = word.ToUpperInvariant();
                return;
            case "prepare":
                Prepare(i);
                return;
            case "execute":
                // Unknown on its own: the session resolves it to what was prepared under the name (and its arguments).
                _command = "EXECUTE";
                _executeName = Name(i + 1);
                NotAFunction(i + 1); // EXECUTE q(1): q is the statement, (1) its arguments
                Raise(StatementClass.Unknown, StatementFlags.Execute, _executeName is null
                    ? "EXECUTE without a name"
                    : $"EXECUTE runs the statement prepared as \"{_executeName}\", which this session has not prepared");
                return;
            case "deallocate":
                _command = "DEALLOCATE";
                var target = W(i + 1, "prepare") ? i + 2 : i + 1;
                _preparedName = W(target, "all") ? "*" : Name(target);
                return;
            case "declare":
                Declare(i);
                return;
            case "fetch" or "move" or "close":
                _command = word.ToUpperInvariant();
                _flags |= StatementFlags.Cursor;
                return;
            case "listen" or "unlisten":
                _command = word.ToUpperInvariant();
                _flags |= StatementFlags.Listen;
                return;
            case "notify":
                _command = "NOTIFY";
                Raise(StatementClass.Write, StatementFlags.Notify, "NOTIFY sends a notification to other sessions");
                return;
            case "lock":
                _command = "LOCK TABLE";
                Raise(StatementClass.Write, StatementFlags.Lock, "LOCK takes table locks");
                NameList(W(i + 1, "table") ? i + 2 : i + 1, _written);
                return;
            case "do":
                _command = "DO";
                Raise(StatementClass.Unknown, StatementFlags.DynamicSql, "DO runs procedural code the classifier cannot judge");
                return;
            case "call":
                _command = "CALL";
                Raise(StatementClass.Unknown, StatementFlags.DynamicSql, "CALL runs a procedure the classifier cannot judge");
                return;
            default:
                _command = "UNKNOWN";
                Raise(StatementClass.Unknown, StatementFlags.None, word.Length > 0 ? $"the command '{word.ToUpperInvariant()}' is not one the classifier knows" : "the statement does not start with a command");
                return;
        }
    }

    /// <summary>SELECT / VALUES / TABLE t at <paramref name="i"/> as the main statement: INTO makes a table.</summary>
    private void Select(int i)
    {
        _command = "SELECT";
        if (W(i, "table"))
        {
            QualifiedName(i + 1, out var name);
            if (name is not null)
                _read.Add(name);
            return;
        }
        // SELECT … INTO [TEMP|UNLOGGED] [TABLE] name at the top level creates a table.
        for (var j = i; j < _to; j++)
        {
            if (P(j, '('))
            {
                j = Close(j);
                continue;
            }
            if (!W(j, "into"))
                continue;
            var k = j + 1;
            while (W(k, "temp") || W(k, "temporary") || W(k, "unlogged") || W(k, "table") || W(k, "local") || W(k, "global"))
                k++;
            QualifiedName(k, out var name);
            if (name is not null)
                _written.Add(name);
            Raise(StatementClass.Ddl, StatementFlags.SelectInto, "SELECT … INTO creates a table");
            return;
        }
    }

    /// <summary>WITH [RECURSIVE] name [(cols)] AS [NOT] [MATERIALIZED] ( … ) [, …] main statement.</summary>
    private void With(int i)
    {
        var main = MainOfWith(i);
        if (main < 0)
        {
            _command = "UNKNOWN";
            Raise(StatementClass.Unknown, StatementFlags.None, "a WITH clause the classifier cannot follow");
            return;
        }
        ClassifyCommand(main);
    }

    /// <summary>
    /// Walks the CTE list of the WITH at <paramref name="i"/> (naming its CTEs, which are not calls and
    /// not tables) to the main statement's first word; -1 when the list cannot be followed.
    /// </summary>
    private int MainOfWith(int i)
    {
        var j = i + 1;
        if (W(j, "recursive"))
            j++;
        while (IsName(j))
        {
            NotAFunction(j);
            if (Name(j) is { } cte)
                (_cteNames ??= new HashSet<string>(StringComparer.Ordinal)).Add(cte);
            j++;
            if (P(j, '('))
                j = Close(j) + 1;
            if (!W(j, "as"))
                return -1;
            j++;
            if (W(j, "not"))
                j++;
            if (W(j, "materialized"))
                j++;
            if (!P(j, '('))
                return -1;
            j = Close(j) + 1;
            // SEARCH {DEPTH|BREADTH} FIRST BY a, b SET col; CYCLE a, b SET col [TO v DEFAULT d] USING path.
            if (W(j, "search") || W(j, "cycle"))
            {
                var cycle = W(j, "cycle");
                while (In(j) && !W(j, "set"))
                    j++;
                j += 2;
                if (cycle && W(j, "to"))
                    j += 4;
                if (cycle && W(j, "using"))
                    j += 2;
            }
            if (!P(j, ','))
                break;
            j++;
        }
        var main = j;
        while (P(main, '('))
            main++;
        return IsMainStatementStart(main) ? main : -1;
    }

    private bool IsMainStatementStart(int i) => W(i, "select") || W(i, "insert") || W(i, "update") || W(i, "delete") || W(i, "merge") || W(i, "values") || W(i, "table");

    /// <summary>INSERT / UPDATE / DELETE / MERGE starting at <paramref name="i"/>, ending before <paramref name="end"/>.</summary>
    private void Dml(int i, int end)
    {
        if (W(i, "insert"))
        {
            QualifiedName(W(i + 1, "into") ? i + 2 : i + 1, out var name);
            if (name is not null)
                _written.Add(name);
            return;
        }
        if (W(i, "merge"))
        {
            Raise(StatementClass.Write, StatementFlags.Merge);
            var j = W(i + 1, "into") ? i + 2 : i + 1;
            if (W(j, "only"))
                j++;
            j = QualifiedName(j, out var name);
            if (name is not null)
                _written.Add(name);
            for (; j < end; j++)
                if (W(j, "using"))
                {
                    FromList(j + 1, single: true);
                    break;
                }
            return;
        }
        var k = i + 1;
        if (W(i, "delete") && W(k, "from"))
            k++;
        if (W(k, "only"))
            k++;
        k = QualifiedName(k, out var target);
        if (target is not null)
            _written.Add(target);
        // The filter: WHERE at this statement's level, up to RETURNING.
        int where = -1, stop = end;
        for (var j = k; j < end; j++)
        {
            if (P(j, '('))
            {
                j = Close(j);
                continue;
            }
            if (P(j, ')'))
            {
                stop = j;
                break;
            }
            if (W(i, "delete") && W(j, "using") && where < 0)
                FromList(j + 1, single: false);
            if (W(j, "where") && where < 0)
                where = j;
            if (W(j, "returning"))
            {
                stop = j;
                break;
            }
        }
        var verb = W(i, "update") ? "UPDATE" : "DELETE";
        if (where < 0)
            Raise(StatementClass.Write, StatementFlags.UnfilteredWrite, $"{verb} without WHERE changes every row");
        else if (W(where + 1, "current") && W(where + 2, "of"))
            return; // WHERE CURRENT OF cursor: one row
        else if (TriviallyTrue(where + 1, stop))
            Raise(StatementClass.Write, StatementFlags.UnfilteredWrite, $"{verb} with a condition that is always true changes every row");
    }

    private static readonly HashSet<string> ConditionKeywords = new(StringComparer.Ordinal)
    {
        "true", "false", "null", "not", "and", "is", "in", "between", "symmetric", "like", "ilike", "similar", "to", "escape", "any",
        "some", "all", "distinct", "from", "unknown", "isnull", "notnull", "cast", "as", "exists", "select", "case", "when", "then",
        "else", "end", "array", "row", "interval", "date", "time", "timestamp", "current_date", "current_timestamp", "current_time",
        "localtime", "localtimestamp", "current_user", "session_user", "user", "current_role", "values", "with", "zone", "at",
    };

    /// <summary>
    /// A condition that holds for every row, by syntax: one of its OR branches refers to no column
    /// (<c>true</c>, <c>1=1</c>, <c>'a'='a'</c>, <c>$1 = $1</c>, <c>EXISTS (SELECT 1)</c>), or compares
    /// an expression with itself (<c>id = id</c>). A heuristic: it cannot see that <c>id &gt; 0</c> holds for all rows.
    /// </summary>
    private bool TriviallyTrue(int from, int to)
    {
        var branch = from;
        for (var j = from; j <= to; j++)
        {
            if (j < to && P(j, '('))
            {
                j = Math.Min(Close(j), to - 1);
                continue;
            }
            if (j == to || W(j, "or"))
            {
                if (BranchIsTrivial(branch, j))
                    return true;
                branch = j + 1;
            }
        }
        return false;
    }

    private bool BranchIsTrivial(int from, int to)
    {
        // Unwrap one level of parentheses around the whole branch: (a OR true).
        if (P(from, '(') && Close(from) == to - 1)
            return TriviallyTrue(from + 1, to - 1);
        var column = false;
        for (var j = from; j < to; j++)
        {
            if (!IsName(j) || P(j + 1, '(') || (P(j - 1, ':') || (In(j - 1) && _text.AsSpan(_t[j - 1].Start, _t[j - 1].Length).SequenceEqual("::"))))
                continue;
            if (_t[j].Kind == SqlTokenKind.Word && ConditionKeywords.Contains(Lower(j)))
                continue;
            column = true;
            break;
        }
        if (!column)
            return true;
        // a = a (the same tokens on both sides of one comparison)
        for (var j = from; j < to; j++)
        {
            if (_t[j].Kind != SqlTokenKind.Operator || _t[j].Length > 2)
                continue;
            var op = _text.AsSpan(_t[j].Start, _t[j].Length);
            if (!(op.SequenceEqual("=") || op.SequenceEqual(">=") || op.SequenceEqual("<=")))
                continue;
            if (j - from == to - j - 1 && SameTokens(from, j + 1, j - from))
                return true;
        }
        return false;
    }

    private bool SameTokens(int a, int b, int count)
    {
        for (var k = 0; k < count; k++)
        {
            var x = _t[a + k];
            var y = _t[b + k];
            if (x.Kind != y.Kind || !_text.AsSpan(x.Start, x.Length).Equals(_text.AsSpan(y.Start, y.Length), x.Kind == SqlTokenKind.Word ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal))
                return false;
        }
        return count > 0;
    }

    private void NameList(int i, List<string> into)
    {
        while (In(i))
        {
            if (W(i, "only"))
                i++;
            i = QualifiedName(i, out var name);
            if (name is null)
                return;
            into.Add(name);
            if (P(i, '*'))
                i++;
            if (!P(i, ','))
                return;
            i++;
        }
    }

    private void Copy(int i)
    {
        _command = "COPY";
        var j = i + 1;
        if (W(j, "binary") && IsName(j + 1))
            j++; // COPY BINARY t … (the old syntax)
        string? table = null;
        if (P(j, '('))
        {
            Absorb(Inner(j + 1, Close(j)).ClassifyInner());
            j = Close(j) + 1;
        }
        else
        {
            j = QualifiedName(j, out table);
            if (P(j, '('))
                j = Close(j) + 1; // column list
        }
        var direction = Lower(j);
        var source = j + 1;
        if (direction == "from")
        {
            Raise(StatementClass.Write, StatementFlags.CopyFrom, "COPY FROM writes rows");
            if (table is not null)
                _written.Add(table);
        }
        else if (direction == "to")
        {
            _flags |= StatementFlags.CopyTo;
            if (table is not null)
                _read.Add(table);
        }
        else
        {
            Raise(StatementClass.Unknown, StatementFlags.None, "a COPY the classifier cannot follow");
            return;
        }
        if (W(source, "program"))
            Raise(StatementClass.Admin, StatementFlags.CopyProgram, "COPY … PROGRAM runs a shell command on the database server");
        else if (W(source, "stdin") || W(source, "stdout"))
            return;
        else
            Raise(StatementClass.Admin, StatementFlags.CopyServerFile, "COPY with a file reads or writes the database server's files");
    }

    private void Explain(int i)
    {
        _command = "EXPLAIN";
        var j = i + 1;
        var analyze = false;
        if (P(j, '(') && !(W(j + 1, "select") || W(j + 1, "with") || W(j + 1, "values") || W(j + 1, "table")))
        {
            // (option [value], …): option names may be quoted ("analyze"); an option the classifier does
            // not know counts as ANALYZE (fail closed: the statement may run).
            var close = Close(j);
            var k = j + 1;
            while (k < close)
            {
                var option = IsName(k) ? Name(k)?.ToLowerInvariant() : null;
                var next = k + 1;
                while (next < close && !P(next, ','))
                    next = P(next, '(') ? Close(next) + 1 : next + 1;
                var value = next > k + 1 ? (IsName(k + 1) ? Name(k + 1)?.ToLowerInvariant() : _t[k + 1].Kind == SqlTokenKind.String ? SqlTokens.StringValue(_text, _t[k + 1])?.ToLowerInvariant() : _text.Substring(_t[k + 1].Start, _t[k + 1].Length)) : null;
                var off = value is "false" or "off" or "0" or "no";
                if (option is "analyze" or "analyse")
                    analyze |= !off;
                else if (option is not ("verbose" or "costs" or "settings" or "buffers" or "wal" or "timing" or "summary" or "format" or "generic_plan" or "memory" or "serialize"))
                    analyze = true;
                k = next + 1;
            }
            j = close + 1;
        }
        else
        {
            while (W(j, "analyze") || W(j, "analyse") || W(j, "verbose"))
            {
                analyze |= !W(j, "verbose");
                j++;
            }
        }
        var inner = Inner(j, _to).ClassifyInner();
        if (analyze)
        {
            Absorb(inner);
            _flags |= StatementFlags.ExplainAnalyze;
            if (inner.Class > StatementClass.Read)
                _reason = $"EXPLAIN ANALYZE runs the {inner.Command}";
        }
        else
        {
            // Without ANALYZE nothing runs: the plan only names what would be read and written.
            _read.AddRange(inner.TablesRead);
            _read.AddRange(inner.TablesWritten);
            _flags |= inner.Flags & StatementFlags.PasswordLiteral;
            if (inner.Class == StatementClass.Unknown && !inner.Has(StatementFlags.Execute))
                Raise(StatementClass.Unknown, StatementFlags.None, inner.Reason); // EXPLAIN EXECUTE p only plans p
        }
    }

    /// <summary>Classification of a nested statement (EXPLAIN, PREPARE, DECLARE, COPY query).</summary>
    internal SqlStatement ClassifyInner()
    {
        if (_from >= _to)
            return new SqlStatement("UNKNOWN", StatementClass.Unknown, StatementFlags.None, [], [], [], _start, 0, Reason: "a statement is missing");
        return Classify();
    }

    private void Absorb(SqlStatement inner)
    {
        Raise(inner.Class, inner.Flags, inner.Reason);
        _read.AddRange(inner.TablesRead);
        _written.AddRange(inner.TablesWritten);
        _functions.AddRange(inner.Functions);
        _fields.AddRange(inner.Fields ?? []);
        _executeName ??= inner.ExecuteName;
    }

    private void Prepare(int i)
    {
        if (W(i + 1, "transaction"))
        {
            _command = "PREPARE TRANSACTION";
            Raise(StatementClass.Admin, StatementFlags.None, "two-phase commit is administration");
            return;
        }
        _command = "PREPARE";
        _flags |= StatementFlags.Prepare;
        _preparedName = Name(i + 1);
        var j = i + 2;
        if (P(j, '('))
            j = Close(j) + 1;
        if (!W(j, "as") || _preparedName is null)
        {
            Raise(StatementClass.Unknown, StatementFlags.None, "a PREPARE the classifier cannot follow");
            return;
        }
        var inner = Inner(j + 1, _to).ClassifyInner();
        // Judged as what it prepares, now and when it is executed.
        _flags |= StatementFlags.Prepare;
        Absorb(inner);
        _reason = inner.Reason;
    }

    private void Declare(int i)
    {
        _command = "DECLARE CURSOR";
        _flags |= StatementFlags.Cursor;
        var j = i + 2;
        while (In(j) && !W(j, "for"))
            j++;
        if (!W(j, "for"))
        {
            Raise(StatementClass.Unknown, StatementFlags.None, "a DECLARE the classifier cannot follow");
            return;
        }
        Absorb(Inner(j + 1, _to).ClassifyInner());
    }

    private void TransactionModes(int j)
    {
        if (W(j, "work") || W(j, "transaction"))
            j++;
        if (!In(j))
            return;
        _flags |= StatementFlags.TransactionMode;
        for (var k = j; k < _to; k++)
            if (W(k, "read") && W(k + 1, "write"))
                Raise(StatementClass.Read, StatementFlags.ReadWriteTransaction);
    }

    /// <summary>Settings a session may change without consequence for what it can read or write.</summary>
    private static readonly HashSet<string> HarmlessSettings = new(StringComparer.Ordinal)
    {
        "application_name", "statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout", "idle_session_timeout",
        "transaction_timeout", "datestyle", "timezone", "intervalstyle", "extra_float_digits", "client_min_messages", "bytea_output",
        "work_mem", "maintenance_work_mem", "temp_buffers", "random_page_cost", "seq_page_cost", "cpu_tuple_cost", "cpu_index_tuple_cost",
        "cpu_operator_cost", "effective_cache_size", "effective_io_concurrency", "jit", "max_parallel_workers_per_gather", "geqo",
        "from_collapse_limit", "join_collapse_limit", "plan_cache_mode", "default_statistics_target", "lc_monetary", "lc_numeric",
        "lc_time", "xmlbinary", "xmloption", "default_transaction_isolation", "default_transaction_deferrable", "transaction_isolation",
        "transaction_deferrable", "synchronous_commit", "constraint_exclusion", "cursor_tuple_fraction", "gin_fuzzy_search_limit",
        "default_with_oids", "array_nulls", "quote_all_identifiers", "enable_partition_pruning", "row_security_active",
        "commit_delay", "vacuum_cost_delay", "timezone_abbreviations", "statement_timeout_ms", "default_text_search_config",
        "gin_pending_list_limit", "hash_mem_multiplier", "parallel_setup_cost", "parallel_tuple_cost", "min_parallel_table_scan_size",
        "min_parallel_index_scan_size", "recursive_worktable_factor", "log_statement_stats", "trace_sort",
    };

    private void Set(int j)
    {
        _command = "SET";
        if (W(j, "session") && W(j + 1, "characteristics"))
        {
            _command = "SET";
            TransactionModes(j + 4); // SESSION CHARACTERISTICS AS TRANSACTION …
            _flags |= StatementFlags.TransactionMode;
            return;
        }
        if (W(j, "session") && W(j + 1, "authorization"))
        {
            Raise(StatementClass.Admin, StatementFlags.SessionAuthorization, "SET SESSION AUTHORIZATION changes the user");
            return;
        }
        if (W(j, "session") || W(j, "local"))
            j++;
        if (W(j, "role"))
        {
            Raise(StatementClass.Admin, StatementFlags.RoleChange, "SET ROLE changes the role");
            return;
        }
        if (W(j, "session") && W(j + 1, "authorization"))
        {
            Raise(StatementClass.Admin, StatementFlags.SessionAuthorization, "SET SESSION AUTHORIZATION changes the user");
            return;
        }
        if (W(j, "transaction"))
        {
            TransactionModes(j + 1);
            _flags |= StatementFlags.TransactionMode;
            if (W(j + 1, "snapshot"))
                Raise(StatementClass.Admin, StatementFlags.ReplicationOrWal, "SET TRANSACTION SNAPSHOT imports another session's snapshot");
            return;
        }
        if (W(j, "time") && W(j + 1, "zone"))
            return;
        if (W(j, "constraints") || (W(j, "xml") && W(j + 1, "option")))
            return; // SET CONSTRAINTS … DEFERRED, SET XML OPTION …: this transaction's or session's own business
        if (W(j, "schema"))
        {
            Raise(StatementClass.Admin, StatementFlags.SearchPathChange, "SET SCHEMA changes search_path");
            return;
        }
        if (W(j, "names"))
        {
            SettingValue(j + 1, "client_encoding");
            return;
        }
        var after = QualifiedName(j, out var setting);
        setting = setting?.ToLowerInvariant(); // setting names are case-insensitive, quoted or not
        if (setting is null)
        {
            Raise(StatementClass.Unknown, StatementFlags.None, "a SET the classifier cannot follow");
            return;
        }
        if (W(after, "to") || (In(after) && _t[after].Kind == SqlTokenKind.Operator && _text[_t[after].Start] == '='))
            after++;
        SettingValue(after, setting);
    }

    private void SettingValue(int valueAt, string setting)
    {
        var value = In(valueAt) ? (_t[valueAt].Kind == SqlTokenKind.String ? SqlTokens.StringValue(_text, _t[valueAt]) : _t[valueAt].Kind is SqlTokenKind.Word or SqlTokenKind.Number ? _text.Substring(_t[valueAt].Start, _t[valueAt].Length) : null) : null;
        value = value?.Trim().ToLowerInvariant();
        var isDefault = value is "default" || W(valueAt, "default");
        switch (setting)
        {
            case "search_path":
                Raise(StatementClass.Admin, StatementFlags.SearchPathChange, "search_path decides which functions and tables names resolve to");
                return;
            case "role":
                Raise(StatementClass.Admin, StatementFlags.RoleChange, "SET ROLE changes the role");
                return;
            case "session_authorization":
                Raise(StatementClass.Admin, StatementFlags.SessionAuthorization, "session_authorization changes the user");
                return;
            case "default_transaction_read_only" or "transaction_read_only":
                _flags |= StatementFlags.TransactionMode;
                if (!(value is "on" or "true" or "1" or "yes" or "t" or "y") || isDefault)
                    Raise(StatementClass.Read, StatementFlags.ReadWriteTransaction);
                return;
            case "standard_conforming_strings":
                if (value is not ("on" or "true" or "1" or "yes"))
                    Raise(StatementClass.Admin, StatementFlags.LexerSetting, "standard_conforming_strings off changes how SQL text is read");
                return;
            case "client_encoding":
                if (value is not ("utf8" or "utf-8" or "unicode" or "sql_ascii"))
                    Raise(StatementClass.Admin, StatementFlags.LexerSetting, "only UTF8 and SQL_ASCII are read safely by the gateway");
                return;
            case "backslash_quote" or "escape_string_warning":
                Raise(StatementClass.Admin, StatementFlags.LexerSetting, $"{setting} changes how SQL text is read");
                return;
        }
        if (HarmlessSettings.Contains(setting) || setting.StartsWith("enable_", StringComparison.Ordinal) || setting.StartsWith("jit_", StringComparison.Ordinal)
            || setting.StartsWith("geqo_", StringComparison.Ordinal))
            return;
        Raise(StatementClass.Admin, StatementFlags.SettingChange, $"the setting {setting} is not on the harmless list");
    }

    private static readonly string[] TwoWordObjects = ["materialized", "event", "foreign", "text", "access", "default", "user", "operator"];

    private void Ddl(int i, string verb)
    {
        switch (verb)
        {
            case "grant" or "revoke":
                _command = verb.ToUpperInvariant();
                Raise(StatementClass.Dcl, StatementFlags.Grant, $"{_command} changes privileges");
                return;
            case "reassign":
                _command = "REASSIGN OWNED";
                Raise(StatementClass.Dcl, StatementFlags.Grant, "REASSIGN OWNED changes ownership");
                return;
            case "refresh":
                _command = "REFRESH MATERIALIZED VIEW";
                Raise(StatementClass.Write);
                NameList(W(i + 3, "concurrently") ? i + 4 : i + 3, _written);
                return;
            case "vacuum" or "analyze" or "analyse" or "cluster" or "reindex" or "checkpoint":
                _command = verb == "analyse" ? "ANALYZE" : verb.ToUpperInvariant();
                Raise(StatementClass.Admin, StatementFlags.Vacuum, $"{_command} is maintenance");
                return;
            case "load":
                _command = "LOAD";
                Raise(StatementClass.Admin, StatementFlags.Load, "LOAD loads a shared library into the server");
                return;
            case "comment":
                _command = "COMMENT";
                Raise(StatementClass.Ddl);
                return;
            case "security":
                _command = "SECURITY LABEL";
                Raise(StatementClass.Ddl);
                return;
            case "import":
                _command = "IMPORT FOREIGN SCHEMA";
                Raise(StatementClass.Ddl, StatementFlags.NetworkAccess, "IMPORT FOREIGN SCHEMA reads another server");
                return;
        }
        // CREATE / ALTER / DROP [OR REPLACE] [modifiers] object
        var j = i + 1;
        if (W(j, "or") && W(j + 1, "replace"))
            j += 2;
        while (W(j, "temp") || W(j, "temporary") || W(j, "unlogged") || W(j, "global") || W(j, "local") || W(j, "unique")
               || W(j, "trusted") || W(j, "procedural") || W(j, "constraint") || W(j, "recursive"))
            j++;
        var objectWord = Lower(j);
        var words = objectWord.ToUpperInvariant();
        if (TwoWordObjects.Contains(objectWord) && IsWord(j + 1) && !(objectWord == "user" && !W(j + 1, "mapping")) && !(objectWord == "default" && verb != "alter")
            && !(objectWord == "operator" && !(W(j + 1, "class") || W(j + 1, "family"))))
        {
            words += " " + Lower(j + 1).ToUpperInvariant();
            j++;
            if (words is "FOREIGN DATA" or "TEXT SEARCH")
            {
                words += " " + Lower(j + 1).ToUpperInvariant();
                j++;
            }
        }
        _command = $"{verb.ToUpperInvariant()} {words}".TrimEnd();
        var objectEnd = j + 1;
        switch (words)
        {
            case "ROLE" or "USER" or "GROUP":
                Raise(StatementClass.Dcl, StatementFlags.RoleStatement, $"{_command} changes roles");
                return;
            case "SYSTEM" when verb == "alter":
                Raise(StatementClass.Admin, StatementFlags.AlterSystem, "ALTER SYSTEM changes the server's configuration");
                return;
            case "DEFAULT PRIVILEGES":
                Raise(StatementClass.Dcl, StatementFlags.Grant, "ALTER DEFAULT PRIVILEGES changes privileges");
                return;
            case "OWNED" when verb == "drop":
                Raise(StatementClass.Dcl, StatementFlags.Grant, "DROP OWNED drops and revokes");
                return;
            case "EXTENSION":
                Raise(StatementClass.Ddl, verb == "drop" ? StatementFlags.None : StatementFlags.CreateExtension, verb == "drop" ? null : "extensions run code in the server");
                return;
            case "FUNCTION" or "PROCEDURE" or "LANGUAGE" or "ROUTINE" or "AGGREGATE":
                Raise(StatementClass.Ddl, verb == "drop" ? StatementFlags.None : StatementFlags.CreateRoutine);
                return;
            case "TRIGGER":
                Raise(StatementClass.Ddl, verb == "drop" ? StatementFlags.None : StatementFlags.CreateTrigger);
                return;
            case "EVENT TRIGGER":
                Raise(StatementClass.Ddl, verb == "drop" ? StatementFlags.None : StatementFlags.CreateEventTrigger);
                return;
            case "RULE":
                Raise(StatementClass.Ddl, verb == "drop" ? StatementFlags.None : StatementFlags.CreateRule);
                return;
            case "SERVER" or "USER MAPPING" or "FOREIGN DATA WRAPPER":
                Raise(StatementClass.Ddl, StatementFlags.NetworkAccess, $"{_command} configures connections to other servers");
                return;
            case "DATABASE" or "TABLESPACE":
                Raise(StatementClass.Admin, StatementFlags.None, $"{_command} is administration");
                return;
        }
        Raise(StatementClass.Ddl);
        if (words is "TABLE" or "VIEW" or "MATERIALIZED VIEW" or "FOREIGN TABLE" or "SEQUENCE" or "INDEX")
        {
            var k = objectEnd;
            if (W(k, "if") && W(k + 1, "not") && W(k + 2, "exists"))
                k += 3;
            else if (W(k, "if") && W(k + 1, "exists"))
                k += 2;
            if (W(k, "concurrently"))
                k++;
            if (words == "INDEX")
            {
                // CREATE INDEX [name] ON table: the table is the one changed.
                for (; k < _to && !W(k, "on"); k++) { }
                k++;
                if (W(k, "only"))
                    k++;
            }
            if (W(k, "only"))
                k++;
            if (verb == "drop")
                NameList(k, _written);
            else if (QualifiedName(k, out var name) is var _ && name is not null)
                _written.Add(name);
            if (verb == "create" && words is "TABLE" or "MATERIALIZED VIEW")
                for (var m = objectEnd; m < _to; m++)
                {
                    if (P(m, '('))
                    {
                        m = Close(m);
                        continue;
                    }
                    if (W(m, "as") || W(m, "execute"))
                    {
                        _command = words == "TABLE" ? "CREATE TABLE AS" : _command;
                        _flags |= StatementFlags.CreateTableAs;
                        break;
                    }
                }
        }
    }
}
