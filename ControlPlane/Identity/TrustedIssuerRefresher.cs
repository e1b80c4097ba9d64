using System.Net.Http.Json;
using System.Text.Json;
using Airlock.ControlPlane.Data;
using Airlock.ControlPlane.Policies;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Airlock.ControlPlane.Identity;

/// <summary>
/// Keeps the JWKS of trusted issuers without a static JWKS fresh: OIDC discovery
/// (<c>{issuer}/.well-known/openid-configuration</c> → <c>jwks_uri</c>) at start, after every policy
/// change and every <c>IssuerRefreshMinutes</c>. The last good JWKS stays in use when a fetch fails;
/// the failure is recorded as the issuer's status. New keys reach sidecars with the next snapshot.
/// </summary>
internal sealed class TrustedIssuerRefresher(
    IServiceScopeFactory scopes,
    IHttpClientFactory http,
    PolicyChangeNotifier notifier,
    IOptions<AgentTokenOptions> options,
    TimeProvider time,
    ILogger<TrustedIssuerRefresher> logger) : BackgroundService
{
    public const string HttpClientName = "trusted-issuers";
    private const int MaxDocumentBytes = 256 * 1024;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            var generation = notifier.Generation;
            try
            {
                await RefreshAllAsync(stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogError(e, "Trusted issuer refresh failed");
            }
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
            wait.CancelAfter(TimeSpan.FromMinutes(options.Value.IssuerRefreshMinutes));
            try
            {
                await notifier.WaitForChangeAfterAsync(generation, wait.Token);
            }
            catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
            {
                // periodic refresh
            }
        }
    }

    /// <summary>Fetches every discovery-based issuer that is due (never fetched, or older than the refresh period).</summary>
    public async Task RefreshAllAsync(CancellationToken ct)
    {
        using var scope = scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<AirlockDbContext>();
        var now = time.GetUtcNow();
        var due = await db.TrustedIssuers.Where(t => t.StaticJwks == null && t.Kind == TrustedIssuerKinds.Oidc).ToListAsync(ct);
        var changed = false;
        foreach (var issuer in due.Where(t => t.FetchedAt is null || now - t.FetchedAt >= TimeSpan.FromMinutes(options.Value.IssuerRefreshMinutes) || t.LastError is not null))
        {
            issuer.LastAttemptAt = now;
            try
            {
                var jwks = await FetchJwksAsync(issuer.Issuer, ct);
                if (Jwks.Parse(jwks).Count == 0)
                    throw new InvalidDataException("the JWKS has no usable signing key (RSA or EC P-256 with a kid)");
                changed |= issuer.FetchedJwks != jwks;
                issuer.FetchedJwks = jwks;
                issuer.FetchedAt = now;
                issuer.LastError = null;
                logger.LogInformation("Fetched JWKS of trusted issuer {Issuer}", issuer.Name);
            }
            catch (Exception e) when (e is HttpRequestException or JsonException or InvalidDataException or TaskCanceledException or UriFormatException)
            {
                issuer.LastError = e.Message;
                logger.LogWarning("Cannot fetch the keys of trusted issuer {Issuer} ({Url}): {Error}; keeping the last good keys", issuer.Name, issuer.Issuer, e.Message);
            }
        }
        await db.SaveChangesAsync(ct);
        if (changed)
            notifier.Publish();
    }

    private async Task<string> FetchJwksAsync(string issuer, CancellationToken ct)
    {
        var client = http.CreateClient(HttpClientName);
        var discoveryUrl = new Uri(issuer.TrimEnd('/') + "/.well-known/openid-configuration");
        using var discovery = JsonDocument.Parse(await ReadLimitedAsync(client, discoveryUrl, ct));
        var root = discovery.RootElement;
        if (!root.TryGetProperty("issuer", out var iss) || iss.GetString() != issuer)
            throw new InvalidDataException($"discovery names issuer '{(root.TryGetProperty("issuer", out var i) ? i.GetString() : null)}', not '{issuer}'");
        if (!root.TryGetProperty("jwks_uri", out var jwksUri) || !Uri.TryCreate(jwksUri.GetString(), UriKind.Absolute, out var jwks))
            throw new InvalidDataException("discovery has no jwks_uri");
        if (jwks.Scheme != Uri.UriSchemeHttps && !jwks.IsLoopback)
            throw new InvalidDataException($"jwks_uri '{jwks}' is not https");
        return await ReadLimitedAsync(client, jwks, ct);
    }

    private static async Task<string> ReadLimitedAsync(HttpClient client, Uri url, CancellationToken ct)
    {
        using var response = await client.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, ct);
        if (!response.IsSuccessStatusCode)
            throw new HttpRequestException($"GET {url} answered {(int)response.StatusCode}");
        if (response.Content.Headers.ContentLength > MaxDocumentBytes)
            throw new InvalidDataException($"GET {url}: document larger than {MaxDocumentBytes} bytes");
        var text = await response.Content.ReadAsStringAsync(ct);
        return text.Length > MaxDocumentBytes ? throw new InvalidDataException($"GET {url}: document larger than {MaxDocumentBytes} bytes") : text;
    }
}
