namespace Airlock.Contracts;

/// <summary>Body of <c>POST /api/v1/enroll</c>: a sidecar trades a one-time token for a credential.</summary>
/// <param name="Token">The one-time enrollment token.</param>
/// <param name="SigningPublicKey">SPKI (DER) of the sidecar's ECDSA P-256 key that signs recording chain heads.</param>
/// <param name="SealingPublicKey">SPKI (DER) of the sidecar's ECDH P-256 key that upstream credentials are sealed to.</param>
public sealed record EnrollRequest(string Token, byte[] SigningPublicKey, byte[] SealingPublicKey, string SoftwareVersion);

/// <param name="Credential">The sidecar's bearer credential; shown once, stored hashed by the control plane.</param>
/// <param name="GrpcEndpoint">Where PolicySync is served (HTTP/2).</param>
/// <param name="SnapshotKeys">The control plane's snapshot signing public keys the sidecar trusts from now on.</param>
public sealed record EnrollResponse(
    string SidecarId,
    string SidecarName,
    string Credential,
    string GrpcEndpoint,
    IReadOnlyList<SnapshotKeyDto> SnapshotKeys);

public sealed record SnapshotKeyDto(string KeyId, byte[] PublicKey);
