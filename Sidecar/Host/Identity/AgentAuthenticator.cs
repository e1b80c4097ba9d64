using System.Collections.Concurrent;
using Airlock.Sidecar.Policy.Identity;
using Airlock.Sidecar.Snapshots;

namespace Airlock.Sidecar.Identity;

/// <summary>
/// Turns an agent's token into agent + role with the current snapshot, offline. Successful checks
/// are cached until the token expires or the snapshot changes (a disabled agent is refused from the
/// next snapshot on); failures are never cached. The cache is bounded.
/// </summary>
public sealed class AgentAuthenticator(SnapshotStore store, TimeProvider time)
{
    public const int MaxCachedTokens = 10_000;

    /// <summary>By (resource, token): a token accepted for one audience says nothing of another, and no token text can stand for another key.</summary>
    private readonly ConcurrentDictionary<(string? Resource, string Token), (TokenCheck Check, long Version, string Hash)> _cache = new();
    private ConcurrentDictionary<string, DateTimeOffset> _lastUse = new(StringComparer.Ordinal);

    /// <summary>Agent id → last accepted use since the previous call; the control plane shows it as "last use".</summary>
    public IReadOnlyDictionary<string, DateTimeOffset> DrainLastUse() =>
        Interlocked.Exchange(ref _lastUse, new ConcurrentDictionary<string, DateTimeOffset>(StringComparer.Ordinal));

    public void RecordUse(string agentId, DateTimeOffset at) =>
        _lastUse.AddOrUpdate(agentId, at, (_, existing) => existing > at ? existing : at);

    /// <param name="resource">The protected resource the token must be for (the MCP front door); null for the wire gateway's audience.</param>
    public TokenCheck Authenticate(string token, string? resource = null)
    {
        var active = store.Current;
        if (active?.Policy.Identity is not { } identity)
            return TokenCheck.Reject("no valid policy snapshot is loaded: failing closed");
        var now = time.GetUtcNow();
        var key = (resource, token);
        if (_cache.TryGetValue(key, out var cached)
            && cached.Version == active.Signed.Version && cached.Hash == active.Signed.ContentHash
            && cached.Check.ExpiresAt + TokenValidator.MaxSkew > now)
        {
            _lastUse[cached.Check.Agent!.Id] = now;
            return cached.Check;
        }

        var check = TokenValidator.Validate(token, identity, active.Policy.Agents, now, resource);
        if (check.IsValid)
        {
            if (_cache.Count >= MaxCachedTokens)
                Evict(now);
            _cache[key] = (check, active.Signed.Version, active.Signed.ContentHash);
            _lastUse[check.Agent!.Id] = now;
        }
        else
        {
            _cache.TryRemove(key, out _);
        }
        return check;
    }

    private void Evict(DateTimeOffset now)
    {
        foreach (var (key, entry) in _cache)
            if (entry.Check.ExpiresAt + TokenValidator.MaxSkew <= now)
                _cache.TryRemove(key, out _);
        // Still full: drop everything rather than grow; the next checks simply validate again.
        if (_cache.Count >= MaxCachedTokens)
            _cache.Clear();
    }
}
