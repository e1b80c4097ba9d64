using System.Security.Cryptography;
using System.Text.Json;

namespace Airlock.Sidecar.Policy;

public enum SnapshotVerdict
{
    /// <summary>A newer version: apply it.</summary>
    Accepted,

    /// <summary>The same version and content re-signed later: extend the expiry, nothing else changes.</summary>
    Refreshed,

    Rejected,
}

/// <summary>The outcome of checking a snapshot; <see cref="Reason"/> says why when rejected.</summary>
public sealed record SnapshotCheck(SnapshotVerdict Verdict, PolicySnapshot? Snapshot, string? Reason)
{
    public static SnapshotCheck Reject(string reason) => new(SnapshotVerdict.Rejected, null, reason);
}

/// <summary>
/// Decides whether a received snapshot may replace the current one. Checks, in order:
/// <list type="number">
/// <item>it is addressed to this sidecar;</item>
/// <item>it was signed by a trusted key and the signature covers version, time, TTL and hash;</item>
/// <item>the payload hashes to the signed hash and decodes, and names the same sidecar;</item>
/// <item>it has not expired;</item>
/// <item>it is newer than the current one (or the current one re-signed later).</item>
/// </list>
/// </summary>
public static class SnapshotVerifier
{
    /// <summary>Clock skew tolerated on <c>issuedAt</c> in the future.</summary>
    public static readonly TimeSpan MaxFutureSkew = TimeSpan.FromMinutes(5);

    public static SnapshotCheck Check(
        SignedSnapshot candidate,
        string expectedSidecarId,
        IReadOnlyList<SnapshotKey> trustedKeys,
        SignedSnapshot? current,
        DateTimeOffset now)
    {
        if (!string.Equals(candidate.SidecarId, expectedSidecarId, StringComparison.Ordinal))
            return SnapshotCheck.Reject($"snapshot is for sidecar '{candidate.SidecarId}', not '{expectedSidecarId}'");
        if (candidate.TtlSeconds <= 0)
            return SnapshotCheck.Reject("snapshot TTL must be positive");

        var key = trustedKeys.FirstOrDefault(k => string.Equals(k.KeyId, candidate.KeyId, StringComparison.Ordinal));
        if (key is null)
            return SnapshotCheck.Reject($"snapshot signed by unknown key '{candidate.KeyId}'");
        if (!VerifySignature(candidate, key))
            return SnapshotCheck.Reject("snapshot signature does not verify");
        if (!string.Equals(SnapshotCodec.Hash(candidate.Payload), candidate.ContentHash, StringComparison.Ordinal))
            return SnapshotCheck.Reject("snapshot payload does not match its signed content hash");

        PolicySnapshot snapshot;
        try
        {
            snapshot = SnapshotCodec.Decode(candidate.Payload);
        }
        catch (JsonException e)
        {
            return SnapshotCheck.Reject($"snapshot payload is not a valid snapshot: {e.Message}");
        }

        if (!string.Equals(snapshot.SidecarId, expectedSidecarId, StringComparison.Ordinal))
            return SnapshotCheck.Reject("snapshot payload names another sidecar");
        if (candidate.IssuedAt > now + MaxFutureSkew)
            return SnapshotCheck.Reject($"snapshot issued in the future ({candidate.IssuedAt:O})");
        if (candidate.ExpiresAt <= now)
            return SnapshotCheck.Reject($"snapshot version {candidate.Version} expired at {candidate.ExpiresAt:O}");

        if (current is null || candidate.Version > current.Version)
            return new SnapshotCheck(SnapshotVerdict.Accepted, snapshot, null);
        if (candidate.Version == current.Version
            && string.Equals(candidate.ContentHash, current.ContentHash, StringComparison.Ordinal)
            && candidate.IssuedAt > current.IssuedAt)
            return new SnapshotCheck(SnapshotVerdict.Refreshed, snapshot, null);
        return SnapshotCheck.Reject(
            $"snapshot version {candidate.Version} is not newer than the applied version {current.Version} (replay or rollback)");
    }

    private static bool VerifySignature(SignedSnapshot candidate, SnapshotKey key)
    {
        try
        {
            using var ecdsa = ECDsa.Create();
            ecdsa.ImportSubjectPublicKeyInfo(key.PublicKey, out _);
            var input = SnapshotCodec.SigningInput(
                candidate.SidecarId, candidate.Version, candidate.ContentHash, candidate.IssuedAt, candidate.TtlSeconds);
            return ecdsa.VerifyData(input, candidate.Signature, HashAlgorithmName.SHA256);
        }
        catch (Exception e) when (e is CryptographicException or PlatformNotSupportedException)
        {
            // A malformed or unsupported key can only mean "does not verify".
            return false;
        }
    }
}
