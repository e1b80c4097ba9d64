using System.Security.Claims;
using System.Text.Encodings.Web;
using Airlock.ControlPlane.Data;
using Microsoft.AspNetCore.Authentication;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Airlock.ControlPlane.Identity;

/// <summary>
/// Authenticates machine callers by a bearer secret: admin API keys (<c>ak_…</c>) on the REST API,
/// sidecar credentials (<c>sc_…</c>) on PolicySync and the SidecarHub. Only hashes are looked up.
/// </summary>
internal sealed class BearerSecretHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    AirlockDbContext db,
    TimeProvider time) : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "Bearer";
    public const string SidecarIdClaim = "airlock:sidecar_id";
    public const string KindClaim = "airlock:principal_kind";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var secret = ReadSecret(Request);
        if (secret is null)
            return AuthenticateResult.NoResult();

        var hash = Secrets.Hash(secret);
        if (secret.StartsWith(Secrets.ApiKeyPrefix, StringComparison.Ordinal))
        {
            var key = await db.ApiKeys.SingleOrDefaultAsync(k => k.KeyHash == hash, Context.RequestAborted);
            if (key is null || key.RevokedAt is not null)
                return AuthenticateResult.Fail("unknown or revoked API key");
            var now = time.GetUtcNow();
            // Coarse last-use tracking: one write per key per minute at most.
            if (key.LastUsedAt is null || now - key.LastUsedAt > TimeSpan.FromMinutes(1))
            {
                key.LastUsedAt = now;
                await db.SaveChangesAsync(Context.RequestAborted);
            }
            return Success(new Claim(ClaimTypes.Name, $"apikey:{key.Name}"), new Claim(ClaimTypes.Role, key.Role), new Claim(KindClaim, "apikey"));
        }
        if (secret.StartsWith(Secrets.SidecarCredentialPrefix, StringComparison.Ordinal))
        {
            var sidecar = await db.Sidecars.AsNoTracking().SingleOrDefaultAsync(s => s.CredentialHash == hash, Context.RequestAborted);
            if (sidecar is null)
                return AuthenticateResult.Fail("unknown sidecar credential");
            if (sidecar.RevokedAt is not null)
                return AuthenticateResult.Fail($"sidecar '{sidecar.Name}' was revoked");
            return Success(
                new Claim(ClaimTypes.Name, $"sidecar:{sidecar.Name}"),
                new Claim(SidecarIdClaim, sidecar.Id.ToString()),
                new Claim(KindClaim, "sidecar"));
        }
        return AuthenticateResult.Fail("unrecognised bearer credential");
    }

    private AuthenticateResult Success(params Claim[] claims) =>
        AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(new ClaimsIdentity(claims, SchemeName)), SchemeName));

    /// <summary>
    /// From <c>Authorization: Bearer</c>, or <c>access_token</c> in the query on the hub path only
    /// (browsers' WebSocket API cannot set headers; SignalR's .NET client uses the same path).
    /// </summary>
    public static string? ReadSecret(HttpRequest request)
    {
        string? header = request.Headers.Authorization;
        if (header is not null && header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            return header["Bearer ".Length..].Trim();
        if (request.Path.StartsWithSegments(Contracts.Hubs.SidecarHubPaths.Hub)
            && request.Query.TryGetValue("access_token", out var token) && token.Count == 1)
            return token[0];
        return null;
    }
}
