using System.Security.Cryptography;

namespace Airlock.ControlPlane.Identity;

/// <summary>
/// High-entropy bearer secrets (API keys, sidecar credentials, enrollment tokens). They carry 256
/// random bits, so a plain SHA-256 at rest is enough: there is nothing to brute-force.
/// </summary>
public static class Secrets
{
    public const string ApiKeyPrefix = "ak_";
    public const string SidecarCredentialPrefix = "sc_";
    public const string EnrollmentTokenPrefix = "et_";

    public static string New(string prefix) => prefix + Base64Url(RandomNumberGenerator.GetBytes(32));

    public static string Hash(string secret) =>
        Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(secret)));

    /// <summary>A short stable fingerprint of a public key.</summary>
    public static string KeyFingerprint(byte[] publicKey) => Convert.ToHexStringLower(SHA256.HashData(publicKey))[..32];

    /// <summary>A readable random password for the bootstrap admin.</summary>
    public static string NewPassword() => Base64Url(RandomNumberGenerator.GetBytes(18));

    private static string Base64Url(byte[] bytes) =>
        Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
