using System.Security.Cryptography;
using Airlock.ControlPlane.Data;
using Airlock.Sidecar.Policy;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;

namespace Airlock.ControlPlane.Policies;

/// <summary>
/// The control plane's snapshot signing keys (ECDSA P-256), persisted with the private half
/// encrypted by Data Protection. The signing key is the newest one already active; keys that will
/// activate later are published alongside so that sidecars trust them before they sign.
/// </summary>
public sealed class SnapshotSigningKeys(AirlockDbContext db, IDataProtectionProvider dataProtection, TimeProvider time)
{
    private readonly IDataProtector _protector = dataProtection.CreateProtector("Airlock.SnapshotSigningKey.v1");

    public static readonly TimeSpan DefaultOverlap = TimeSpan.FromHours(24);

    public async Task EnsureKeyAsync(CancellationToken ct)
    {
        if (!await db.SigningKeys.AnyAsync(ct))
            await AddKeyAsync(time.GetUtcNow(), ct);
    }

    /// <summary>Adds a new key that starts signing after <paramref name="overlap"/> (zero: at once, for a compromised key).</summary>
    public async Task<SigningKey> RotateAsync(TimeSpan overlap, string actor, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var key = await AddKeyAsync(now + overlap, ct, save: false);
        db.Record(now, actor, "rotate", "signing-key", key.Id, null, new { key.Id, key.ActivatesAt });
        await db.SaveChangesAsync(ct);
        return key;
    }

    public async Task<(string KeyId, ECDsa Key)> GetSigningKeyAsync(CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var keys = await db.SigningKeys.AsNoTracking().ToListAsync(ct);
        var current = keys.Where(k => k.ActivatesAt <= now).MaxBy(k => k.ActivatesAt)
            ?? throw new InvalidOperationException("no active snapshot signing key");
        var ecdsa = ECDsa.Create();
        ecdsa.ImportPkcs8PrivateKey(Convert.FromBase64String(_protector.Unprotect(current.PrivateKeyProtected)), out _);
        return (current.Id, ecdsa);
    }

    /// <summary>The current signing key and every key still to come.</summary>
    public async Task<IReadOnlyList<SnapshotKey>> GetPublishedKeysAsync(CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var keys = await db.SigningKeys.AsNoTracking().ToListAsync(ct);
        var current = keys.Where(k => k.ActivatesAt <= now).MaxBy(k => k.ActivatesAt);
        return keys
            .Where(k => k == current || k.ActivatesAt > now)
            .OrderBy(k => k.Id, StringComparer.Ordinal)
            .Select(k => new SnapshotKey(k.Id, k.PublicKey))
            .ToList();
    }

    private async Task<SigningKey> AddKeyAsync(DateTimeOffset activatesAt, CancellationToken ct, bool save = true)
    {
        using var ecdsa = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var publicKey = ecdsa.ExportSubjectPublicKeyInfo();
        var key = new SigningKey
        {
            // The key id is derived from the public key: stable and collision-free.
            Id = "sk-" + Convert.ToHexStringLower(SHA256.HashData(publicKey))[..16],
            PublicKey = publicKey,
            PrivateKeyProtected = _protector.Protect(Convert.ToBase64String(ecdsa.ExportPkcs8PrivateKey())),
            CreatedAt = time.GetUtcNow(),
            ActivatesAt = activatesAt,
        };
        db.SigningKeys.Add(key);
        if (save)
            await db.SaveChangesAsync(ct);
        return key;
    }
}
