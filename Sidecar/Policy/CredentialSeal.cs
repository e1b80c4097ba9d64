using System.Security.Cryptography;
using System.Text;

namespace Airlock.Sidecar.Policy;

/// <summary>
/// Seals an upstream credential to one sidecar so that it can travel in a snapshot and rest in the
/// sidecar's cache without being readable by anyone else: ECDH P-256 with an ephemeral key,
/// HKDF-SHA-256, AES-256-GCM, the sidecar id as associated data.
/// </summary>
/// <remarks>Sealed form: base64(version byte 1 ‖ ephemeral SPKI length (u16 BE) ‖ SPKI ‖ nonce(12) ‖ tag(16) ‖ ciphertext).</remarks>
public static class CredentialSeal
{
    private const byte FormatVersion = 1;
    private static readonly byte[] _info = "airlock-credential-seal-v1"u8.ToArray();

    public static string Seal(string secret, string sidecarId, byte[] sidecarSealingPublicKey)
    {
        using var recipient = ECDiffieHellman.Create();
        recipient.ImportSubjectPublicKeyInfo(sidecarSealingPublicKey, out _);
        using var ephemeral = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
        var key = DeriveKey(ephemeral, recipient.PublicKey);
        var ephemeralSpki = ephemeral.ExportSubjectPublicKeyInfo();

        var plaintext = Encoding.UTF8.GetBytes(secret);
        var nonce = RandomNumberGenerator.GetBytes(12);
        var tag = new byte[16];
        var ciphertext = new byte[plaintext.Length];
        using (var aes = new AesGcm(key, 16))
            aes.Encrypt(nonce, plaintext, ciphertext, tag, Encoding.UTF8.GetBytes(sidecarId));

        var output = new byte[1 + 2 + ephemeralSpki.Length + nonce.Length + tag.Length + ciphertext.Length];
        var span = output.AsSpan();
        span[0] = FormatVersion;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(span[1..], (ushort)ephemeralSpki.Length);
        ephemeralSpki.CopyTo(span[3..]);
        var offset = 3 + ephemeralSpki.Length;
        nonce.CopyTo(span[offset..]);
        tag.CopyTo(span[(offset + 12)..]);
        ciphertext.CopyTo(span[(offset + 28)..]);
        return Convert.ToBase64String(output);
    }

    /// <summary>Opens a sealed credential; returns null when it is malformed or not sealed to this key.</summary>
    public static string? Open(string sealedValue, string sidecarId, ECDiffieHellman sidecarSealingKey)
    {
        try
        {
            var data = Convert.FromBase64String(sealedValue).AsSpan();
            if (data.Length < 3 || data[0] != FormatVersion)
                return null;
            int spkiLength = System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(data[1..]);
            var offset = 3 + spkiLength;
            if (data.Length < offset + 28)
                return null;
            using var ephemeral = ECDiffieHellman.Create();
            ephemeral.ImportSubjectPublicKeyInfo(data.Slice(3, spkiLength), out _);
            var key = DeriveKey(sidecarSealingKey, ephemeral.PublicKey);
            var nonce = data.Slice(offset, 12);
            var tag = data.Slice(offset + 12, 16);
            var ciphertext = data[(offset + 28)..];
            var plaintext = new byte[ciphertext.Length];
            using var aes = new AesGcm(key, 16);
            aes.Decrypt(nonce, ciphertext, tag, plaintext, Encoding.UTF8.GetBytes(sidecarId));
            return Encoding.UTF8.GetString(plaintext);
        }
        catch (Exception e) when (e is FormatException or CryptographicException or ArgumentException or PlatformNotSupportedException)
        {
            return null;
        }
    }

    private static byte[] DeriveKey(ECDiffieHellman own, ECDiffieHellmanPublicKey peer)
    {
        var shared = own.DeriveRawSecretAgreement(peer);
        return HKDF.DeriveKey(HashAlgorithmName.SHA256, shared, 32, salt: [], info: _info);
    }
}
