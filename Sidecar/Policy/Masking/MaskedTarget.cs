using Airlock.Sidecar.Protocols.Sql;

namespace Airlock.Sidecar.Policy.Masking;

/// <summary>A column of a relation a mask rule names, or of one of its inheritance children (<see cref="RootSchema"/>.<see cref="RootRelation"/> is the one named).</summary>
/// <param name="Generated">A generated column: COPY TO leaves it out.</param>
public sealed record CatalogColumn(uint RelationOid, string Schema, string Relation, short Number, string Name, string RootSchema, string RootRelation, int Type = ValueMasker.Text, bool Generated = false);

/// <summary>A view or materialized view that reads a relation with masked columns (directly or through other views).</summary>
public sealed record CatalogRelation(uint Oid, string Schema, string Name);

/// <summary>A function outside <c>pg_catalog</c>: its language and (as far as it can be read) its body.</summary>
public sealed record CatalogFunction(string Schema, string Name, string Language, string? Body);

/// <summary>
/// One role's masking rules resolved against one target's catalog: which (table OID, column number)
/// pairs are masked and how — the key RowDescription gives for every plain column reference — plus the
/// names the statement check needs (<see cref="MaskedSchema"/>) and each masked table's column order
/// (for COPY). Views over masked tables and functions whose bodies could read them are listed as
/// derived: statements that use them are refused. Pure; built from the catalog's rows.
/// </summary>
public sealed class MaskedTarget
{
    private readonly Dictionary<(uint, short), (string Label, ColumnMask Mask)> _byProvenance;
    private readonly HashSet<uint> _derived;
    private readonly Dictionary<string, List<List<(string Name, ColumnMask? Mask, int Type)>>> _tables;
    private readonly Dictionary<uint, NamedRelation> _named;

    /// <summary>A relation a rule names (or a child of one) as the catalog described it: its columns by number.</summary>
    private sealed record NamedRelation(string Schema, string Name, string RootSchema, string RootRelation, Dictionary<short, string> Columns);

    private MaskedTarget(MaskRules rules, Dictionary<(uint, short), (string, ColumnMask)> byProvenance, HashSet<uint> derived,
        Dictionary<string, List<List<(string, ColumnMask?, int)>>> tables, MaskedSchema schema, string? problem, Dictionary<uint, NamedRelation>? named = null)
    {
        _named = named ?? [];
        Rules = rules;
        _byProvenance = byProvenance;
        _derived = derived;
        _tables = tables;
        Schema = schema;
        Problem = problem;
    }

    public MaskRules Rules { get; }
    public MaskedSchema Schema { get; }

    /// <summary>Set when the catalog could not be read: then every statement is refused (fail closed).</summary>
    public string? Problem { get; }

    public bool HasColumns => _byProvenance.Count > 0 || _derived.Count > 0;

    public static MaskedTarget Unavailable(MaskRules rules, string problem) =>
        new(rules, [], [], new Dictionary<string, List<List<(string, ColumnMask?, int)>>>(), new MaskedSchema([], [], [], []), problem);

    /// <summary>
    /// The mask of the column RowDescription attributes to (<paramref name="table"/>, <paramref name="column"/>),
    /// output as <paramref name="outputName"/>; a column of a derived view is masked whole. When the
    /// catalog read is older than the table (DDL done elsewhere), <paramref name="stale"/> is set and the
    /// column is masked if it could be a masked one: a column number the read did not have (added since),
    /// or an output name a rule masks on that table (renamed since).
    /// </summary>
    public (string Label, ColumnMask Mask)? Find(uint table, short column, string outputName, out bool stale)
    {
        stale = false;
        if (table == 0)
            return null;
        if (_byProvenance.TryGetValue((table, column), out var found))
            return found;
        if (_derived.Contains(table))
            return ($"view {table}", DerivedMask);
        if (!_named.TryGetValue(table, out var relation))
            return null;
        if (!relation.Columns.TryGetValue(column, out var known))
        {
            stale = true;
            var rule = Rules.Columns.FirstOrDefault(c => Matches(c, relation))?.Mask.Rule ?? "masking";
            return ($"{relation.Schema}.{relation.Name}.{outputName}", DerivedMask with { Rule = rule });
        }
        if (!string.Equals(known, outputName, StringComparison.Ordinal) && Rules.Find(relation.RootSchema, relation.RootRelation, outputName) is { } renamed)
        {
            stale = true;
            return ($"{relation.Schema}.{relation.Name}.{outputName}", renamed);
        }
        return null;
    }

    private static bool Matches(MaskedColumnName c, NamedRelation r) =>
        string.Equals(c.Table, r.RootRelation, StringComparison.OrdinalIgnoreCase) && (c.Schema is null || string.Equals(c.Schema, r.RootSchema, StringComparison.OrdinalIgnoreCase));

    private static readonly ColumnMask DerivedMask = new("masking", MaskStrategy.Null, 0, MaskUse.Strict);

    /// <summary>
    /// The columns of <paramref name="relation"/> in the order COPY writes them (those named, or all),
    /// each with its mask; null when the name is ambiguous in a way that matters (tables of that name
    /// whose masked columns differ by position) or unknown.
    /// </summary>
    public IReadOnlyList<(ColumnMask? Mask, int Type, string Name)>? CopyMasks(string relation, IReadOnlyList<string>? named)
    {
        if (!_tables.TryGetValue(relation, out var candidates))
            return null;
        List<(ColumnMask? Mask, int Type, string Name)>? result = null;
        foreach (var columns in candidates)
        {
            List<(ColumnMask?, int, string)> masks;
            if (named is null)
                masks = columns.Select(c => (c.Mask, c.Type, $"{relation}.{c.Name}")).ToList();
            else
            {
                masks = [];
                foreach (var name in named)
                {
                    var match = columns.FirstOrDefault(c => string.Equals(c.Name, name, StringComparison.OrdinalIgnoreCase));
                    masks.Add(match.Name is null ? (null, ValueMasker.Text, name) : (match.Mask, match.Type, $"{relation}.{match.Name}"));
                }
            }
            if (result is null)
                result = masks;
            else if (result.Count != masks.Count || result.Where((m, i) => (m.Mask is null) != (masks[i].Item1 is null)).Any())
                return null;
        }
        return result;
    }

    /// <summary>Builds the resolved view; a rule naming a column the catalog does not have masks nothing (and the name is still judged by the statement check).</summary>
    public static MaskedTarget Build(MaskRules rules, IEnumerable<CatalogColumn> columns, IEnumerable<CatalogRelation> derived, IEnumerable<CatalogFunction> functions)
    {
        var byProvenance = new Dictionary<(uint, short), (string, ColumnMask)>();
        var tables = new Dictionary<string, List<List<(string, ColumnMask?, int)>>>(StringComparer.OrdinalIgnoreCase);
        var maskedColumns = new List<(string, MaskedName)>();
        var maskedRelations = new List<(string, MaskedName)>();
        var schemas = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var named = new Dictionary<uint, NamedRelation>();
        var relationColumns = new Dictionary<string, HashSet<string>>(StringComparer.OrdinalIgnoreCase);
        foreach (var relation in columns.GroupBy(c => c.RelationOid))
        {
            // A relation may be reached from several named tables (a parent of two): one entry per column,
            // masked if any of them masks it.
            var byNumber = relation.GroupBy(c => c.Number).OrderBy(g => g.Key).ToList();
            var head = byNumber[0].First();
            if (byNumber.SelectMany(g => g).Any(c => rules.Columns.Any(r => string.Equals(r.Table, c.RootRelation, StringComparison.OrdinalIgnoreCase)
                    && (r.Schema is null || string.Equals(r.Schema, c.RootSchema, StringComparison.OrdinalIgnoreCase)))))
                named[relation.Key] = new NamedRelation(head.Schema, head.Relation, head.RootSchema, head.RootRelation, byNumber.ToDictionary(g => g.Key, g => g.First().Name));
            if (!relationColumns.TryGetValue(head.Relation, out var known))
                relationColumns[head.Relation] = known = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            var list = new List<(string, ColumnMask?, int)>(byNumber.Count);
            ColumnMask? strictest = null;
            foreach (var same in byNumber)
            {
                var c = same.First();
                known.Add(c.Name);
                var mask = same.Select(x => rules.Find(x.RootSchema, x.RootRelation, x.Name)).FirstOrDefault(m => m is not null);
                if (!c.Generated)
                    list.Add((c.Name, mask, c.Type));
                if (mask is null)
                    continue;
                byProvenance[(c.RelationOid, c.Number)] = ($"{c.Schema}.{c.Relation}.{c.Name}", mask);
                maskedColumns.Add((c.Name, new MaskedName(mask.Rule, mask.Use)));
                if (strictest is null || mask.Use > strictest.Use)
                    strictest = mask;
            }
            if (strictest is null)
                continue;
            var first = head;
            if (!tables.TryGetValue(first.Relation, out var sameName))
                tables[first.Relation] = sameName = [];
            sameName.Add(list);
            maskedRelations.Add((first.Relation, new MaskedName(strictest.Rule, strictest.Use)));
            schemas.Add(first.Schema);
        }
        // The rules' own names too, whatever the catalog says (a table created later is judged by name at once).
        foreach (var rule in rules.Columns)
        {
            maskedColumns.Add((rule.Column, new MaskedName(rule.Mask.Rule, rule.Mask.Use)));
            maskedRelations.Add((rule.Table, new MaskedName(rule.Mask.Rule, rule.Mask.Use)));
            if (rule.Schema is not null)
                schemas.Add(rule.Schema);
        }
        var firstRule = rules.FirstRule;
        var derivedList = derived.ToList();
        var derivedNames = derivedList.Select(d => (d.Name, new MaskedName(firstRule, MaskUse.Strict))).ToList();

        // Functions whose bodies could read a masked table: in a language the gateway cannot read, a body
        // that names a masked or derived relation, or PL/pgSQL that runs SQL built at run time.
        var watched = maskedRelations.Select(r => r.Item1).Concat(derivedList.Select(d => d.Name)).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
        var risky = new List<(string, MaskedName)>();
        var riskyNames = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var all = functions.ToList();
        foreach (var f in all)
        {
            var body = f.Body ?? "";
            var readable = f.Language is "sql" or "plpgsql" && body.Length > 0;
            var concern = !readable
                          || watched.Any(name => ContainsWord(body, name))
                          || (f.Language == "plpgsql" && ContainsWord(body, "execute"))
                          || SqlTextFunctions.Any(name => ContainsWord(body, name));
            if (concern)
                riskyNames.Add(f.Name);
        }
        // A function that calls a risky one is risky too (to a fixed point).
        for (var changed = true; changed;)
        {
            changed = false;
            foreach (var f in all)
                if (!riskyNames.Contains(f.Name) && f.Body is { } body && riskyNames.Any(name => ContainsWord(body, name)))
                    changed |= riskyNames.Add(f.Name);
        }
        foreach (var name in riskyNames)
            risky.Add((name, new MaskedName(firstRule, MaskUse.Strict)));
        var schema = new MaskedSchema(maskedColumns, maskedRelations, derivedNames, schemas, risky,
            relationColumns.ToDictionary(r => r.Key, r => (IReadOnlySet<string>)r.Value, StringComparer.OrdinalIgnoreCase));
        return new MaskedTarget(rules, byProvenance, derivedList.Select(d => d.Oid).ToHashSet(), tables, schema, null, named);
    }

    private static readonly string[] SqlTextFunctions =
        SqlFunctions.Dangerous.Where(d => (d.Value.Flags & StatementFlags.DynamicSql) != 0).Select(d => d.Key).ToArray();

    /// <summary>A name in a body, as a word (case-insensitive): <c>customers</c> in <c>FROM public.customers c</c>, not in <c>customers_archive</c>.</summary>
    public static bool ContainsWord(string body, string word)
    {
        var at = 0;
        while ((at = body.IndexOf(word, at, StringComparison.OrdinalIgnoreCase)) >= 0)
        {
            var before = at == 0 ? ' ' : body[at - 1];
            var after = at + word.Length >= body.Length ? ' ' : body[at + word.Length];
            if (!IsWordChar(before) && !IsWordChar(after))
                return true;
            at++;
        }
        return false;
    }

    private static bool IsWordChar(char c) => char.IsLetterOrDigit(c) || c is '_' or '$';
}
