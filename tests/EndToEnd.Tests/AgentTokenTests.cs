using System.Buffers.Text;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Airlock.Testing;

namespace Airlock.EndToEnd.Tests;

/// <summary>Airlock's own issuer over real HTTP: client_credentials with a secret and with private_key_jwt, validated at a real sidecar.</summary>
public sealed class AgentTokenTests : IAsyncLifetime
{
    private ControlPlaneProcess _cp = default!;
    private SidecarProcess _sidecar = default!;

    private const string Policy = """
        targets:
        - {name: orders, sidecar: edge-1, listenPort: 16432, upstream: {host: 127.0.0.1, credential: "env:PG"}}
        roles:
        - {name: deployer, grants: [{target: orders}]}
        agents:
        - {name: ci-deploy, owner: admin, role: deployer, enabled: ENABLED}
        - {name: key-bot, owner: admin, role: deployer}
        """;

    public async Task InitializeAsync()
    {
        _cp = await ControlPlaneProcess.StartAsync();
        _sidecar = SidecarProcess.Start(_cp.Url, await _cp.CreateSidecarAsync("edge-1"));
        await _sidecar.WaitForVersionAsync(1);
        Assert.Equal(HttpStatusCode.OK, (await _cp.PutPolicyAsync(Policy.Replace("ENABLED", "true", StringComparison.Ordinal))).StatusCode);
        await _sidecar.WaitForVersionAsync(2);
    }

    public async Task DisposeAsync()
    {
        await _sidecar.DisposeAsync();
        await _cp.DisposeAsync();
    }

    private async Task<(HttpStatusCode Status, JsonElement Body)> TokenAsync(Dictionary<string, string> form)
    {
        using var http = new HttpClient();
        using var response = await http.PostAsync(_cp.Url + "/connect/token", new FormUrlEncodedContent(form));
        return (response.StatusCode, JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone());
    }

    private async Task<(HttpStatusCode Status, JsonElement Body)> CheckAtSidecarAsync(string token)
    {
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, _sidecar.Url + "/v1/identity/check");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await http.SendAsync(request);
        return (response.StatusCode, JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone());
    }

    private static JsonElement Claims(string jwt) =>
        JsonDocument.Parse(Base64Url.DecodeFromChars(jwt.Split('.')[1])).RootElement.Clone();

    [Fact]
    public async Task A_client_secret_buys_a_short_lived_token_that_the_sidecar_accepts_until_the_agent_is_disabled()
    {
        var issued = JsonDocument.Parse(await (await _cp.Api.PostAsync("/api/v1/agents/ci-deploy/secret", null)).Content.ReadAsStringAsync()).RootElement;
        var secret = issued.GetProperty("clientSecret").GetString()!;
        Assert.EndsWith("/connect/token", issued.GetProperty("tokenEndpoint").GetString(), StringComparison.Ordinal);

        var (status, body) = await TokenAsync(new() { ["grant_type"] = "client_credentials", ["client_id"] = "ci-deploy", ["client_secret"] = secret });
        Assert.Equal(HttpStatusCode.OK, status);
        var token = body.GetProperty("access_token").GetString()!;
        Assert.InRange(body.GetProperty("expires_in").GetInt32(), 14 * 60, 15 * 60);
        var claims = Claims(token);
        Assert.Equal(("ci-deploy", "deployer", "admin", "airlock"), (claims.GetProperty("name").GetString(), claims.GetProperty("role").GetString(), claims.GetProperty("owner").GetString(), claims.GetProperty("aud").GetString()));
        var discovery = JsonDocument.Parse(await new HttpClient().GetStringAsync(_cp.Url + "/.well-known/openid-configuration")).RootElement;
        Assert.Equal(discovery.GetProperty("issuer").GetString(), claims.GetProperty("iss").GetString());

        var (ok, who) = await CheckAtSidecarAsync(token);
        Assert.Equal(HttpStatusCode.OK, ok);
        Assert.Equal(("ci-deploy", "deployer"), (who.GetProperty("agent").GetString(), who.GetProperty("role").GetString()));

        var (wrong, error) = await TokenAsync(new() { ["grant_type"] = "client_credentials", ["client_id"] = "ci-deploy", ["client_secret"] = "cs_wrong" });
        Assert.Equal(HttpStatusCode.Unauthorized, wrong);
        Assert.Equal("invalid_client", error.GetProperty("error").GetString());

        var view = JsonDocument.Parse(await _cp.Api.GetStringAsync("/api/v1/agents/ci-deploy/credentials")).RootElement;
        Assert.True(view.GetProperty("hasSecret").GetBoolean());
        Assert.NotEqual(JsonValueKind.Null, view.GetProperty("lastTokenIssuedAt").ValueKind);
        Assert.DoesNotContain(secret, await _cp.Api.GetStringAsync("/api/v1/audit?take=1000"), StringComparison.Ordinal);
        // The sidecar reports the accepted use with its next heartbeat.
        await PolicySyncTests.Eventually(async () =>
            JsonDocument.Parse(await _cp.Api.GetStringAsync("/api/v1/agents/ci-deploy/credentials")).RootElement.GetProperty("lastUsedAt").ValueKind == JsonValueKind.String);

        // Disabled: no new token, and the one already issued is refused from the next snapshot on.
        Assert.Equal(HttpStatusCode.OK, (await _cp.PutPolicyAsync(Policy.Replace("ENABLED", "false", StringComparison.Ordinal))).StatusCode);
        var (refused, why) = await TokenAsync(new() { ["grant_type"] = "client_credentials", ["client_id"] = "ci-deploy", ["client_secret"] = secret });
        Assert.NotEqual(HttpStatusCode.OK, refused);
        Assert.Contains("disabled", why.GetProperty("error_description").GetString(), StringComparison.Ordinal);
        await PolicySyncTests.Eventually(async () => (await CheckAtSidecarAsync(token)).Status == HttpStatusCode.Unauthorized, seconds: 5);
    }

    [Fact]
    public async Task Private_key_jwt_needs_no_shared_secret()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var q = key.ExportParameters(false).Q;
        var jwks = JsonSerializer.Serialize(new { keys = new[] { new { kty = "EC", crv = "P-256", kid = "bot-key-1", use = "sig", alg = "ES256", x = Base64Url.EncodeToString(q.X), y = Base64Url.EncodeToString(q.Y) } } });
        var put = await _cp.Api.PutAsync("/api/v1/agents/key-bot/keys", new StringContent(jwks, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, put.StatusCode);

        string Assertion(string audience)
        {
            var now = DateTimeOffset.UtcNow;
            var header = Base64Url.EncodeToString(JsonSerializer.SerializeToUtf8Bytes(new { alg = "ES256", typ = "client-authentication+jwt", kid = "bot-key-1" }));
            var payload = Base64Url.EncodeToString(JsonSerializer.SerializeToUtf8Bytes(new
            {
                iss = "key-bot", sub = "key-bot", aud = audience, jti = Guid.NewGuid().ToString(),
                iat = now.ToUnixTimeSeconds(), exp = now.AddMinutes(2).ToUnixTimeSeconds(),
            }));
            var signature = key.SignData(Encoding.ASCII.GetBytes($"{header}.{payload}"), HashAlgorithmName.SHA256);
            return $"{header}.{payload}.{Base64Url.EncodeToString(signature)}";
        }

        // As draft-ietf-oauth-rfc7523bis (and OpenIddict 7) require: the audience is the issuer.
        var discovery = JsonDocument.Parse(await new HttpClient().GetStringAsync(_cp.Url + "/.well-known/openid-configuration")).RootElement;
        var tokenEndpoint = discovery.GetProperty("issuer").GetString()!;
        var (status, body) = await TokenAsync(new()
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = "key-bot",
            ["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ["client_assertion"] = Assertion(tokenEndpoint),
        });
        Assert.True(status == HttpStatusCode.OK, body.ToString());
        var (ok, who) = await CheckAtSidecarAsync(body.GetProperty("access_token").GetString()!);
        Assert.Equal(HttpStatusCode.OK, ok);
        Assert.Equal("key-bot", who.GetProperty("agent").GetString());

        // An assertion signed by another key is refused.
        using var other = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var forged = Assertion(tokenEndpoint);
        var parts = forged.Split('.');
        forged = $"{parts[0]}.{parts[1]}.{Base64Url.EncodeToString(other.SignData(Encoding.ASCII.GetBytes($"{parts[0]}.{parts[1]}"), HashAlgorithmName.SHA256))}";
        var (refused, _) = await TokenAsync(new()
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = "key-bot",
            ["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ["client_assertion"] = forged,
        });
        Assert.NotEqual(HttpStatusCode.OK, refused);

        // A private key is never accepted as a registration.
        var withPrivate = JsonSerializer.Serialize(new { keys = new[] { new { kty = "EC", crv = "P-256", kid = "k", x = Base64Url.EncodeToString(q.X), y = Base64Url.EncodeToString(q.Y), d = Base64Url.EncodeToString(key.ExportParameters(true).D) } } });
        Assert.Equal(HttpStatusCode.BadRequest, (await _cp.Api.PutAsync("/api/v1/agents/key-bot/keys", new StringContent(withPrivate, Encoding.UTF8, "application/json"))).StatusCode);
    }

    [Fact]
    public async Task After_an_immediate_key_rotation_tokens_signed_before_still_validate_until_they_expire()
    {
        var secret = JsonDocument.Parse(await (await _cp.Api.PostAsync("/api/v1/agents/ci-deploy/secret", null)).Content.ReadAsStringAsync()).RootElement.GetProperty("clientSecret").GetString()!;
        var form = new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["client_id"] = "ci-deploy", ["client_secret"] = secret };
        var before = (await TokenAsync(form)).Body.GetProperty("access_token").GetString()!;

        var rotated = await _cp.Api.PostAsync("/api/v1/signing-keys/rotate?purpose=token&algorithm=ES256&overlapMinutes=0", null);
        Assert.Equal(HttpStatusCode.OK, rotated.StatusCode);
        var newKid = JsonDocument.Parse(await rotated.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString();

        // Within the signing setup's recheck period, new tokens carry the new key.
        string after = "";
        await PolicySyncTests.Eventually(async () =>
        {
            after = (await TokenAsync(form)).Body.GetProperty("access_token").GetString()!;
            return JsonDocument.Parse(Base64Url.DecodeFromChars(after.Split('.')[0])).RootElement.GetProperty("kid").GetString() == newKid;
        }, seconds: 30);
        Assert.Equal("ES256", JsonDocument.Parse(Base64Url.DecodeFromChars(after.Split('.')[0])).RootElement.GetProperty("alg").GetString());

        await PolicySyncTests.Eventually(async () => (await CheckAtSidecarAsync(after)).Status == HttpStatusCode.OK, seconds: 10);
        Assert.Equal(HttpStatusCode.OK, (await CheckAtSidecarAsync(before)).Status);
    }
}
