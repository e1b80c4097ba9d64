using System.Collections.Concurrent;
using Airlock.Sidecar.Policy;
using Airlock.Sidecar.Policy.Guardrails;
using Airlock.Sidecar.Protocols.Postgres;

namespace Airlock.Sidecar.Postgres;

/// <summary>
/// What each target's catalog says about functions the classifier does not know, learned on a
/// separate upstream connection (the sidecar's own, with the target's credential; never the agent's
/// session) and cached per target:
/// <list type="bullet">
/// <item>for <c>name</c>, every function of that name in any schema counts, and the most volatile one
/// decides (the agent's search_path could reach any of them); for <c>schema.name</c>, only that schema;</item>
/// <item>entries live <see cref="Lifetime"/>, and a target's cache is dropped when a DDL statement is
/// sent to it through this sidecar (a function may have been created or replaced);</item>
/// <item>a lookup that fails (target unreachable, timeout) answers <see cref="FunctionVolatility.Unavailable"/>
/// for a short while, which the judge treats as volatile (fail closed).</item>
/// </list>
/// </summary>
internal sealed class FunctionCatalog(UpstreamConnector connector, ILogger logger, TimeProvider time)
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan FailureLifetime = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan LookupTimeout = TimeSpan.FromSeconds(5);
    private const int MaxEntriesPerTarget = 10_000;

    private readonly ConcurrentDictionary<string, ConcurrentDictionary<string, (FunctionVolatility Volatility, DateTimeOffset Expires)>> _targets = new(StringComparer.Ordinal);

    private ConcurrentDictionary<string, (FunctionVolatility Volatility, DateTimeOffset Expires)> For(string target) =>
        _targets.GetOrAdd(target, _ => new ConcurrentDictionary<string, (FunctionVolatility, DateTimeOffset)>(StringComparer.Ordinal));

    /// <summary>The cached answer; <see cref="FunctionVolatility.Unavailable"/> when the name was not looked up (fail closed).</summary>
    public FunctionVolatility Lookup(string target, string function) =>
        For(target).TryGetValue(function, out var entry) && entry.Expires > time.GetUtcNow() ? entry.Volatility : FunctionVolatility.Unavailable;

    /// <summary>Whether every name has a fresh answer.</summary>
    public bool Knows(string target, IEnumerable<string> functions)
    {
        var cache = For(target);
        var now = time.GetUtcNow();
        return functions.All(f => cache.TryGetValue(f, out var e) && e.Expires > now);
    }

    /// <summary>After DDL through this sidecar: functions may have been created, replaced or dropped.</summary>
    public void Forget(string target) => _targets.TryRemove(target, out _);

    /// <summary>Looks up the names not cached yet, in one query on a connection of its own.</summary>
    public async Task LoadAsync(TargetPolicy target, IReadOnlyCollection<string> functions, CancellationToken ct)
    {
        var cache = For(target.Name);
        var now = time.GetUtcNow();
        var missing = functions.Where(f => !(cache.TryGetValue(f, out var e) && e.Expires > now)).Distinct().Take(100).ToList();
        // A name no function can have (control characters, from a decoded escape) is not looked up: judged volatile.
        foreach (var odd in missing.Where(f => f.Any(char.IsControl)).ToList())
        {
            cache[odd] = (FunctionVolatility.Unavailable, now + Lifetime);
            missing.Remove(odd);
        }
        if (missing.Count == 0)
            return;
        if (cache.Count > MaxEntriesPerTarget)
            cache.Clear();
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(LookupTimeout);
            var rows = await QueryAsync(target, missing, timeout.Token);
            foreach (var name in missing)
                cache[name] = (Worst(name, rows), now + Lifetime);
        }
        catch (Exception e) when (e is GatewayRefusal or IOException or OperationCanceledException or PgProtocolException or ObjectDisposedException)
        {
            if (ct.IsCancellationRequested)
                throw;
            logger.LogWarning("Cannot read the catalog of target {Target} to judge functions {Functions}: {Error}; they are judged as volatile",
                target.Name, string.Join(", ", missing), e is GatewayRefusal r ? r.Error.Message : e.Message);
            foreach (var name in missing)
                cache[name] = (FunctionVolatility.Unavailable, now + FailureLifetime);
        }
    }

    /// <summary>
    /// <c>f</c>: every function of that name; <c>s.f</c> and <c>db.s.f</c> (the server accepts the current
    /// database's name in front): those in schema <c>s</c>, compared without case (names are folded).
    /// </summary>
    private static FunctionVolatility Worst(string name, List<(string Schema, string Name, char Volatility)> rows)
    {
        var parts = name.Split('.');
        var bare = parts[^1].ToLowerInvariant();
        var schema = parts.Length >= 2 ? parts[^2] : null;
        var matches = rows.Where(r => r.Name == bare && (schema is null || string.Equals(r.Schema, schema, StringComparison.OrdinalIgnoreCase))).ToList();
        if (matches.Count == 0)
            return FunctionVolatility.Missing;
        return matches.Any(r => r.Volatility == 'v') ? FunctionVolatility.Volatile
            : matches.Any(r => r.Volatility == 's') ? FunctionVolatility.Stable
            : FunctionVolatility.Immutable;
    }

    /// <summary>Names in lower case (as folded); quoted mixed-case names are matched case-insensitively too (stricter).</summary>
    private async Task<List<(string Schema, string Name, char Volatility)>> QueryAsync(TargetPolicy target, List<string> functions, CancellationToken ct)
    {
        var bare = functions.Select(f => f[(f.LastIndexOf('.') + 1)..].ToLowerInvariant()).Distinct();
        var sql = "SELECT n.nspname, lower(p.proname), p.provolatile FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace"
                  + $" WHERE lower(p.proname) IN ({CatalogQuery.List(bare)})";
        var results = await CatalogQuery.RunAsync(connector, target, sql, ct);
        return results.SelectMany(r => r)
            .Select(row => row.Length == 3 && row[0] is { } schema && row[1] is { } name && row[2] is { } volatility
                ? (schema.ToLowerInvariant(), name, volatility.Length == 1 ? volatility[0] : 'v')
                : throw new PgProtocolException("unexpected catalog row"))
            .ToList();
    }
}
