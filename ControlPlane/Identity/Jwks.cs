using System.Text.Json;
using Airlock.Sidecar.Policy.Identity;

namespace Airlock.ControlPlane.Identity;

/// <summary>Reads a JWKS document as issuers publish it, keeping only keys a sidecar can use.</summary>
public static class Jwks
{
    /// <summary>RSA and EC P-256 signing keys with a kid; everything else (encryption keys, other curves) is dropped.</summary>
    public static IReadOnlyList<PublicJwk> Parse(string? json)
    {
        if (string.IsNullOrEmpty(json))
            return [];
        try
        {
            using var doc = JsonDocument.Parse(json);
            if (!doc.RootElement.TryGetProperty("keys", out var keys) || keys.ValueKind != JsonValueKind.Array)
                return [];
            var result = new List<PublicJwk>();
            foreach (var k in keys.EnumerateArray())
            {
                string? S(string name) => k.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
                var (kid, kty, use) = (S("kid"), S("kty"), S("use"));
                if (kid is null || use is "enc")
                    continue;
                if (kty == "RSA" && S("n") is { } n && S("e") is { } e)
                    result.Add(new PublicJwk(kid, "RSA", S("alg"), n, e, null, null, null));
                else if (kty == "EC" && S("crv") == "P-256" && S("x") is { } x && S("y") is { } y)
                    result.Add(new PublicJwk(kid, "EC", S("alg"), null, null, "P-256", x, y));
            }
            return result.OrderBy(k => k.Kid, StringComparer.Ordinal).ToList();
        }
        catch (JsonException)
        {
            return [];
        }
    }

    /// <summary>The JWKS document for Airlock's own keys.</summary>
    public static object Document(IEnumerable<PublicJwk> keys) => new
    {
        keys = keys.Select(k => k.Kty == "RSA"
            ? (object)new { kty = k.Kty, use = "sig", kid = k.Kid, alg = k.Alg, n = k.N, e = k.E }
            : new { kty = k.Kty, use = "sig", kid = k.Kid, alg = k.Alg, crv = k.Crv, x = k.X, y = k.Y }),
    };
}
