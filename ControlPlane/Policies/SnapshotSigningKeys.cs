using System.Buffers.Text;
using System.Security.Cryptography;
using Airlock.ControlPlane.Data;
using Airlock.Sidecar.Policy;
using Airlock.Sidecar.Policy.Identity;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;

namespace Airlock.ControlPlane.Policies;

/// <summary>
/// The control plane's signing keys, per purpose: snapshot signing (ECDSA P-256) and agent token
/// signing (RS256 or ES256). Persisted, the private half encrypted by Data Protection. The signing
/// key of a purpose is the newest one already active; a rotated-in key is published first (in
/// snapshots, in the JWKS) and starts signing after the overlap, so verifiers know it in time.
/// The key it replaces stays published for <see cref="RetiredKeyGrace"/> after that.
/// </summary>
public sealed class SnapshotSigningKeys(AirlockDbContext db, IDataProtectionProvider dataProtection, TimeProvider time)
{
    private readonly IDataProtector _protector = dataProtection.CreateProtector("Airlock.SnapshotSigningKey.v1");

    public static readonly TimeSpan DefaultOverlap = TimeSpan.FromHours(24);

    /// <summary>How long a replaced key stays published: longer than any token it signed can live (1 h).</summary>
    public static readonly TimeSpan RetiredKeyGrace = TimeSpan.FromHours(1) + TimeSpan.FromMinutes(5);

    public async Task EnsureKeyAsync(CancellationToken ct)
    {
        if (!await db.SigningKeys.AnyAsync(k => k.Purpose == SigningKeyPurposes.Snapshot, ct))
            await AddKeyAsync(SigningKeyPurposes.Snapshot, "ES256", time.GetUtcNow(), ct);
        if (!await db.SigningKeys.AnyAsync(k => k.Purpose == SigningKeyPurposes.Token, ct))
            await AddKeyAsync(SigningKeyPurposes.Token, "RS256", time.GetUtcNow(), ct);
    }

    /// <summary>Adds a key that starts signing after <paramref name="overlap"/> (zero: at once, for a compromised key).</summary>
    public async Task<SigningKey> RotateAsync(TimeSpan overlap, string actor, CancellationToken ct, string purpose = SigningKeyPurposes.Snapshot, string? algorithm = null)
    {
        var now = time.GetUtcNow();
        var key = await AddKeyAsync(purpose, algorithm ?? (purpose == SigningKeyPurposes.Snapshot ? "ES256" : "RS256"), now + overlap, ct, save: false);
        db.Record(now, actor, "rotate", $"{purpose}-signing-key", key.Id, null, new { key.Id, key.Algorithm, key.ActivatesAt });
        await db.SaveChangesAsync(ct);
        return key;
    }

    public async Task<(string KeyId, ECDsa Key)> GetSigningKeyAsync(CancellationToken ct)
    {
        var current = Current(await KeysAsync(SigningKeyPurposes.Snapshot, ct), time.GetUtcNow())
            ?? throw new InvalidOperationException("no active snapshot signing key");
        var ecdsa = ECDsa.Create();
        ecdsa.ImportPkcs8PrivateKey(PrivateKey(current), out _);
        return (current.Id, ecdsa);
    }

    /// <summary>The current snapshot signing key and every key still to come.</summary>
    public async Task<IReadOnlyList<SnapshotKey>> GetPublishedKeysAsync(CancellationToken ct) =>
        Published(await KeysAsync(SigningKeyPurposes.Snapshot, ct), time.GetUtcNow())
            .Select(k => new SnapshotKey(k.Id, k.PublicKey))
            .ToList();

    /// <summary>The agent-token key that signs now: its id, algorithm and PKCS#8 private key.</summary>
    public async Task<(string KeyId, string Algorithm, byte[] Pkcs8)> GetTokenSigningKeyAsync(CancellationToken ct)
    {
        var current = Current(await KeysAsync(SigningKeyPurposes.Token, ct), time.GetUtcNow())
            ?? throw new InvalidOperationException("no active token signing key");
        return (current.Id, current.Algorithm, PrivateKey(current));
    }

    /// <summary>Airlock's JWKS: the current token key, keys to come, and keys replaced less than the grace ago.</summary>
    public async Task<IReadOnlyList<PublicJwk>> GetTokenJwksAsync(CancellationToken ct)
    {
        var keys = await KeysAsync(SigningKeyPurposes.Token, ct);
        var now = time.GetUtcNow();
        var published = Published(keys, now).ToList();
        // A replaced key: it was current until a newer one activated less than the grace ago.
        var recentlyReplaced = keys
            .Where(k => k.ActivatesAt <= now && !published.Contains(k))
            .Where(k => keys.Any(n => n.ActivatesAt > k.ActivatesAt && n.ActivatesAt <= now && now - n.ActivatesAt < RetiredKeyGrace));
        return published.Concat(recentlyReplaced).OrderBy(k => k.Id, StringComparer.Ordinal).Select(ToJwk).ToList();
    }

    private async Task<List<SigningKey>> KeysAsync(string purpose, CancellationToken ct) =>
        await db.SigningKeys.AsNoTracking().Where(k => k.Purpose == purpose).ToListAsync(ct);

    private static SigningKey? Current(List<SigningKey> keys, DateTimeOffset now) =>
        keys.Where(k => k.ActivatesAt <= now).MaxBy(k => k.ActivatesAt);

    private static IEnumerable<SigningKey> Published(List<SigningKey> keys, DateTimeOffset now)
    {
        var current = Current(keys, now);
        return keys.Where(k => k == current || k.ActivatesAt > now).OrderBy(k => k.Id, StringComparer.Ordinal);
    }

    private byte[] PrivateKey(SigningKey key) => Convert.FromBase64String(_protector.Unprotect(key.PrivateKeyProtected));

    private static PublicJwk ToJwk(SigningKey key)
    {
        if (key.Algorithm == "RS256")
        {
            using var rsa = RSA.Create();
            rsa.ImportSubjectPublicKeyInfo(key.PublicKey, out _);
            var p = rsa.ExportParameters(false);
            return new PublicJwk(key.Id, "RSA", "RS256", Base64Url.EncodeToString(p.Modulus), Base64Url.EncodeToString(p.Exponent), null, null, null);
        }
        using var ec = ECDsa.Create();
        ec.ImportSubjectPublicKeyInfo(key.PublicKey, out _);
        var q = ec.ExportParameters(false).Q;
        return new PublicJwk(key.Id, "EC", "ES256", null, null, "P-256", Base64Url.EncodeToString(q.X), Base64Url.EncodeToString(q.Y));
    }

    private async Task<SigningKey> AddKeyAsync(string purpose, string algorithm, DateTimeOffset activatesAt, CancellationToken ct, bool save = true)
    {
        if (algorithm is not ("ES256" or "RS256") || (purpose == SigningKeyPurposes.Snapshot && algorithm != "ES256"))
            throw new ArgumentException($"algorithm '{algorithm}' is not available for {purpose} keys", nameof(algorithm));
        using AsymmetricAlgorithm key = algorithm == "RS256" ? RSA.Create(2048) : ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var publicKey = key.ExportSubjectPublicKeyInfo();
        var entity = new SigningKey
        {
            // The key id is derived from the public key: stable and collision-free.
            Id = (purpose == SigningKeyPurposes.Snapshot ? "sk-" : "tk-") + Convert.ToHexStringLower(SHA256.HashData(publicKey))[..16],
            Purpose = purpose,
            Algorithm = algorithm,
            PublicKey = publicKey,
            PrivateKeyProtected = _protector.Protect(Convert.ToBase64String(key.ExportPkcs8PrivateKey())),
            CreatedAt = time.GetUtcNow(),
            ActivatesAt = activatesAt,
        };
        db.SigningKeys.Add(entity);
        if (save)
            await db.SaveChangesAsync(ct);
        return entity;
    }
}
