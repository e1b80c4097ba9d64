using System.Security.Cryptography;
using System.Text.Json;
using Airlock.Contracts.Hubs;

namespace Airlock.Contracts.Recording;

/// <summary>
/// A self-verifying export of one recorded session: its events, the sidecar's signed chain heads
/// and the sidecar's public key. <see cref="Verify"/> needs nothing else — but who may vouch for
/// the key is outside the bundle: compare <see cref="SidecarKeyFingerprint"/> with the sidecar's
/// registered key (<c>GET /api/v1/sidecars/{name}</c>) before trusting a verdict.
/// </summary>
public sealed record SessionBundle(
    string Format,
    Guid Session,
    string Sidecar,
    byte[] SidecarPublicKey,
    DateTimeOffset ExportedAt,
    IReadOnlyList<RecordingEvent> Events,
    IReadOnlyList<ChainHeadSignature> Heads)
{
    public const string CurrentFormat = "airlock-session-bundle/v1";

    public string SidecarKeyFingerprint => Convert.ToHexStringLower(SHA256.HashData(SidecarPublicKey))[..32];

    public ChainVerdict Verify()
    {
        if (Format != CurrentFormat)
            return new ChainVerdict(Events.Count, 0, $"unknown bundle format '{Format}'", 0);
        if (Events.Any(e => e.Session != Session) || Heads.Any(h => h.Session != Session))
            return new ChainVerdict(Events.Count, 0, "the bundle mixes events of several sessions", 0);
        return ChainVerifier.Verify(Events, Heads, SidecarPublicKey);
    }

    public static SessionBundle? Read(Stream json) => JsonSerializer.Deserialize<SessionBundle>(json, RecordingJson.Options);
}
