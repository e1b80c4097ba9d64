using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Airlock.Sidecar.Policy;

/// <summary>
/// A snapshot as it travels and rests: the canonical payload plus what the control plane signed
/// about it. The transport (gRPC) maps its generated type to this record at the edge.
/// </summary>
public sealed record SignedSnapshot(
    string SidecarId,
    long Version,
    string ContentHash,
    DateTimeOffset IssuedAt,
    int TtlSeconds,
    byte[] Payload,
    string KeyId,
    byte[] Signature)
{
    public DateTimeOffset ExpiresAt => IssuedAt.AddSeconds(TtlSeconds);
}

/// <summary>Canonical encoding, hashing and signing of snapshots, shared by both sides.</summary>
public static class SnapshotCodec
{
    private static readonly JsonSerializerOptions _json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        WriteIndented = false,
    };

    /// <summary>Options for the on-disk and JSON forms of <see cref="SignedSnapshot"/> itself.</summary>
    public static JsonSerializerOptions EnvelopeJson { get; } = new(_json) { WriteIndented = true };

    public static byte[] Encode(PolicySnapshot snapshot) => JsonSerializer.SerializeToUtf8Bytes(snapshot, _json);

    public static PolicySnapshot Decode(ReadOnlySpan<byte> payload) =>
        JsonSerializer.Deserialize<PolicySnapshot>(payload, _json)
        ?? throw new JsonException("snapshot payload is null");

    public static string Hash(ReadOnlySpan<byte> payload) => Convert.ToHexStringLower(SHA256.HashData(payload));

    /// <summary>
    /// The bytes that are signed: every field a replay or a splice could change. The payload enters
    /// through its hash, which <see cref="SnapshotVerifier"/> recomputes.
    /// </summary>
    public static byte[] SigningInput(string sidecarId, long version, string contentHash, DateTimeOffset issuedAt, int ttlSeconds) =>
        Encoding.UTF8.GetBytes(
            $"airlock-snapshot-v1\n{sidecarId}\n{version}\n{contentHash}\n{issuedAt.ToUnixTimeMilliseconds()}\n{ttlSeconds}");

    /// <summary>Signs with an ECDSA P-256 key (IEEE P1363 signature format).</summary>
    public static SignedSnapshot Sign(
        PolicySnapshot snapshot, long version, DateTimeOffset issuedAt, int ttlSeconds, string keyId, ECDsa key)
    {
        var payload = Encode(snapshot);
        var hash = Hash(payload);
        // Millisecond precision is what the signature covers; keep the record equal to it.
        var issued = DateTimeOffset.FromUnixTimeMilliseconds(issuedAt.ToUnixTimeMilliseconds());
        var signature = key.SignData(SigningInput(snapshot.SidecarId, version, hash, issued, ttlSeconds), HashAlgorithmName.SHA256);
        return new SignedSnapshot(snapshot.SidecarId, version, hash, issued, ttlSeconds, payload, keyId, signature);
    }
}
