using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Airlock.Sidecar.Policy.Identity;

/// <summary>An agent token's verdict: who it is (agent and role), or why not.</summary>
/// <param name="Person">For a delegation (an AI client acting for a person, issued by Airlock only): the person's console user name.</param>
/// <param name="PersonReadOnly">The person may lend read access only: the agent's session runs read-only.</param>
public sealed record TokenCheck(AgentPolicy? Agent, string? Reason, DateTimeOffset ExpiresAt, string? Person = null, bool PersonReadOnly = false)
{
    public bool IsValid => Agent is not null;

    public static TokenCheck Reject(string reason) => new(null, reason, default);
}

/// <summary>
/// Validates an agent's JWT offline against the identity part of a snapshot. Each step can reject
/// with a precise reason, in this order:
/// <list type="number">
/// <item>size, shape and base64url of the compact serialisation;</item>
/// <item>header: <c>alg</c> is RS256 or ES256 (never <c>none</c>, never HMAC); no key-source
/// headers (<c>jku</c>, <c>x5u</c>, <c>jwk</c>, <c>x5c</c>) and no <c>crit</c>: keys come only from policy;</item>
/// <item>issuer: Airlock itself or a trusted issuer; <c>kid</c> names one of that issuer's keys, of the algorithm's key type;</item>
/// <item>signature;</item>
/// <item><c>exp</c> (required) and <c>nbf</c> with at most 60 s skew; <c>aud</c>;</item>
/// <item>the agent: by <c>sub</c> for Airlock's tokens, by exactly one binding for external ones; enabled.</item>
/// </list>
/// </summary>
public static class TokenValidator
{
    public const int MaxTokenLength = 8192;
    public static readonly TimeSpan MaxSkew = TimeSpan.FromSeconds(60);

    /// <param name="resource">
    /// The protected resource the token must be for (RFC 8707: the MCP front door's URL): then its <c>aud</c> must name it,
    /// whichever the issuer, and Airlock's own audience is not enough. Null: the gateway's audiences (Airlock's, or the
    /// trusted issuer's), so a token minted for one resource opens nothing else.
    /// </param>
    public static TokenCheck Validate(string token, IdentityPolicy identity, IReadOnlyList<AgentPolicy> agents, DateTimeOffset now, string? resource = null)
    {
        if (token.Length > MaxTokenLength)
            return TokenCheck.Reject($"token is larger than {MaxTokenLength} bytes");
        var parts = token.Split('.');
        if (parts.Length != 3 || parts[0].Length == 0 || parts[1].Length == 0)
            return TokenCheck.Reject(parts.Length == 5 ? "encrypted tokens (JWE) are not accepted" : "token is not a signed JWT (header.payload.signature)");

        JsonElement header, claims;
        byte[] signature;
        try
        {
            header = ParseJson(parts[0]);
            claims = ParseJson(parts[1]);
            signature = Base64Url.DecodeFromChars(parts[2]);
        }
        catch (Exception e) when (e is FormatException or JsonException)
        {
            return TokenCheck.Reject("token is not valid base64url JSON");
        }
        if (header.ValueKind != JsonValueKind.Object || claims.ValueKind != JsonValueKind.Object)
            return TokenCheck.Reject("token header and payload must be JSON objects");

        var alg = String(header, "alg");
        if (alg is not ("RS256" or "ES256"))
            return TokenCheck.Reject(alg is null ? "token header has no alg" : $"algorithm '{alg}' is not allowed (RS256 or ES256 only)");
        foreach (var forbidden in (string[])["jku", "x5u", "jwk", "x5c", "crit"])
            if (header.TryGetProperty(forbidden, out _))
                return TokenCheck.Reject($"token header '{forbidden}' is not accepted: keys come only from policy");

        var issuer = String(claims, "iss");
        if (issuer is null)
            return TokenCheck.Reject("token has no iss");
        var own = string.Equals(issuer, identity.Issuer, StringComparison.Ordinal);
        var trusted = own ? null : identity.TrustedIssuers.FirstOrDefault(t => string.Equals(t.Issuer, issuer, StringComparison.Ordinal));
        if (!own && trusted is null)
            return TokenCheck.Reject($"issuer '{issuer}' is not trusted");
        var keys = own ? identity.Keys : trusted!.Keys;

        var kid = String(header, "kid");
        if (kid is null)
            return TokenCheck.Reject("token header has no kid");
        var key = keys.FirstOrDefault(k => string.Equals(k.Kid, kid, StringComparison.Ordinal));
        if (key is null)
            return TokenCheck.Reject($"key '{kid}' is not a current key of issuer '{issuer}'");
        var signingInput = Encoding.ASCII.GetBytes(string.Concat(parts[0], ".", parts[1]));
        switch (VerifySignature(alg, key, signingInput, signature))
        {
            case null:
                break;
            case var problem:
                return TokenCheck.Reject(problem);
        }

        if (!TryTime(claims, "exp", out var exp))
            return TokenCheck.Reject("token has no exp");
        if (exp + MaxSkew <= now)
            return TokenCheck.Reject($"token expired at {exp:O}");
        if (TryTime(claims, "nbf", out var nbf) && nbf - MaxSkew > now)
            return TokenCheck.Reject($"token is not valid before {nbf:O}");
        // A trusted issuer's token opens a front door only if the operator listed that resource among the issuer's audiences.
        if (resource is not null && trusted is not null && !trusted.Audiences.Contains(resource, StringComparer.Ordinal))
            return TokenCheck.Reject($"issuer '{trusted.Name}' is not trusted for '{resource}' (add it to the issuer's audiences)");
        IReadOnlyList<string> audiences = resource is not null ? [resource] : own ? [identity.Audience] : trusted!.Audiences;
        if (!Audiences(claims).Any(a => audiences.Contains(a, StringComparer.Ordinal)))
            return TokenCheck.Reject($"token audience is not {string.Join(" or ", audiences.Select(a => $"'{a}'"))}");

        AgentPolicy? agent;
        if (own)
        {
            var sub = String(claims, "sub");
            agent = agents.FirstOrDefault(a => string.Equals(a.Id, sub, StringComparison.Ordinal));
            if (agent is null)
                return TokenCheck.Reject(String(claims, "name") is { Length: > 0 and <= 100 } name
                    ? $"agent '{name}' (id {sub}) is unknown here (deleted, or its role does not reach this sidecar)"
                    : $"agent '{sub}' is unknown here (deleted, or its role does not reach this sidecar)");
        }
        else
        {
            var matches = trusted!.Bindings.Where(b => b.Conditions.All(c => Holds(c, claims))).ToList();
            if (matches.Count == 0)
                return TokenCheck.Reject($"token of issuer '{trusted.Name}' matches no binding");
            if (matches.Count > 1)
                return TokenCheck.Reject($"token of issuer '{trusted.Name}' matches {matches.Count} bindings ({string.Join(", ", matches.Select(m => m.Name))}); it must match exactly one");
            agent = agents.FirstOrDefault(a => string.Equals(a.Name, matches[0].Agent, StringComparison.Ordinal));
            if (agent is null)
                return TokenCheck.Reject($"binding '{matches[0].Name}' names agent '{matches[0].Agent}', which is unknown here");
        }
        if (!agent.Enabled)
            return TokenCheck.Reject($"agent '{agent.Name}' is disabled");
        // A delegation names the person it acts for; only Airlock's own tokens can (a trusted issuer's claim means nothing here).
        if (own && claims.TryGetProperty("person", out var personClaim))
        {
            var person = personClaim.ValueKind == JsonValueKind.String ? personClaim.GetString()! : "";
            if (person.Length is 0 or > 100 || person.Any(char.IsControl))
                return TokenCheck.Reject("token names an unreadable person");
            var access = String(claims, "person_access");
            if (access is not ("read" or "full"))
                return TokenCheck.Reject("token names a person without their access (person_access read or full)");
            return new TokenCheck(agent, null, exp, person, access == "read");
        }
        return new TokenCheck(agent, null, exp);
    }

    /// <summary>Whether one claim condition holds. A missing or non-string claim never matches.</summary>
    public static bool Holds(ClaimCondition condition, JsonElement claims)
    {
        if (!claims.TryGetProperty(condition.Claim, out var value))
            return false;
        var text = value.ValueKind switch
        {
            JsonValueKind.String => value.GetString(),
            JsonValueKind.True => "true",
            JsonValueKind.False => "false",
            JsonValueKind.Number => value.GetRawText(),
            _ => null,
        };
        if (text is null)
            return false;
        return condition.Match switch
        {
            ClaimMatches.Exact => condition.Values.Count == 1 && string.Equals(condition.Values[0], text, StringComparison.Ordinal),
            ClaimMatches.OneOf => condition.Values.Contains(text, StringComparer.Ordinal),
            ClaimMatches.Glob => condition.Values.Count == 1 && Glob(condition.Values[0], text),
            _ => false,
        };
    }

    /// <summary><c>*</c> matches any run of characters (also '/'), <c>?</c> exactly one; everything else literally.</summary>
    public static bool Glob(string pattern, string text)
    {
        int p = 0, t = 0, star = -1, mark = 0;
        while (t < text.Length)
        {
            if (p < pattern.Length && (pattern[p] == '?' || pattern[p] == text[t]) && pattern[p] != '*')
            {
                p++;
                t++;
            }
            else if (p < pattern.Length && pattern[p] == '*')
            {
                star = p++;
                mark = t;
            }
            else if (star >= 0)
            {
                p = star + 1;
                t = ++mark;
            }
            else
            {
                return false;
            }
        }
        while (p < pattern.Length && pattern[p] == '*')
            p++;
        return p == pattern.Length;
    }

    private static string? VerifySignature(string alg, PublicJwk key, byte[] input, byte[] signature)
    {
        try
        {
            if (alg == "RS256")
            {
                if (key.Kty != "RSA" || key.N is null || key.E is null)
                    return $"key '{key.Kid}' is not an RSA key (alg RS256)";
                using var rsa = RSA.Create(new RSAParameters { Modulus = Base64Url.DecodeFromChars(key.N), Exponent = Base64Url.DecodeFromChars(key.E) });
                if (rsa.KeySize < 2048)
                    return $"key '{key.Kid}' is shorter than 2048 bits";
                return rsa.VerifyData(input, signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1) ? null : "token signature does not verify";
            }
            if (key.Kty != "EC" || key.Crv != "P-256" || key.X is null || key.Y is null)
                return $"key '{key.Kid}' is not a P-256 EC key (alg ES256)";
            using var ecdsa = ECDsa.Create(new ECParameters
            {
                Curve = ECCurve.NamedCurves.nistP256,
                Q = new ECPoint { X = Base64Url.DecodeFromChars(key.X), Y = Base64Url.DecodeFromChars(key.Y) },
            });
            return signature.Length == 64 && ecdsa.VerifyData(input, signature, HashAlgorithmName.SHA256) ? null : "token signature does not verify";
        }
        catch (Exception e) when (e is CryptographicException or FormatException or PlatformNotSupportedException or ArgumentException)
        {
            return $"key '{key.Kid}' is unusable: {e.Message}";
        }
    }

    private static JsonElement ParseJson(string segment)
    {
        var bytes = Base64Url.DecodeFromChars(segment);
        using var doc = JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = 16 });
        return doc.RootElement.Clone();
    }

    private static string? String(JsonElement obj, string name) =>
        obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static bool TryTime(JsonElement obj, string name, out DateTimeOffset time)
    {
        time = default;
        if (!obj.TryGetProperty(name, out var v) || v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out var seconds)
            || seconds is < 0 or > 253402300799)
            return false;
        time = DateTimeOffset.FromUnixTimeSeconds(seconds);
        return true;
    }

    private static IEnumerable<string> Audiences(JsonElement claims)
    {
        if (!claims.TryGetProperty("aud", out var aud))
            yield break;
        if (aud.ValueKind == JsonValueKind.String)
            yield return aud.GetString()!;
        else if (aud.ValueKind == JsonValueKind.Array)
            foreach (var a in aud.EnumerateArray())
                if (a.ValueKind == JsonValueKind.String)
                    yield return a.GetString()!;
    }
}
