using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Airlock.Testing;

/// <summary>
/// An external OIDC issuer on loopback — discovery and JWKS over real HTTP — standing in for
/// GitHub Actions, a Kubernetes API server or GitLab. It mints tokens with its own RSA key.
/// </summary>
public sealed class FakeOidcIssuer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly RSA _key = RSA.Create(2048);

    private FakeOidcIssuer(WebApplication app, string url)
    {
        _app = app;
        Issuer = url;
    }

    public string Issuer { get; }
    public string KeyId { get; } = "fake-" + Guid.NewGuid().ToString("N")[..8];

    /// <summary>When false, discovery answers 503 (an unreachable issuer).</summary>
    public bool Available { get; set; } = true;

    public static async Task<FakeOidcIssuer> StartAsync()
    {
        var port = FreePort.Next();
        var url = $"http://127.0.0.1:{port}";
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { ContentRootPath = Directory.CreateTempSubdirectory("airlock-fake-oidc-").FullName });
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls(url);
        var app = builder.Build();
        var issuer = new FakeOidcIssuer(app, url);
        app.MapGet("/.well-known/openid-configuration", () => issuer.Available
            ? Results.Json(new { issuer = url, jwks_uri = $"{url}/jwks", id_token_signing_alg_values_supported = new[] { "RS256" } })
            : Results.StatusCode(503));
        app.MapGet("/jwks", () => Results.Text(issuer.JwksJson, "application/json"));
        await app.StartAsync();
        return issuer;
    }

    public string JwksJson
    {
        get
        {
            var p = _key.ExportParameters(false);
            return JsonSerializer.Serialize(new { keys = new[] { new { kty = "RSA", use = "sig", alg = "RS256", kid = KeyId, n = Base64Url.EncodeToString(p.Modulus), e = Base64Url.EncodeToString(p.Exponent) } } });
        }
    }

    /// <summary>A signed RS256 token with the given claims plus iss, iat and exp (10 minutes).</summary>
    public string Mint(IReadOnlyDictionary<string, object> claims, TimeSpan? lifetime = null)
    {
        var now = DateTimeOffset.UtcNow;
        var payload = new Dictionary<string, object>(claims)
        {
            ["iss"] = Issuer,
            ["iat"] = now.ToUnixTimeSeconds(),
            ["exp"] = now.Add(lifetime ?? TimeSpan.FromMinutes(10)).ToUnixTimeSeconds(),
        };
        var input = $"{Encode(new { alg = "RS256", typ = "JWT", kid = KeyId })}.{Encode(payload)}";
        var signature = _key.SignData(Encoding.ASCII.GetBytes(input), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        return $"{input}.{Base64Url.EncodeToString(signature)}";
    }

    private static string Encode(object value) => Base64Url.EncodeToString(JsonSerializer.SerializeToUtf8Bytes(value));

    public async ValueTask DisposeAsync()
    {
        await _app.DisposeAsync();
        _key.Dispose();
    }
}
