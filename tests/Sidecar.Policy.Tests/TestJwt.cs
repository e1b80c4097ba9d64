using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Airlock.Sidecar.Policy.Identity;

namespace Airlock.Sidecar.Policy.Tests;

/// <summary>Mints JWTs for tests, including the malformed and malicious ones a real issuer never would.</summary>
internal static class TestJwt
{
    public static string Encode(object value) => Base64Url.EncodeToString(JsonSerializer.SerializeToUtf8Bytes(value));

    public static string Sign(RSA key, object header, object payload)
    {
        var input = $"{Encode(header)}.{Encode(payload)}";
        return $"{input}.{Base64Url.EncodeToString(key.SignData(Encoding.ASCII.GetBytes(input), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1))}";
    }

    public static string Sign(ECDsa key, object header, object payload)
    {
        var input = $"{Encode(header)}.{Encode(payload)}";
        return $"{input}.{Base64Url.EncodeToString(key.SignData(Encoding.ASCII.GetBytes(input), HashAlgorithmName.SHA256))}";
    }

    public static string SignHmac(byte[] secret, object header, object payload)
    {
        var input = $"{Encode(header)}.{Encode(payload)}";
        return $"{input}.{Base64Url.EncodeToString(HMACSHA256.HashData(secret, Encoding.ASCII.GetBytes(input)))}";
    }

    public static PublicJwk Jwk(string kid, RSA key)
    {
        var p = key.ExportParameters(false);
        return new PublicJwk(kid, "RSA", "RS256", Base64Url.EncodeToString(p.Modulus), Base64Url.EncodeToString(p.Exponent), null, null, null);
    }

    public static PublicJwk Jwk(string kid, ECDsa key)
    {
        var p = key.ExportParameters(false);
        return new PublicJwk(kid, "EC", "ES256", null, null, "P-256", Base64Url.EncodeToString(p.Q.X), Base64Url.EncodeToString(p.Q.Y));
    }
}
