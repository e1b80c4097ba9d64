using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.CompilerServices;
using Airlock.Sidecar.Policy;
using Airlock.Sidecar.Policy.Masking;
using Airlock.Sidecar.Protocols.Postgres;

namespace Airlock.Sidecar.Postgres;

/// <summary>
/// Resolves each role's masking rules against its target's catalog (<see cref="MaskedTarget"/>), on the
/// sidecar's own catalog connection, and caches the answer per target and rule set:
/// <list type="bullet">
/// <item>an answer lives <see cref="Lifetime"/>, and every answer for a target is dropped when DDL is
/// sent to it through this sidecar (a column may have been added or renamed, a view or function created);</item>
/// <item>concurrent sessions wait for one lookup, not one each;</item>
/// <item>a lookup that fails answers <see cref="MaskedTarget.Unavailable"/> for a few seconds: every
/// statement of those sessions is refused until the catalog can be read (fail closed).</item>
/// </list>
/// </summary>
internal sealed class MaskCatalog(UpstreamConnector connector, ILogger logger, TimeProvider time, TimeSpan lifetime)
{
    public TimeSpan Lifetime => lifetime;
    private static readonly TimeSpan FailureLifetime = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan LookupTimeout = TimeSpan.FromSeconds(10);

    private sealed record Entry(Task<MaskedTarget> Lookup, DateTimeOffset Expires, long Generation);

    private readonly ConditionalWeakTable<MaskRules, ConcurrentDictionary<string, Entry>> _entries = new();
    private readonly ConcurrentDictionary<string, long> _generations = new(StringComparer.Ordinal);

    /// <summary>After DDL through this sidecar: every cached answer for the target is stale.</summary>
    public void Forget(string target) => _generations.AddOrUpdate(target, 1, (_, g) => g + 1);

    /// <summary>The resolved masking of <paramref name="rules"/> on <paramref name="target"/>: cached while fresh, else looked up (one lookup at a time).</summary>
    public Task<MaskedTarget> GetAsync(TargetPolicy target, MaskRules rules)
    {
        var byTarget = _entries.GetValue(rules, _ => new ConcurrentDictionary<string, Entry>(StringComparer.Ordinal));
        var generation = _generations.GetValueOrDefault(target.Name);
        var now = time.GetUtcNow();
        while (true)
        {
            if (byTarget.TryGetValue(target.Name, out var entry) && entry.Generation == generation && (entry.Expires > now || !entry.Lookup.IsCompleted))
                return entry.Lookup;
            var fresh = new Entry(LookupAsync(target, rules), now + lifetime, generation);
            if (entry is null ? byTarget.TryAdd(target.Name, fresh) : byTarget.TryUpdate(target.Name, fresh, entry))
                return fresh.Lookup;
        }
    }

    private async Task<MaskedTarget> LookupAsync(TargetPolicy target, MaskRules rules)
    {
        await Task.Yield();
        try
        {
            using var timeout = new CancellationTokenSource(LookupTimeout);
            var results = await CatalogQuery.RunAsync(connector, target, Sql(rules), timeout.Token);
            if (results.Count != 3)
                throw new PgProtocolException($"the catalog answered {results.Count} result sets instead of 3");
            var columns = results[0].Select(r => new CatalogColumn(Oid(r[0]), r[1]!, r[2]!, short.Parse(r[3]!, CultureInfo.InvariantCulture), r[4]!, r[5]!, r[6]!, int.Parse(r[7]!, CultureInfo.InvariantCulture), r[8] == "t"));
            var derived = results[1].Select(r => new CatalogRelation(Oid(r[0]), r[1]!, r[2]!));
            if (results[2].Count > MaxFunctions)
                throw new PgProtocolException($"the target has more than {MaxFunctions} functions outside pg_catalog; masking cannot vouch for them");
            var functions = results[2].Select(r => new CatalogFunction(r[0]!, r[1]!, r[2]!, r[3]));
            return MaskedTarget.Build(rules, columns, derived, functions);
        }
        catch (Exception e)
        {
            // Whatever the target answered (or failed to), masking fails closed for a few seconds, then asks again.
            var problem = e is GatewayRefusal r ? r.Error.Message : e.Message;
            logger.LogWarning("Cannot read the catalog of target {Target} to apply its masking rules: {Error}; its masked sessions refuse statements until it can", target.Name, problem);
            ExpireSoon(target.Name, rules);
            return MaskedTarget.Unavailable(rules, problem);
        }
    }

    private void ExpireSoon(string target, MaskRules rules)
    {
        if (_entries.TryGetValue(rules, out var byTarget) && byTarget.TryGetValue(target, out var entry))
            byTarget.TryUpdate(target, entry with { Expires = time.GetUtcNow() + FailureLifetime }, entry);
    }

    /// <summary>Functions read at most (a larger catalog is refused, fail closed); bodies are read up to <see cref="MaxBodyChars"/> and a longer one counts as unreadable.</summary>
    public const int MaxFunctions = 100_000;
    public const int MaxBodyChars = 65_536;

    private static uint Oid(string? text) => uint.Parse(text!, CultureInfo.InvariantCulture);

    /// <summary>
    /// Three result sets: the columns of the relations the rules name, of their inheritance children and
    /// partitions, and of their parents (each with the relation named: a parent's column of the same name
    /// shows the named table's rows), the views and materialized views that read any of them (through other
    /// views too), and the functions outside the system schemas that are not part of an extension.
    /// </summary>
    internal static string Sql(MaskRules rules)
    {
        var tables = CatalogQuery.List(rules.Columns.Select(c => c.Table.ToLowerInvariant()).Distinct());
        const string rewrite = "d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND r.ev_class <> d.refobjid";
        var masked = $"""
            WITH RECURSIVE named(oid) AS (
                SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relkind IN ('r', 'p', 'f', 'v', 'm') AND lower(c.relname) IN ({tables})),
            below(oid, root) AS (
                SELECT oid, oid FROM named
                UNION SELECT i.inhrelid, b.root FROM pg_catalog.pg_inherits i JOIN below b ON i.inhparent = b.oid),
            above(oid, root) AS (
                SELECT i.inhparent, n.oid FROM pg_catalog.pg_inherits i JOIN named n ON i.inhrelid = n.oid
                UNION SELECT i.inhparent, a.root FROM pg_catalog.pg_inherits i JOIN above a ON i.inhrelid = a.oid),
            masked(oid, root) AS (SELECT oid, root FROM below UNION SELECT oid, root FROM above)
            """;
        return $"""
            {masked}
            SELECT m.oid, n.nspname, c.relname, a.attnum, a.attname, rn.nspname, rc.relname, a.atttypid, a.attgenerated <> ''
            FROM masked m JOIN pg_catalog.pg_class c ON c.oid = m.oid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              JOIN pg_catalog.pg_class rc ON rc.oid = m.root JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
              JOIN pg_catalog.pg_attribute a ON a.attrelid = m.oid
            WHERE a.attnum > 0 AND NOT a.attisdropped;
            {masked},
            derived(oid) AS (
                SELECT r.ev_class FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid
                WHERE {rewrite} AND d.refobjid IN (SELECT oid FROM masked)
                UNION SELECT r.ev_class FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid JOIN derived v ON d.refobjid = v.oid
                WHERE {rewrite})
            SELECT c.oid, n.nspname, c.relname FROM derived v JOIN pg_catalog.pg_class c ON c.oid = v.oid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace;
            SELECT n.nspname, p.proname, l.lanname, CASE WHEN length(p.prosrc) > {MaxBodyChars} THEN NULL ELSE p.prosrc END
            FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace JOIN pg_catalog.pg_language l ON l.oid = p.prolang
            WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
              AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND e.objid = p.oid AND e.deptype = 'e')
            LIMIT {MaxFunctions + 1};
            """;
    }
}
