using Airlock.ControlPlane.Data;
using Airlock.ControlPlane.Policies;
using Microsoft.EntityFrameworkCore;

namespace Airlock.ControlPlane.Identity;

public sealed record SigningKeyView(string Id, string Purpose, string Algorithm, DateTimeOffset CreatedAt, DateTimeOffset ActivatesAt);

/// <summary>An external issuer's key status: where its keys come from, which it has, and whether fetching them works.</summary>
public sealed record TrustedIssuerStatus(
    string Name, string Issuer, string Kind, string Source, IReadOnlyList<string> Keys, string Status,
    DateTimeOffset? FetchedAt, DateTimeOffset? LastAttemptAt, string? LastError, IReadOnlyList<BindingSummary> Bindings);

public sealed record BindingSummary(string Name, string Agent);

/// <summary>
/// Signing keys (listed and rotated) and trusted issuers' key status, for <c>/api/v1/signing-keys</c>,
/// <c>/api/v1/trusted-issuer-status</c> and the console's Settings page alike.
/// </summary>
internal sealed class KeysAndIssuers(AirlockDbContext db, SnapshotSigningKeys keys, PolicyChangeNotifier notifier, TokenSigningSetup tokenSigning)
{
    public async Task<IReadOnlyList<SigningKeyView>> SigningKeysAsync(CancellationToken ct) =>
        (await db.SigningKeys.AsNoTracking().ToListAsync(ct)).OrderBy(k => k.ActivatesAt)
            .Select(k => new SigningKeyView(k.Id, k.Purpose, k.Algorithm, k.CreatedAt, k.ActivatesAt)).ToList();

    /// <summary>Checks the request, rotates, and publishes: the new key reaches every sidecar now, and an immediate token key signs from now on.</summary>
    public async Task<(SigningKey? Key, IReadOnlyList<PolicyError> Errors)> RotateAsync(string? purpose, string? algorithm, int? overlapMinutes, string actor, CancellationToken ct)
    {
        purpose ??= SigningKeyPurposes.Snapshot;
        var overlap = overlapMinutes is { } m ? TimeSpan.FromMinutes(m) : SnapshotSigningKeys.DefaultOverlap;
        if (overlap < TimeSpan.Zero)
            return (null, [new("overlapMinutes", "must not be negative")]);
        if (purpose is not (SigningKeyPurposes.Snapshot or SigningKeyPurposes.Token))
            return (null, [new("purpose", "must be 'snapshot' or 'token'")]);
        if (algorithm is not (null or "RS256" or "ES256") || (purpose == SigningKeyPurposes.Snapshot && algorithm is "RS256"))
            return (null, [new("algorithm", "RS256 or ES256 for token keys; snapshot keys are ES256")]);
        var key = await keys.RotateAsync(overlap, actor, ct, purpose, algorithm);
        notifier.Publish();
        tokenSigning.Recheck();
        return (key, []);
    }

    public async Task<IReadOnlyList<TrustedIssuerStatus>> IssuerStatusAsync(CancellationToken ct) =>
        (await db.TrustedIssuers.AsNoTracking().OrderBy(t => t.Name).ToListAsync(ct)).Select(t => new TrustedIssuerStatus(
            t.Name,
            t.Issuer,
            t.Kind,
            t.Kind == TrustedIssuerKinds.Saml ? "certificate" : t.StaticJwks is null ? "discovery" : "static",
            Jwks.Parse(t.StaticJwks ?? t.FetchedJwks).Select(k => k.Kid).ToList(),
            t.StaticJwks is not null || t.Kind == TrustedIssuerKinds.Saml ? "ok" : t.LastError is not null ? (t.FetchedJwks is null ? "unreachable" : "stale") : t.FetchedAt is null ? "pending" : "ok",
            t.FetchedAt,
            t.LastAttemptAt,
            t.LastError,
            t.Bindings.Select(b => new BindingSummary(b.Name, b.Agent)).ToList())).ToList();
}
