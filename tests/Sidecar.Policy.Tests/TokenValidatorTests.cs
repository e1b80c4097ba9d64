using System.Security.Cryptography;
using System.Text.Json;
using Airlock.Sidecar.Policy.Identity;

namespace Airlock.Sidecar.Policy.Tests;

/// <summary>The attack table: every row a way to get a token accepted that must not be.</summary>
public sealed class TokenValidatorTests
{
    private const string Issuer = "https://airlock.example";
    private const string Audience = "airlock";
    private const string GitHub = "https://token.actions.githubusercontent.com";
    private static readonly DateTimeOffset _now = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);

    // Generated once for the class: RSA key generation is slow and the keys are never mutated.
    private static readonly RSA _sharedRsa = RSA.Create(2048);
    private static readonly ECDsa _sharedEc = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private static readonly RSA _sharedGithub = RSA.Create(2048);
    private static readonly RSA _sharedAttacker = RSA.Create(2048);
    private readonly RSA _rsa = _sharedRsa;
    private readonly ECDsa _ec = _sharedEc;
    private readonly RSA _github = _sharedGithub;
    private readonly RSA _attacker = _sharedAttacker;
    private readonly IdentityPolicy _identity;

    private static readonly AgentPolicy[] _agents =
    [
        new("agent-1", "ci-deploy", "deployer", true),
        new("agent-2", "nightly-backup", "backup", true),
        new("agent-3", "retired-bot", "reader", false),
    ];

    public TokenValidatorTests()
    {
        _identity = new IdentityPolicy(Issuer, Audience, [TestJwt.Jwk("rsa-1", _rsa), TestJwt.Jwk("ec-1", _ec)],
        [
            new TrustedIssuerPolicy("github", GitHub, ["https://github.com/acme"], [TestJwt.Jwk("gh-1", _github)],
            [
                new BindingPolicy("api-deploy", "ci-deploy",
                [
                    new ClaimCondition("repository", ClaimMatches.Exact, ["acme/api"]),
                    new ClaimCondition("ref", ClaimMatches.OneOf, ["refs/heads/main", "refs/heads/release"]),
                ]),
                new BindingPolicy("any-backup", "nightly-backup", [new ClaimCondition("repository", ClaimMatches.Glob, ["acme/backup-*"])]),
                new BindingPolicy("also-backup", "nightly-backup", [new ClaimCondition("workflow", ClaimMatches.Exact, ["backup"])]),
                new BindingPolicy("retired", "retired-bot", [new ClaimCondition("repository", ClaimMatches.Exact, ["acme/old"])]),
            ]),
        ]);
    }

    private static Dictionary<string, object> Claims(string sub = "agent-1", string iss = Issuer, object? aud = null, long? exp = null, long? nbf = null) => new()
    {
        ["iss"] = iss,
        ["sub"] = sub,
        ["aud"] = aud ?? Audience,
        ["exp"] = exp ?? _now.AddMinutes(10).ToUnixTimeSeconds(),
        ["nbf"] = nbf ?? _now.AddMinutes(-1).ToUnixTimeSeconds(),
        ["iat"] = _now.AddMinutes(-1).ToUnixTimeSeconds(),
    };

    private static Dictionary<string, object> GitHubClaims(string repository, string @ref = "refs/heads/main", string workflow = "deploy") => new()
    {
        ["iss"] = GitHub,
        ["sub"] = $"repo:{repository}:ref:{@ref}",
        ["aud"] = "https://github.com/acme",
        ["exp"] = _now.AddMinutes(5).ToUnixTimeSeconds(),
        ["repository"] = repository,
        ["ref"] = @ref,
        ["workflow"] = workflow,
    };

    private TokenCheck Check(string token) => TokenValidator.Validate(token, _identity, _agents, _now);

    private string Rs(object payload, string kid = "rsa-1", RSA? key = null, Dictionary<string, object>? extraHeader = null)
    {
        var header = new Dictionary<string, object> { ["alg"] = "RS256", ["typ"] = "JWT", ["kid"] = kid };
        foreach (var (k, v) in extraHeader ?? [])
            header[k] = v;
        return TestJwt.Sign(key ?? _rsa, header, payload);
    }

    private const string Front = "https://edge-1.example:8443/mcp";

    /// <summary>
    /// RFC 8707 at the MCP front door: only a token whose audience is this resource, from Airlock or a trusted
    /// issuer; the gateway's own audience, another front door's, or a list that merely mentions a prefix do not.
    /// </summary>
    [Theory]
    [InlineData("own, this resource", true, Front, true)]
    [InlineData("own, this resource among others", true, "[both]", true)]
    [InlineData("own, the gateway's audience", true, "airlock", false)]
    [InlineData("own, another front door", true, "https://edge-2.example:8443/mcp", false)]
    [InlineData("own, this resource with a trailing slash", true, Front + "/", false)]
    [InlineData("own, this resource's prefix", true, "https://edge-1.example:8443", false)]
    [InlineData("trusted, this resource", false, Front, true)]
    [InlineData("trusted, its configured audience", false, "https://github.com/acme", false)]
    public void A_front_door_accepts_only_tokens_for_its_resource(string why, bool own, string audience, bool accepted)
    {
        object aud = audience == "[both]" ? new[] { "airlock", Front } : audience;
        var token = own ? Rs(Claims(aud: aud)) : Rs(new Dictionary<string, object>(GitHubClaims("acme/api")) { ["aud"] = aud }, "gh-1", _github);
        // The operator lists the front door among the trusted issuer's audiences: that is what lets its tokens in there.
        var identity = _identity with { TrustedIssuers = [_identity.TrustedIssuers[0] with { Audiences = ["https://github.com/acme", Front] }] };
        var check = TokenValidator.Validate(token, identity, _agents, _now, resource: Front);
        Assert.True(check.IsValid == accepted, $"{why}: {check.Reason}");
        if (!accepted)
            Assert.Contains($"token audience is not '{Front}'", check.Reason, StringComparison.Ordinal);
        if (!own && audience == Front)
            Assert.Contains("not trusted for", TokenValidator.Validate(token, _identity, _agents, _now, resource: Front).Reason, StringComparison.Ordinal);
        // And the gateway (no resource) refuses a token minted for the front door alone.
        if (audience == Front)
            Assert.False(TokenValidator.Validate(token, _identity, _agents, _now).IsValid);
    }

    [Fact]
    public void An_rs256_token_of_airlock_names_the_agent_and_its_role()
    {
        var check = Check(Rs(Claims()));
        Assert.True(check.IsValid, check.Reason);
        Assert.Equal(("ci-deploy", "deployer"), (check.Agent!.Name, check.Agent.Role));
        Assert.Equal(_now.AddMinutes(10), check.ExpiresAt);
    }

    [Fact]
    public void An_es256_token_of_airlock_is_accepted() =>
        Assert.True(Check(TestJwt.Sign(_ec, new { alg = "ES256", kid = "ec-1" }, Claims())).IsValid);

    [Fact]
    public void A_github_actions_token_is_bound_to_its_agent()
    {
        var check = Check(Rs(GitHubClaims("acme/api"), "gh-1", _github));
        Assert.True(check.IsValid, check.Reason);
        Assert.Equal("ci-deploy", check.Agent!.Name);
        Assert.Equal("nightly-backup", Check(Rs(GitHubClaims("acme/backup-db", workflow: "other"), "gh-1", _github)).Agent!.Name);
    }

    [Fact]
    public void Clock_skew_within_a_minute_is_tolerated()
    {
        Assert.True(Check(Rs(Claims(exp: _now.AddSeconds(-30).ToUnixTimeSeconds()))).IsValid);
        Assert.True(Check(Rs(Claims(nbf: _now.AddSeconds(30).ToUnixTimeSeconds()))).IsValid);
    }

    public static TheoryData<string, Func<TokenValidatorTests, string>, string> Attacks => new()
    {
        { "alg none", t => $"{TestJwt.Encode(new { alg = "none", kid = "rsa-1" })}.{TestJwt.Encode(Claims())}.", "algorithm 'none' is not allowed" },
        { "alg none with a signature", t => $"{TestJwt.Encode(new { alg = "none", kid = "rsa-1" })}.{TestJwt.Encode(Claims())}.AAAA", "algorithm 'none' is not allowed" },
        { "HS256 with the RSA public key as secret", t => TestJwt.SignHmac(t._rsa.ExportSubjectPublicKeyInfo(), new { alg = "HS256", kid = "rsa-1" }, Claims()), "algorithm 'HS256' is not allowed" },
        { "HS256 with the PEM public key as secret", t => TestJwt.SignHmac(System.Text.Encoding.ASCII.GetBytes(t._rsa.ExportSubjectPublicKeyInfoPem()), new { alg = "HS256", kid = "rsa-1" }, Claims()), "algorithm 'HS256' is not allowed" },
        { "expired", t => t.Rs(Claims(exp: _now.AddMinutes(-5).ToUnixTimeSeconds())), "token expired at" },
        { "not yet valid", t => t.Rs(Claims(nbf: _now.AddMinutes(5).ToUnixTimeSeconds())), "token is not valid before" },
        { "no exp", t => t.Rs(Claims().Where(kv => kv.Key != "exp").ToDictionary()), "token has no exp" },
        { "wrong aud", t => t.Rs(Claims(aud: "someone-else")), "token audience is not 'airlock'" },
        { "aud array without ours", t => t.Rs(Claims(aud: new[] { "a", "b" })), "token audience is not" },
        { "wrong iss", t => t.Rs(Claims(iss: "https://evil.example")), "issuer 'https://evil.example' is not trusted" },
        { "unknown kid", t => t.Rs(Claims(), kid: "rsa-9"), "key 'rsa-9' is not a current key" },
        { "no kid", t => TestJwt.Sign(t._rsa, new { alg = "RS256" }, Claims()), "token header has no kid" },
        { "signed by a foreign key under our kid", t => t.Rs(Claims(), key: t._attacker), "token signature does not verify" },
        { "payload tampered after signing", t => Tamper(t.Rs(Claims()), c => c["sub"] = JsonSerializer.SerializeToElement("agent-2")), "token signature does not verify" },
        { "jku header", t => t.Rs(Claims(), extraHeader: new() { ["jku"] = "https://evil.example/jwks" }), "'jku' is not accepted" },
        { "x5u header", t => t.Rs(Claims(), extraHeader: new() { ["x5u"] = "https://evil.example/cert" }), "'x5u' is not accepted" },
        { "embedded jwk header", t => t.Rs(Claims(), key: t._attacker, extraHeader: new() { ["jwk"] = TestJwt.Jwk("rsa-1", t._attacker) }), "'jwk' is not accepted" },
        { "x5c header", t => t.Rs(Claims(), extraHeader: new() { ["x5c"] = new[] { "MIIB" } }), "'x5c' is not accepted" },
        { "crit header", t => t.Rs(Claims(), extraHeader: new() { ["crit"] = new[] { "exp" } }), "'crit' is not accepted" },
        { "RS256 header with an EC kid", t => TestJwt.Sign(t._rsa, new { alg = "RS256", kid = "ec-1" }, Claims()), "is not an RSA key" },
        { "ES256 header with an RSA kid", t => TestJwt.Sign(t._ec, new { alg = "ES256", kid = "rsa-1" }, Claims()), "is not a P-256 EC key" },
        { "trusted issuer, no binding", t => t.Rs(GitHubClaims("acme/web"), "gh-1", t._github), "matches no binding" },
        { "trusted issuer, ref outside one_of", t => t.Rs(GitHubClaims("acme/api", "refs/heads/feature"), "gh-1", t._github), "matches no binding" },
        { "trusted issuer, two bindings", t => t.Rs(GitHubClaims("acme/backup-db", workflow: "backup"), "gh-1", t._github), "matches 2 bindings (any-backup, also-backup)" },
        { "trusted issuer token signed with airlock's key", t => t.Rs(GitHubClaims("acme/api"), "rsa-1"), "key 'rsa-1' is not a current key of issuer" },
        { "trusted issuer, wrong aud", t => t.Rs(With(GitHubClaims("acme/api"), "aud", "airlock"), "gh-1", t._github), "token audience is not 'https://github.com/acme'" },
        { "oversized", t => t.Rs(With(Claims(), "pad", new string('x', 9000))), "larger than 8192 bytes" },
        { "disabled agent", t => t.Rs(Claims(sub: "agent-3")), "agent 'retired-bot' is disabled" },
        { "disabled agent through a binding", t => t.Rs(GitHubClaims("acme/old"), "gh-1", t._github), "agent 'retired-bot' is disabled" },
        { "deleted agent", t => t.Rs(Claims(sub: "agent-404")), "agent 'agent-404' is unknown here" },
        { "deleted agent, named in its token", t => t.Rs(With(Claims(sub: "agent-404"), "name", "old-bot")), "agent 'old-bot' (id agent-404) is unknown here" },
        { "JWE", t => "a.b.c.d.e", "encrypted tokens (JWE) are not accepted" },
        { "two parts", t => "a.b", "not a signed JWT" },
        { "garbage", t => "%%%.%%%.%%%", "not valid base64url JSON" },
        { "payload not an object", t => $"{TestJwt.Encode(new { alg = "RS256", kid = "rsa-1" })}.{TestJwt.Encode(new[] { 1 })}.AAAA", "must be JSON objects" },
    };

    [Theory]
    [MemberData(nameof(Attacks))]
    public void An_attack_is_rejected_with_its_reason(string _, Func<TokenValidatorTests, string> mint, string reason)
    {
        var check = Check(mint(this));
        Assert.False(check.IsValid);
        Assert.Null(check.Agent);
        Assert.Contains(reason, check.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_key_removed_from_the_jwks_after_rotation_no_longer_validates()
    {
        var token = Rs(Claims());
        Assert.True(Check(token).IsValid);
        var rotated = _identity with { Keys = [TestJwt.Jwk("ec-1", _ec)] };
        var check = TokenValidator.Validate(token, rotated, _agents, _now);
        Assert.Contains("key 'rsa-1' is not a current key", check.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_truncated_prefix_of_a_valid_token_is_rejected_without_throwing()
    {
        var token = Rs(Claims());
        for (var length = 0; length < token.Length; length++)
            Assert.False(Check(token[..length]).IsValid);
    }

    [Theory]
    [InlineData("acme/*", "acme/api", true)]
    [InlineData("acme/*", "acme/api/sub", true)]
    [InlineData("acme/*", "acmex/api", false)]
    [InlineData("acme/ap?", "acme/api", true)]
    [InlineData("acme/ap?", "acme/apis", false)]
    [InlineData("*", "", true)]
    [InlineData("", "", true)]
    [InlineData("", "a", false)]
    [InlineData("a*b*c", "aXXbYYc", true)]
    [InlineData("a*b*c", "aXXbYY", false)]
    [InlineData("refs/heads/release-*", "refs/heads/release-1.2", true)]
    [InlineData("refs/heads/release-*", "refs/tags/release-1.2", false)]
    public void Glob_matches_as_documented(string pattern, string text, bool expected) =>
        Assert.Equal(expected, TokenValidator.Glob(pattern, text));

    [Fact]
    public void A_claim_that_is_missing_or_not_a_scalar_never_matches()
    {
        var claims = JsonDocument.Parse("""{"a": ["x"], "b": {"x": 1}, "c": true, "d": 5}""").RootElement;
        Assert.False(TokenValidator.Holds(new ClaimCondition("missing", ClaimMatches.Exact, ["x"]), claims));
        Assert.False(TokenValidator.Holds(new ClaimCondition("a", ClaimMatches.Exact, ["x"]), claims));
        Assert.False(TokenValidator.Holds(new ClaimCondition("b", ClaimMatches.Glob, ["*"]), claims));
        Assert.True(TokenValidator.Holds(new ClaimCondition("c", ClaimMatches.Exact, ["true"]), claims));
        Assert.True(TokenValidator.Holds(new ClaimCondition("d", ClaimMatches.OneOf, ["4", "5"]), claims));
    }

    private static Dictionary<string, object> With(Dictionary<string, object> claims, string name, object value)
    {
        claims[name] = value;
        return claims;
    }

    private static string Tamper(string token, Action<Dictionary<string, JsonElement>> edit)
    {
        var parts = token.Split('.');
        var claims = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(System.Buffers.Text.Base64Url.DecodeFromChars(parts[1]))!;
        edit(claims);
        return $"{parts[0]}.{TestJwt.Encode(claims)}.{parts[2]}";
    }
}
