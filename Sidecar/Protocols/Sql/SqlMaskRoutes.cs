namespace Airlock.Sidecar.Protocols.Sql;

/// <summary>How far a masked column may be used, from the most permissive: the strictest rule on a name wins.</summary>
public enum MaskUse
{
    /// <summary>Weaker, opt-in: only plain output columns are masked; the column may also be used in expressions and functions, whose results leave unmasked.</summary>
    OutputOnly,
    /// <summary>Plain output columns are masked; filters (<c>WHERE</c>, <c>JOIN … ON</c>, <c>GROUP BY</c>, <c>ORDER BY</c> …) may use the column; any other use is refused.</summary>
    Default,
    /// <summary>As <see cref="Default"/>, and filters may not use the column either.</summary>
    Strict,
}

/// <summary>A masked name and the rule that masks it.</summary>
public sealed record MaskedName(string Rule, MaskUse Use);

/// <summary>
/// The names the masking rules of one role on one target reach, as the target's catalog resolved them:
/// masked columns (by bare name), the relations that hold them (tables and their inheritance children),
/// the views and materialized views that read them (derived: never readable while masked), and the
/// schemas of all of them. Names are compared without case (stricter than the server).
/// </summary>
public sealed class MaskedSchema
{
    public MaskedSchema(IEnumerable<(string Column, MaskedName Name)> columns, IEnumerable<(string Relation, MaskedName Name)> relations,
        IEnumerable<(string Relation, MaskedName Name)> derived, IEnumerable<string> schemas, IEnumerable<(string Function, MaskedName Name)>? functions = null,
        IReadOnlyDictionary<string, IReadOnlySet<string>>? relationColumns = null)
    {
        RelationColumns = relationColumns ?? new Dictionary<string, IReadOnlySet<string>>();
        Columns = Strictest(columns);
        Relations = Strictest(relations);
        Derived = Strictest(derived);
        Functions = Strictest(functions ?? []);
        Schemas = new HashSet<string>(schemas, StringComparer.OrdinalIgnoreCase);
    }

    public IReadOnlyDictionary<string, MaskedName> Columns { get; }
    public IReadOnlyDictionary<string, MaskedName> Relations { get; }
    public IReadOnlyDictionary<string, MaskedName> Derived { get; }
    public IReadOnlySet<string> Schemas { get; }
    /// <summary>Every column of each masked relation, by relation name, as the catalog lists them (empty when only the rules' names are known).</summary>
    public IReadOnlyDictionary<string, IReadOnlySet<string>> RelationColumns { get; }

    /// <summary>Functions whose bodies could read masked columns (or cannot be read): a statement that calls one is refused.</summary>
    public IReadOnlyDictionary<string, MaskedName> Functions { get; }

    public bool IsEmpty => Columns.Count == 0 && Derived.Count == 0 && Functions.Count == 0;

    private static Dictionary<string, MaskedName> Strictest(IEnumerable<(string Name, MaskedName Masked)> names)
    {
        var map = new Dictionary<string, MaskedName>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, masked) in names)
            if (!map.TryGetValue(name, out var known) || masked.Use > known.Use)
                map[name] = masked;
        return map;
    }

    /// <summary>
    /// Catalog relations whose rows carry values of other tables' columns: the planner's statistics
    /// (most common values, histogram bounds) and other sessions' statement texts.
    /// </summary>
    public static IReadOnlySet<string> ExposingCatalogs { get; } = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
    {
        "pg_stats", "pg_statistic", "pg_stats_ext", "pg_stats_ext_exprs", "pg_statistic_ext_data", "pg_mcv_list_items",
        "pg_stat_activity", "pg_stat_statements", "pg_stat_get_activity", "pg_stat_get_backend_activity", "pg_stat_statements_info",
    };
}

/// <summary>A <c>COPY relation [(columns)] TO STDOUT</c> of a relation with masked columns: what the gateway needs to mask its rows.</summary>
/// <param name="Columns">The columns named, or null for all of them (in the table's order).</param>
/// <param name="Csv">CSV, else PostgreSQL's text format (binary is refused).</param>
public sealed record CopyOut(string Relation, IReadOnlyList<string>? Columns, bool Csv, char Delimiter, char Quote, char Escape, string Null, bool Header);

/// <summary>What masking makes of one statement.</summary>
/// <param name="Touches">The statement names a relation with masked columns (then its error and notice texts are replaced).</param>
/// <param name="Rule">Set when the statement is refused: the masking rule that refuses it.</param>
/// <param name="Reason">Why, in words.</param>
/// <param name="Copy">For a COPY of a masked table to the client: how to mask its rows.</param>
/// <param name="Outputs">The masked columns that leave as plain output columns (masked there), by name, and <c>*</c> or <c>t.*</c> for star items over masked tables: what the simulator shows.</param>
public sealed record MaskRoute(bool Touches, string? Rule = null, string? Reason = null, CopyOut? Copy = null, IReadOnlyList<string>? Outputs = null)
{
    public static readonly MaskRoute Untouched = new(false);
    public bool Refused => Rule is not null;
}

/// <summary>
/// Where masked columns go in one statement. PostgreSQL attributes an output column to its table
/// (RowDescription's table OID and column number) only when it is a plain column reference, so that is
/// the only way a masked column may leave: the gateway masks it there. Every other use through which a
/// value can leave — an expression, cast, function argument, row or JSON constructor, aggregate, a
/// whole-row reference, a subquery's or CTE's output, an <c>INSERT … SELECT</c>, <c>UPDATE … SET</c>,
/// <c>RETURNING</c> expression, <c>SELECT INTO</c>, a COPY query — is refused. Filters may use a masked
/// column (not under <see cref="MaskUse.Strict"/>). DDL that names a masked relation, column or schema
/// is refused (a rename would unmask it), and so are views that read masked columns, and the catalog
/// relations that carry column values (<see cref="MaskedSchema.ExposingCatalogs"/>).
/// Pure; reads the tokens of one statement. Judged conservatively: a name is masked wherever it appears,
/// whatever table it belongs to.
/// </summary>
public static class SqlMaskRoutes
{
    /// <summary>One statement (its span of <paramref name="text"/>).</summary>
    public static MaskRoute Check(string text, SqlStatement statement, MaskedSchema schema, bool standardConformingStrings = true) =>
        Check(text.Substring(statement.Start, statement.Length), [statement with { Start = 0 }], schema, standardConformingStrings);

    /// <summary>
    /// Every statement of a message: the text is split again here (a classification may come from a
    /// text of the same shape, whose offsets are not this text's), and each piece is read with its
    /// statement's command and flags. The first refusal wins; a statement count that differs from the
    /// classification's is refused (fail closed).
    /// </summary>
    public static MaskRoute Check(string text, IReadOnlyList<SqlStatement> statements, MaskedSchema schema, bool standardConformingStrings = true)
    {
        if (schema.IsEmpty)
            return MaskRoute.Untouched;
        List<SqlToken> tokens;
        try
        {
            tokens = SqlLexer.Tokenize(text, standardConformingStrings);
        }
        catch (SqlLexError)
        {
            return new MaskRoute(true, Unreadable, "the statement cannot be read, so it cannot be shown not to reveal a masked column");
        }
        var spans = SqlSplitter.Split(text, tokens);
        if (spans.Count != statements.Count)
            return new MaskRoute(true, Unreadable, "the statements of the text could not be matched to their classification");
        var touches = false;
        CopyOut? copy = null;
        var outputs = new List<string>();
        for (var i = 0; i < spans.Count; i++)
        {
            var span = spans[i];
            var route = new Walker(text, tokens.GetRange(span.From, span.To - span.From), schema, statements[i]).Run();
            if (route.Refused)
                return route;
            touches |= route.Touches;
            if (route.Copy is not null && spans.Count > 1)
                return new MaskRoute(true, FirstRule(schema), "a COPY of a table with masked columns must be sent on its own (its rows are masked as one result)");
            copy ??= route.Copy;
            outputs.AddRange(route.Outputs ?? []);
        }
        return touches ? new MaskRoute(true, Copy: spans.Count == 1 ? copy : null, Outputs: outputs) : MaskRoute.Untouched;
    }

    private static string FirstRule(MaskedSchema schema) => schema.Columns.Values.Concat(schema.Derived.Values).Select(n => n.Rule).FirstOrDefault() ?? Unreadable;

    /// <summary>The rule named when a statement cannot be read at all.</summary>
    public const string Unreadable = "masking";

    private enum Context { Plain, Value, Filter, Relation }

    private enum FrameKind { Top, Derived, Value, Filter }

    private enum Clause { None, Select, From, Join, Filter, On, Returning, Set, Values, Into, With, Target, Other }

    private sealed class Walker(string text, List<SqlToken> t, MaskedSchema schema, SqlStatement statement)
    {
        private readonly int[] _match = Matches(text, t);
        private readonly HashSet<string> _aliases = new(StringComparer.OrdinalIgnoreCase);
        private readonly List<string> _outputs = [];
        private readonly Dictionary<string, string> _aliasOf = new(StringComparer.OrdinalIgnoreCase);
        private MaskRoute? _refusal;
        private bool _touches;

        public MaskRoute Run()
        {
            // Names first: most statements touch no masked relation, column or schema at all.
            var touchesRelation = false;
            for (var i = 0; i < t.Count; i++)
            {
                if (Is(i, "uescape"))
                    return Refuse(FirstRule(), "UESCAPE is not accepted while masking rules are in force (write the name plainly)");
                if (Name(i) is not { } name)
                    continue;
                if (MaskedSchema.ExposingCatalogs.Contains(name))
                    return Refuse(FirstRule(), $"\"{name}\" carries values of table columns (statistics, statement texts) and masked columns are in force on this target");
                if (schema.Derived.TryGetValue(name, out var derived))
                    return Refuse(derived.Rule, $"\"{name}\" reads masked columns; query the table it reads instead");
                if (schema.Functions.TryGetValue(name, out var function) && (P(i + 1, '(') || P(i - 1, '.')))
                    return Refuse(function.Rule, $"function \"{name}\" could read masked columns (its body names a masked table, runs SQL built at run time, or cannot be read), and its results are not masked");
                if (schema.Relations.ContainsKey(name))
                    touchesRelation = true;
            }
            var command = statement.Command;
            var ddl = statement.Class is StatementClass.Ddl || command.StartsWith("ALTER", StringComparison.Ordinal) || command.StartsWith("CREATE", StringComparison.Ordinal)
                      || command.StartsWith("DROP", StringComparison.Ordinal) || command.StartsWith("COMMENT", StringComparison.Ordinal) || command.StartsWith("SECURITY LABEL", StringComparison.Ordinal);
            if (ddl)
            {
                // Code (functions, operators, views, rules, triggers …) could read a masked table where the gateway
                // does not look; CREATE TABLE … AS EXECUTE copies what a prepared statement returns.
                if (CreatesCode(command) || t.Any(x => SqlTokens.Is(text, x, "execute")))
                    return Refuse(FirstRule(), $"{command} is not accepted while masking rules are in force on this target: it could read masked columns where the gateway does not see it");
                // A rename, a type change, a view, rule or trigger over a masked table could unmask it.
                for (var i = 0; i < t.Count; i++)
                    if (Name(i) is { } name && (schema.Relations.TryGetValue(name, out var masked)
                                                || (schema.Schemas.Contains(name) && !P(i + 1, '.') && statement.Command.Contains("SCHEMA", StringComparison.Ordinal))))
                        return Refuse(masked?.Rule ?? FirstRule(), $"{command} names \"{name}\", which masking rules cover; changing it could unmask it (ask an admin)");
                return MaskRoute.Untouched;
            }
            if (!touchesRelation)
                return MaskRoute.Untouched;
            _touches = true;

            CollectAliases();
            CollectJoinAliases();
            if (_refusal is not null)
                return _refusal;
            if (command == "COPY")
                return CheckCopy();

            var (start, plainAllowed) = QueryStart();
            if (!plainAllowed)
                return new MaskRoute(true); // LOCK, TRUNCATE, VACUUM, GRANT …: no values leave
            Walk(start, t.Count, FrameKind.Top, plainAllowed && !statement.Has(StatementFlags.SelectInto) && !statement.Has(StatementFlags.CreateTableAs));
            return _refusal ?? new MaskRoute(true, Outputs: _outputs);
        }

        private static readonly string[] CodeObjects =
            ["FUNCTION", "PROCEDURE", "OPERATOR", "AGGREGATE", "CAST", "TRIGGER", "RULE", "VIEW", "LANGUAGE", "TRANSFORM", "FOREIGN", "SERVER",
             "EXTENSION", "MAPPING", "CONVERSION", "ACCESS METHOD", "PUBLICATION", "SUBSCRIPTION", "STATISTICS", "POLICY", "DOMAIN", "TYPE"];

        private static bool CreatesCode(string command) =>
            (command.StartsWith("CREATE", StringComparison.Ordinal) || command.StartsWith("ALTER", StringComparison.Ordinal))
            && CodeObjects.Any(o => command.Contains(o, StringComparison.Ordinal));

        private string FirstRule() => SqlMaskRoutes.FirstRule(schema);

        private MaskRoute Refuse(string rule, string reason) => _refusal ??= new MaskRoute(_touches, rule, reason);

        private string? Name(int i) => i >= 0 && i < t.Count && t[i].Kind is SqlTokenKind.Word or SqlTokenKind.QuotedIdentifier ? SqlTokens.Name(text, t[i]) : null;

        private bool Is(int i, string keyword) => i >= 0 && i < t.Count && SqlTokens.Is(text, t[i], keyword);

        private bool P(int i, char c) => i >= 0 && i < t.Count && SqlTokens.IsPunctuation(text, t[i], c);

        private bool IsStar(int i) => i >= 0 && i < t.Count && t[i].Kind == SqlTokenKind.Operator && t[i].Length == 1 && text[t[i].Start] == '*';

        private static int[] Matches(string text, List<SqlToken> tokens)
        {
            var match = new int[tokens.Count];
            Array.Fill(match, -1);
            var stack = new Stack<int>();
            for (var i = 0; i < tokens.Count; i++)
            {
                if (SqlTokens.IsPunctuation(text, tokens[i], '('))
                    stack.Push(i);
                else if (SqlTokens.IsPunctuation(text, tokens[i], ')') && stack.Count > 0)
                {
                    var open = stack.Pop();
                    match[open] = i;
                    match[i] = open;
                }
            }
            return match;
        }

        /// <summary>
        /// PostgreSQL's reserved keywords and those that cannot be a table alias or column name either
        /// (kwlist.h: RESERVED_KEYWORD and TYPE_FUNC_NAME_KEYWORD). Any other word after a relation can be
        /// its alias (<c>FROM customers no</c>).
        /// </summary>
        private static readonly HashSet<string> Reserved = new(StringComparer.OrdinalIgnoreCase)
        {
            "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric", "both", "case", "cast", "check", "collate",
            "column", "constraint", "create", "current_catalog", "current_date", "current_role", "current_time", "current_timestamp",
            "current_user", "default", "deferrable", "desc", "distinct", "do", "else", "end", "except", "false", "fetch", "for", "foreign",
            "from", "grant", "group", "having", "in", "initially", "intersect", "into", "lateral", "leading", "limit", "localtime",
            "localtimestamp", "not", "null", "offset", "on", "only", "or", "order", "placing", "primary", "references", "returning",
            "select", "session_user", "some", "symmetric", "system_user", "table", "then", "to", "trailing", "true", "union", "unique",
            "user", "using", "variadic", "when", "where", "window", "with",
            "authorization", "binary", "collation", "concurrently", "cross", "current_schema", "freeze", "full", "ilike", "inner", "is",
            "isnull", "join", "left", "like", "natural", "notnull", "outer", "overlaps", "right", "similar", "tablesample", "verbose",
        };

        /// <summary>A name that is not a reserved word: a quoted identifier, or a word PostgreSQL accepts as a column or alias.</summary>
        private string? Ident(int i) => Name(i) is { } name && (t[i].Kind == SqlTokenKind.QuotedIdentifier || !Reserved.Contains(name)) ? name : null;

        /// <summary>Aliases of masked relations (<c>FROM customers c</c>): whole-row references by alias are caught too. A column alias list on one is refused (it renames masked columns).</summary>
        private void CollectAliases()
        {
            for (var i = 0; i < t.Count; i++)
            {
                if (Name(i) is not { } name || !schema.Relations.TryGetValue(name, out var masked) || P(i + 1, '.'))
                    continue;
                var j = i + 1;
                if (IsStar(j))
                    j++; // FROM customers * (with inheritance children)
                var explicitAs = Is(j, "as");
                if (explicitAs)
                    j++;
                if (Ident(j) is { } alias && !P(j + 1, '.'))
                {
                    _aliases.Add(alias);
                    _aliasOf[alias] = name;
                    if (P(j + 1, '(') && !IsInsertTarget(i))
                    {
                        Refuse(masked.Rule, $"a column alias list on \"{name}\" renames its masked columns");
                        return;
                    }
                }
            }
        }

        /// <summary><c>JOIN … USING (…) AS j</c>: <c>j</c> is a row of the merged columns.</summary>
        private void CollectJoinAliases()
        {
            for (var i = 0; i + 1 < t.Count; i++)
                if (Is(i, "using") && P(i + 1, '(') && _match[i + 1] > 0 && Is(_match[i + 1] + 1, "as") && Name(_match[i + 1] + 2) is { } alias)
                    _aliases.Add(alias);
        }

        private bool IsInsertTarget(int i) => Is(i - 1, "into") || (P(i - 1, '.') && Is(i - 3, "into"));

        private bool IsMaskedRelation(string name) => schema.Relations.ContainsKey(name) || _aliases.Contains(name);

        /// <summary>Where the query begins after EXPLAIN, PREPARE … AS, DECLARE … FOR; and whether its output may carry plain masked columns.</summary>
        private (int Start, bool PlainAllowed) QueryStart()
        {
            var i = 0;
            if (Is(0, "explain"))
            {
                i = 1;
                if (P(1, '('))
                    i = _match[1] + 1;
                while (Is(i, "analyze") || Is(i, "analyse") || Is(i, "verbose"))
                    i++;
            }
            else if (Is(0, "prepare") || Is(0, "declare"))
            {
                while (i < t.Count && !(Is(i, "as") && Is(0, "prepare")) && !(Is(i, "for") && Is(0, "declare")))
                    i = P(i, '(') && _match[i] > 0 ? _match[i] + 1 : i + 1;
                i++;
            }
            var plain = Is(i, "select") || Is(i, "with") || Is(i, "table") || Is(i, "values") || P(i, '(')
                        || Is(i, "insert") || Is(i, "update") || Is(i, "delete") || Is(i, "merge");
            return (i, plain);
        }

        /// <summary>A query's tokens in <c>[from, to)</c>, its clauses at the query's own level.</summary>
        private void Walk(int from, int to, FrameKind kind, bool plainAllowed)
        {
            if (!Deeper())
                return;
            try
            {
                WalkFrame(from, to, kind, plainAllowed);
            }
            finally
            {
                _depth--;
            }
        }

        /// <summary>PostgreSQL refuses expressions nested past its stack depth anyway; the walker refuses them far sooner, and never recurses without bound.</summary>
        public const int MaxDepth = 200;
        private int _depth;

        private bool Deeper()
        {
            if (++_depth <= MaxDepth)
                return true;
            _depth--;
            Refuse(FirstRule(), $"the statement is nested more than {MaxDepth} levels deep");
            return false;
        }

        private void WalkFrame(int from, int to, FrameKind kind, bool plainAllowed)
        {
            // Known before the select list is judged: a set operation's output is not attributed to tables.
            var setOperation = false;
            for (var j = from; j < to; j = P(j, '(') && _match[j] > 0 ? _match[j] + 1 : j + 1)
                setOperation |= Is(j, "union") || Is(j, "intersect") || Is(j, "except");
            var merge = Is(from, "merge");
            var brackets = 0; // inside ARRAY[…] or a subscript: commas there do not separate items
            var clause = Clause.None;
            var itemStart = -1;
            var listPlain = false;
            var merging = false;
            var mainIsSelect = true;
            for (var i = from; i < to && _refusal is null; i++)
            {
                if (Is(i, "table") && Name(i + 1) is { } tabled && !P(i + 2, '.'))
                {
                    // TABLE customers is SELECT * FROM customers: plain output only as the whole top-level query.
                    if (IsMaskedRelation(tabled))
                    {
                        if (i == from && kind == FrameKind.Top && plainAllowed && mainIsSelect && !setOperation)
                            _outputs.Add("*");
                        else if (kind != FrameKind.Filter)
                            Refuse(RuleOf(tabled), $"TABLE {tabled} here would carry masked columns where PostgreSQL does not attribute them");
                    }
                    i++;
                    continue;
                }
                if (P(i, '['))
                    brackets++;
                else if (P(i, ']') && brackets > 0)
                    brackets--;
                if (P(i, '('))
                {
                    var close = _match[i] < 0 ? to : _match[i];
                    var filter = kind == FrameKind.Filter || clause is Clause.Filter or Clause.On;
                    if (clause == Clause.With && (Is(i - 1, "as") || Is(i - 1, "materialized")))
                        Walk(i + 1, close, kind == FrameKind.Filter ? FrameKind.Filter : FrameKind.Derived, false);
                    else if (IsQuery(i + 1))
                        Walk(i + 1, close, ChildKind(kind, clause), false);
                    else if (Is(i - 1, "using") && clause is Clause.Join or Clause.From)
                    {
                        // JOIN … USING (…) merges the columns it names into one that PostgreSQL may not attribute.
                        for (var j = i + 1; j < close; j++)
                            if (Name(j) is { } merged && schema.Columns.TryGetValue(merged, out var m))
                                Refuse(m.Rule, $"JOIN … USING ({merged}) merges a masked column into an output PostgreSQL does not always attribute to its table; join with ON instead");
                    }
                    else if ((clause is Clause.Target or Clause.Into && Name(i - 1) is not null && !merge) || (clause == Clause.With && !Is(i - 1, "as"))
                             || (clause == Clause.Set && brackets == 0 && (P(i - 1, ',') || Is(i - 1, "set")) && IsOperator(close + 1, "=")))
                        Subscripts(i + 1, close); // column lists: an INSERT's target columns, a CTE's column names, UPDATE … SET (a, b) = …
                    else
                        // A function's arguments, an expression; also a parenthesized join (its alias would be a
                        // whole-row reference the gateway does not follow: a masked relation in one is refused).
                        Scan(i + 1, close, ArgumentContext(i, filter ? Context.Filter : Context.Value));
                    i = close;
                    continue;
                }
                if (t[i].Kind == SqlTokenKind.Word && brackets == 0 && NewClause(i, merge, ref clause, ref merging, ref mainIsSelect))
                {
                    if (itemStart >= 0)
                        EndItem(itemStart, i, kind, listPlain);
                    itemStart = -1;
                    if (clause is Clause.Select or Clause.Returning)
                    {
                        listPlain = kind == FrameKind.Top && plainAllowed && (clause == Clause.Returning || (mainIsSelect && !setOperation));
                        itemStart = SkipDistinct(i + 1) - 1;
                        i = itemStart;
                    }
                    continue;
                }
                if (clause is Clause.Select or Clause.Returning)
                {
                    if (P(i, ',') && brackets == 0)
                    {
                        EndItem(itemStart, i, kind, listPlain);
                        itemStart = i;
                    }
                    continue; // judged whole, per item
                }
                if (clause == Clause.On && P(i, ','))
                {
                    clause = Clause.From;
                    continue;
                }
                if (clause == Clause.Set && brackets == 0 && Name(i) is not null && (P(i - 1, ',') || Is(i - 1, "set")) && (IsOperator(i + 1, "=") || P(i + 1, '[') || P(i + 1, '.')))
                {
                    // the column assigned (SET email = …): written, not read; its subscripts are read
                    while (i + 2 < to && P(i + 1, '.') && Name(i + 2) is not null)
                        i += 2;
                    continue;
                }
                Use(i, clause switch
                {
                    Clause.From or Clause.Join or Clause.Target or Clause.Into or Clause.With => Context.Relation,
                    Clause.Filter or Clause.On => Context.Filter,
                    _ => kind == FrameKind.Filter ? Context.Filter : Context.Value,
                });
            }
            if (itemStart >= 0 && _refusal is null)
                EndItem(itemStart, to, kind, listPlain);
            if (merging && _refusal is null)
                Refuse(FirstRule(), "a NATURAL JOIN merges same-named columns into outputs PostgreSQL does not always attribute to a table; join with ON instead");
        }

        /// <summary>Names in a column list are written, not read; what is inside subscripts (<c>j[(SELECT …)]</c>) is read as a value.</summary>
        private void Subscripts(int from, int to)
        {
            var depth = 0;
            for (var i = from; i < to && _refusal is null; i++)
            {
                if (P(i, '['))
                    depth++;
                else if (P(i, ']'))
                    depth--;
                else if (depth > 0)
                {
                    if (P(i, '(') && _match[i] > i)
                    {
                        if (IsQuery(i + 1))
                            Walk(i + 1, _match[i], FrameKind.Value, false);
                        else
                            Scan(i + 1, _match[i], Context.Value);
                        i = _match[i];
                    }
                    else
                        Use(i, Context.Value);
                }
            }
        }

        /// <summary>
        /// The context of a parenthesised argument list: a function off the safe list (it may send, store or
        /// show what it is given: <c>pg_notify</c>, <c>set_config</c>, <c>lo_from_bytea</c>, a user function)
        /// makes even a filter's arguments values; <c>count(…)</c> reveals only how many, like a filter.
        /// </summary>
        private Context ArgumentContext(int open, Context context)
        {
            if (Name(open - 1) is not { } callee || t[open - 1].Kind != SqlTokenKind.Word && t[open - 1].Kind != SqlTokenKind.QuotedIdentifier)
                return context;
            var qualified = P(open - 2, '.');
            if (callee == "count" && !qualified && context != Context.Plain)
                return Context.Filter;
            if (context != Context.Filter || SyntaxWords.Contains(callee))
                return context;
            var folded = SqlFunctions.Fold(callee);
            return SqlFunctions.Safe.Contains(folded) && !qualified && !KeepState.Contains(folded) ? context : Context.Value;
        }

        /// <summary>Functions on the safe list whose effect outlives the statement (a later one can read it back): not harmless in a filter.</summary>
        private static readonly HashSet<string> KeepState = new(StringComparer.Ordinal)
        {
            "setseed", "lo_open", "lo_close", "lo_lseek", "lo_lseek64", "lo_tell", "lo_tell64", "loread", "pg_sleep", "pg_sleep_for", "pg_sleep_until",
        };

        /// <summary>Words before a parenthesis that are syntax, not a call.</summary>
        private static readonly HashSet<string> SyntaxWords = new(StringComparer.OrdinalIgnoreCase)
        {
            "in", "any", "all", "some", "exists", "array", "row", "cast", "coalesce", "nullif", "greatest", "least", "extract", "substring",
            "position", "trim", "overlay", "values", "and", "or", "not", "on", "using", "where", "when", "then", "else", "case", "between",
            "like", "ilike", "similar", "is", "filter", "over", "within", "distinct", "by", "as", "from", "select", "lateral", "join",
        };

        private bool IsOperator(int i, string op) => i >= 0 && i < t.Count && t[i].Kind == SqlTokenKind.Operator && text.AsSpan(t[i].Start, t[i].Length).SequenceEqual(op);

        private int SkipDistinct(int i)
        {
            if (Is(i, "all"))
                return i + 1;
            if (!Is(i, "distinct"))
                return i;
            i++;
            if (Is(i, "on") && P(i + 1, '('))
            {
                Scan(i + 2, _match[i + 1] < 0 ? t.Count : _match[i + 1], Context.Filter);
                return (_match[i + 1] < 0 ? t.Count : _match[i + 1]) + 1;
            }
            return i;
        }

        /// <summary>A keyword that starts a clause at this query's level; updates the clause.</summary>
        private bool NewClause(int i, bool merge, ref Clause clause, ref bool merging, ref bool mainIsSelect)
        {
            if (t[i].Length > 9)
                return false;
            switch (text.Substring(t[i].Start, t[i].Length).ToLowerInvariant())
            {
                case "select":
                    clause = Clause.Select;
                    return true;
                case "from" when Is(i - 1, "distinct") && (Is(i - 2, "is") || Is(i - 2, "not")):
                    return false; // a IS [NOT] DISTINCT FROM b
                case "from":
                    clause = Clause.From;
                    return true;
                case "join":
                    clause = Clause.Join;
                    return true;
                case "natural":
                    merging = true;
                    return false;
                case "on" when clause is Clause.Join or Clause.From:
                    clause = Clause.On;
                    return true;
                case "using" when merge && clause is Clause.Into or Clause.Target:
                    clause = Clause.From; // MERGE INTO t USING source ON …
                    return true;
                case "group" when Is(i - 1, "within"):
                    return false; // percentile_disc(…) WITHIN GROUP (ORDER BY x): the sort key is the value
                case "where" or "having" or "group" or "order" or "limit" or "offset" or "fetch" or "window":
                    clause = Clause.Filter;
                    return true;
                case "when" when merge:
                    clause = Clause.Filter;
                    return true;
                case "then" when merge:
                    clause = Clause.Other; // MERGE … WHEN … THEN UPDATE SET / INSERT VALUES
                    return true;
                case "returning":
                    clause = Clause.Returning;
                    return true;
                case "set" when clause is Clause.Target or Clause.None or Clause.Other || Is(i - 1, "update"):
                    clause = Clause.Set;
                    return true;
                case "values":
                    clause = Clause.Values;
                    return true;
                case "into":
                    clause = Clause.Into;
                    return true;
                case "update" when Is(i - 1, "for") || Is(i - 1, "no") || Is(i - 1, "key"):
                    return false; // FOR [NO KEY] UPDATE
                case "update" or "delete" or "insert" or "merge":
                    mainIsSelect = false;
                    clause = Clause.Target;
                    return true;
                case "with" when clause == Clause.None:
                    clause = Clause.With;
                    return true;
                case "union" or "intersect" or "except":
                    clause = Clause.None;
                    return true;
                default:
                    return false;
            }
        }

        /// <summary>A query starts at <paramref name="i"/>, behind any number of parentheses (looked at without recursion: nesting is the agent's to choose).</summary>
        private bool IsQuery(int i)
        {
            while (P(i, '('))
                i++;
            return Is(i, "select") || Is(i, "with") || Is(i, "values") || Is(i, "table");
        }

        private static FrameKind ChildKind(FrameKind parent, Clause clause) =>
            parent == FrameKind.Filter || clause is Clause.Filter or Clause.On ? FrameKind.Filter
            : clause is Clause.From or Clause.Join or Clause.With ? FrameKind.Derived
            : FrameKind.Value;

        /// <summary>An expression in parentheses: every name in it is used as a value (or a filter), and subqueries in it are frames of that kind.</summary>
        private void Scan(int from, int to, Context context)
        {
            if (!Deeper())
                return;
            try
            {
                ScanExpression(from, to, context);
            }
            finally
            {
                _depth--;
            }
        }

        private void ScanExpression(int from, int to, Context context)
        {
            for (var i = from; i < to && _refusal is null; i++)
            {
                if (P(i, '('))
                {
                    var close = _match[i] < 0 ? to : _match[i];
                    if (IsQuery(i + 1))
                        Walk(i + 1, close, context == Context.Filter ? FrameKind.Filter : FrameKind.Value, false);
                    else
                        Scan(i + 1, close, ArgumentContext(i, context));
                    i = close;
                    continue;
                }
                Use(i, context);
            }
        }

        /// <summary>One item of a select list or RETURNING list, tokens (<paramref name="start"/>, <paramref name="end"/>) at the query's level (its parentheses were judged as values).</summary>
        private void EndItem(int start, int end, FrameKind kind, bool plainAllowed)
        {
            var first = start + 1;
            if (first >= end)
                return;
            var plainLength = kind == FrameKind.Top && plainAllowed ? PlainItemLength(first, end) : 0;
            if (IsStar(first) && first + 1 == end && kind != FrameKind.Filter)
            {
                if (plainLength == 0)
                    Refuse(FirstRule(), "* in a subquery, CTE or other inner query would carry masked columns where PostgreSQL does not attribute them");
                else
                    _outputs.Add("*");
                return;
            }
            if (plainLength > 0)
            {
                var final = first + plainLength - 1;
                if (IsStar(final) && Name(final - 2) is { } starOf && IsMaskedRelation(starOf))
                    _outputs.Add(starOf + ".*");
                else if (Name(final) is { } column && schema.Columns.ContainsKey(column))
                    _outputs.Add(column);
            }
            var context = kind == FrameKind.Filter ? Context.Filter : plainLength > 0 ? Context.Plain : Context.Value;
            var last = plainLength > 0 ? first + plainLength : Is(end - 2, "as") && Name(end - 1) is not null ? end - 2 : end; // not the alias
            for (var i = first; i < last && _refusal is null; i++)
            {
                if (P(i, '(') && _match[i] > i)
                {
                    i = _match[i]; // judged by Walk as values
                    continue;
                }
                Use(i, context);
            }
        }

        /// <summary>The length of the expression of a plain item, <c>name[.name…][.*]</c>, before its <c>[AS] alias</c>; 0 when the item is not plain.</summary>
        private int PlainItemLength(int first, int end)
        {
            var i = first;
            if (IsStar(i))
                return i + 1 == end ? 1 : 0;
            if (Ident(i) is null || P(i + 1, '('))
                return 0;
            i++;
            while (P(i, '.') && i + 1 < end)
            {
                if (IsStar(i + 1))
                    return i + 2 == end ? i + 2 - first : 0;
                if (Name(i + 1) is null)
                    return 0;
                i += 2;
            }
            var length = i - first;
            if (i == end)
                return length;
            if (Is(i, "as"))
                return Name(i + 1) is not null && i + 2 == end ? length : 0;
            return Ident(i) is not null && i + 1 == end ? length : 0;
        }

        /// <summary><c>name[.name…][.*] [[AS] alias]</c>.</summary>
        private bool IsPlainItem(int first, int end)
        {
            var i = first;
            if (IsStar(i))
                return i + 1 == end;
            if (Name(i) is null)
                return false;
            i++;
            while (P(i, '.') && i + 1 < end)
            {
                if (IsStar(i + 1))
                    return i + 2 == end;
                if (Name(i + 1) is null)
                    return false;
                i += 2;
            }
            if (i == end)
                return true;
            if (Is(i, "as"))
                i++;
            return Name(i) is not null && i + 1 == end;
        }

        /// <summary>One token in a context: a masked column or a whole-row reference to a masked relation.</summary>
        private void Use(int i, Context context)
        {
            if (context == Context.Relation)
            {
                // A relation name, alias, or (inside parentheses, handled by Scan) a function's arguments. A qualified
                // star or name here is a column list of an INSERT target or a USING list, which carry no values out.
                return;
            }
            if (IsStar(i) && P(i - 1, '.') && Name(i - 2) is { } starOf && IsMaskedRelation(starOf) && context == Context.Value)
            {
                Refuse(RuleOf(starOf), $"\"{starOf}.*\" inside an expression carries masked columns where PostgreSQL does not attribute them");
                return;
            }
            if (Name(i) is not { } name)
                return;
            if (P(i + 1, '.'))
                return; // a qualifier: the column after it is judged
            var qualifier = P(i - 1, '.') ? Name(i - 2) : null;
            if (qualifier is not null && !IsMaskedRelation(qualifier) && !schema.Schemas.Contains(qualifier))
                return; // v.email of a relation with no masked columns
            if (qualifier is not null && IsMaskedRelation(qualifier) && !P(i + 1, '(') && NotAColumnOf(qualifier, name))
            {
                // c.row_to_json is row_to_json(c): a call on the whole row, in attribute notation.
                if (Allowed(context, schema.Relations.GetValueOrDefault(qualifier)?.Use ?? MaskUse.Default, wholeRow: true))
                    return;
                Refuse(RuleOf(qualifier), $"\"{qualifier}.{name}\" is not a column of \"{qualifier}\": it calls {name}() on the whole row, with its masked columns");
                return;
            }
            var call = P(i + 1, '(');
            if (!call && IsMaskedRelation(name) && !(P(i - 1, '.') && !schema.Relations.ContainsKey(name)))
            {
                // customers, c, public.customers: the whole row, with its masked columns.
                var masked = schema.Relations.GetValueOrDefault(name) ?? new MaskedName(FirstRule(), MaskUse.Default);
                if (Allowed(context, masked.Use, wholeRow: true))
                    return;
                Refuse(masked.Rule, $"a whole-row reference to \"{name}\" carries its masked columns unmasked");
                return;
            }
            if (!schema.Columns.TryGetValue(name, out var column))
                return;
            if (call && context == Context.Plain)
                context = Context.Value; // email(c): attribute notation in an item that is not plain
            if (Allowed(context, column.Use, wholeRow: false))
                return;
            Refuse(column.Rule, context == Context.Filter
                ? $"masked column \"{name}\" may not be used in a filter (the rule is strict)"
                : $"masked column \"{name}\" is used in an expression, function argument, subquery or write, where it would leave unmasked; select it as a plain column to get it masked");
        }

        private static readonly HashSet<string> SystemColumns = new(StringComparer.OrdinalIgnoreCase) { "ctid", "xmin", "xmax", "cmin", "cmax", "tableoid", "oid" };

        /// <summary>A name after a masked relation's qualifier that the catalog does not list as one of its columns (when it knows the relation).</summary>
        private bool NotAColumnOf(string qualifier, string name)
        {
            var relation = _aliasOf.GetValueOrDefault(qualifier) ?? qualifier;
            return schema.RelationColumns.TryGetValue(relation, out var columns) && !columns.Contains(name) && !SystemColumns.Contains(name);
        }

        private string RuleOf(string relationOrAlias) => schema.Relations.GetValueOrDefault(relationOrAlias)?.Rule ?? FirstRule();

        private static bool Allowed(Context context, MaskUse use, bool wholeRow) => context switch
        {
            Context.Plain => !wholeRow,
            Context.Filter => use != MaskUse.Strict,
            _ => use == MaskUse.OutputOnly,
        };

        /// <summary><c>COPY rel [(cols)] TO STDOUT [options]</c> is masked; a COPY query, a binary COPY or options the gateway does not read are refused.</summary>
        private MaskRoute CheckCopy()
        {
            var i = 1;
            if (P(i, '('))
                return Refuse(FirstRule(), "COPY of a query that reads a masked table is refused; COPY the table itself (its masked columns are masked) or SELECT plain columns");
            while (Name(i) is not null && P(i + 1, '.'))
                i += 2;
            if (Name(i) is not { } relation)
                return Refuse(FirstRule(), "the COPY statement cannot be read");
            i++;
            List<string>? columns = null;
            if (P(i, '('))
            {
                columns = [];
                for (var j = i + 1; j < _match[i]; j++)
                    if (Name(j) is { } column)
                        columns.Add(column);
                i = _match[i] + 1;
            }
            if (!schema.Relations.ContainsKey(relation))
            {
                // The masked relation is named elsewhere (a WHERE clause is not allowed in COPY TO): be safe.
                return Refuse(FirstRule(), "the COPY statement names a masked table in a way the gateway cannot follow");
            }
            if (Is(i, "from"))
                return new MaskRoute(true); // loading data reveals nothing
            if (!Is(i, "to") || !Is(i + 1, "stdout"))
                return Refuse(RuleOf(relation), "COPY of a masked table goes only TO STDOUT");
            i += 2;
            var csv = false;
            var binary = false;
            char? delimiter = null, quote = null, escape = null;
            var header = false;
            if (Is(i, "with"))
                i++;
            if (P(i, '('))
            {
                var close = _match[i];
                var j = i + 1;
                while (j < close)
                {
                    var option = Name(j);
                    var value = j + 1 < close && !P(j + 1, ',') ? j + 1 : -1;
                    var stringValue = value >= 0 ? SqlTokens.StringValue(text, t[value]) ?? Name(value) : null;
                    switch (option)
                    {
                        case "format":
                            csv = string.Equals(stringValue, "csv", StringComparison.OrdinalIgnoreCase);
                            binary = string.Equals(stringValue, "binary", StringComparison.OrdinalIgnoreCase);
                            if (!csv && !binary && !string.Equals(stringValue, "text", StringComparison.OrdinalIgnoreCase))
                                return Refuse(RuleOf(relation), "the COPY format is not one the gateway can mask");
                            break;
                        case "delimiter" when stringValue is { Length: 1 }:
                            delimiter = stringValue[0];
                            break;
                        case "quote" when stringValue is { Length: 1 }:
                            quote = stringValue[0];
                            break;
                        case "escape" when stringValue is { Length: 1 }:
                            escape = stringValue[0];
                            break;
                        case "null":
                            return Refuse(RuleOf(relation), "COPY with a NULL string of its own is refused while masking (a masked value equal to it could not be told from NULL)");
                        case "header":
                        {
                            var raw = value < 0 ? "true" : stringValue ?? (t[value].Kind == SqlTokenKind.Number ? text.Substring(t[value].Start, t[value].Length) : null);
                            if (raw?.ToLowerInvariant() is "true" or "on" or "1")
                                header = true;
                            else if (raw?.ToLowerInvariant() is "false" or "off" or "0")
                                header = false;
                            else
                                return Refuse(RuleOf(relation), "the COPY HEADER option is not one the gateway can read");
                            break;
                        }
                        case "encoding" or "force_quote" or "freeze" or "force_not_null" or "force_null":
                            if (option == "encoding")
                                return Refuse(RuleOf(relation), "COPY with ENCODING is not masked by the gateway; leave the option out");
                            break;
                        default:
                            return Refuse(RuleOf(relation), $"the COPY option \"{option}\" is not one the gateway can mask with");
                    }
                    j = value >= 0 ? value + 1 : j + 1;
                    while (j < close && !P(j, ','))
                        j = P(j, '(') && _match[j] > 0 ? _match[j] + 1 : j + 1;
                    j++;
                }
                i = close + 1;
            }
            else
            {
                // The old syntax: BINARY, CSV [HEADER] [QUOTE 'q'] …, DELIMITER 'd', NULL 'n'.
                while (i < t.Count)
                {
                    if (Is(i, "binary"))
                        binary = true;
                    else if (Is(i, "csv"))
                        csv = true;
                    else if (Is(i, "header"))
                        header = true;
                    else if ((Is(i, "delimiter") || Is(i, "quote") || Is(i, "escape") || Is(i, "null")) && SqlTokens.StringValue(text, t[i + 1 < t.Count ? i + 1 : i]) is { } v)
                    {
                        if (Is(i, "null"))
                            return Refuse(RuleOf(relation), "COPY with a NULL string of its own is refused while masking (a masked value equal to it could not be told from NULL)");
                        if (v.Length != 1)
                            return Refuse(RuleOf(relation), "the COPY options cannot be read");
                        else if (Is(i, "delimiter"))
                            delimiter = v[0];
                        else if (Is(i, "quote"))
                            quote = v[0];
                        else
                            escape = v[0];
                        i++;
                    }
                    else if (Is(i, "as"))
                    {
                        // CSV QUOTE AS '"'
                    }
                    else
                        return Refuse(RuleOf(relation), "the COPY options cannot be read");
                    i++;
                }
            }
            if (binary)
                return Refuse(RuleOf(relation), "a binary COPY of a table with masked columns is refused (its values cannot be masked in place); use the text or CSV format");
            return new MaskRoute(true, Copy: new CopyOut(relation, columns, csv, delimiter ?? (csv ? ',' : '\t'), quote ?? '"', escape ?? quote ?? '"', csv ? "" : "\\N", header));
        }
    }
}
