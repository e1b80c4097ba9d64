using System.Security.Claims;
using System.Security.Cryptography;
using Airlock.ControlPlane.Data;
using Airlock.ControlPlane.Identity.Saml;
using Airlock.ControlPlane.Policies;
using Microsoft.AspNetCore;
using Microsoft.AspNetCore.Authentication;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Airlock.ControlPlane.Identity;

/// <summary>
/// Airlock as the OIDC issuer of agent tokens, on OpenIddict: <c>client_credentials</c> at
/// <c>/connect/token</c> with a client secret or <c>private_key_jwt</c>; JWT access tokens signed
/// with the current token key (RS256 or ES256, persisted, rotated with overlap). Discovery and JWKS
/// are served by Airlock itself so that keys still to come and keys recently replaced are listed.
/// </summary>
internal static class AgentTokenIssuer
{
    public const string TokenPath = "/connect/token";

    public static IHostApplicationBuilder AddAgentTokenIssuer(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOpenIddict()
            .AddCore(o => o.UseEntityFrameworkCore().UseDbContext<AirlockDbContext>())
            .AddServer(o =>
            {
                o.SetTokenEndpointUris(TokenPath.TrimStart('/'));
                // A person lets an MCP client act as one of their agents (Delegation): authorization code, PKCE always.
                o.SetAuthorizationEndpointUris(Delegation.AuthorizePath.TrimStart('/'));
                o.AllowAuthorizationCodeFlow().RequireProofKeyForCodeExchange();
                // S256 only (RFC 9700): "plain" would put the verifier itself in the authorization URL.
                o.Configure(server => server.CodeChallengeMethods.Remove(CodeChallengeMethods.Plain));
                o.SetAuthorizationCodeLifetime(TimeSpan.FromMinutes(5));
                // Discovery and JWKS are Airlock's own (below): they list keys still to come.
                o.SetConfigurationEndpointUris(Array.Empty<Uri>());
                o.SetJsonWebKeySetEndpointUris(Array.Empty<Uri>());
                o.AllowClientCredentialsFlow();
                // RFC 7522: a SAML 2.0 bearer assertion from a trusted provider, bound to an agent.
                o.AllowCustomFlow(SamlBearerGrant.GrantType);
                // The SAML grant authenticates by its signed assertion; client_credentials still
                // requires client authentication (OpenIddict refuses it for anonymous callers).
                o.AcceptAnonymousClients();
                // RFC 8707 resources are sidecars' MCP front doors, which come and go with their configuration:
                // IssueAsync checks the one a token may name (an https URL) instead of a fixed list here.
                o.DisableResourceValidation();
                o.IgnoreResourcePermissions();
                o.DisableAccessTokenEncryption();
                // Nothing OpenIddict encrypts here outlives the process: no refresh tokens, and authorization codes
                // live 5 minutes (one started before a restart, or redeemed at another replica, is refused; sign in again).
                o.AddEphemeralEncryptionKey();
                // The one signing key is placed by TokenSigningSetup from the store.
                o.UseAspNetCore().EnableTokenEndpointPassthrough().EnableAuthorizationEndpointPassthrough().DisableTransportSecurityRequirement();
            });
        builder.Services.AddHostedService<TokenStorePruner>();
        builder.Services.AddSingleton<TokenSigningSetup>();
        builder.Services.AddSingleton<IConfigureOptions<OpenIddictServerOptions>>(sp => sp.GetRequiredService<TokenSigningSetup>());
        builder.Services.AddHostedService(sp => sp.GetRequiredService<TokenSigningSetup>());
        return builder;
    }

    public static WebApplication MapAgentTokenIssuer(this WebApplication app)
    {
        // RFC 8414's name for the same document: MCP clients look here first.
        foreach (var path in (string[])["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"])
        {
            app.MapGet(path, (IOptions<AgentTokenOptions> options) =>
            {
                var issuer = options.Value.Issuer!;
                var baseUrl = issuer.TrimEnd('/');
                var document = new Dictionary<string, object>
                {
                    ["issuer"] = issuer,
                    ["token_endpoint"] = baseUrl + TokenPath,
                    ["authorization_endpoint"] = baseUrl + Delegation.AuthorizePath,
                    ["jwks_uri"] = baseUrl + "/.well-known/jwks",
                    ["grant_types_supported"] = new[] { GrantTypes.ClientCredentials, SamlBearerGrant.GrantType, GrantTypes.AuthorizationCode },
                    ["code_challenge_methods_supported"] = new[] { "S256" },
                    ["token_endpoint_auth_methods_supported"] = new[] { "private_key_jwt", "client_secret_post", "client_secret_basic", "none" },
                    ["token_endpoint_auth_signing_alg_values_supported"] = new[] { "RS256", "ES256" },
                    ["id_token_signing_alg_values_supported"] = new[] { "RS256", "ES256" },
                    ["response_types_supported"] = new[] { "code" },
                    ["subject_types_supported"] = new[] { "public" },
                    // RFC 8707: a token for one resource (an MCP front door's URL) has that audience only.
                    ["resource_indicators_supported"] = true,
                };
                if (options.Value.DynamicClientRegistration)
                    document["registration_endpoint"] = baseUrl + Delegation.RegisterPath;
                return Results.Json(document);
            }).AllowAnonymous();
        }

        app.MapGet("/.well-known/jwks", async (SnapshotSigningKeys keys, CancellationToken ct) =>
            Results.Json(Jwks.Document(await keys.GetTokenJwksAsync(ct)))).AllowAnonymous();

        app.MapPost(TokenPath, IssueAsync).AllowAnonymous().DisableAntiforgery();
        return app;
    }

    /// <summary>
    /// OpenIddict has already authenticated the client (secret or assertion) when this runs; what is
    /// left is Airlock's own rule: the client is an enabled agent, and the token names it, its role
    /// and its owner.
    /// </summary>
    private static async Task<IResult> IssueAsync(HttpContext http, AirlockDbContext db, IOptions<AgentTokenOptions> options, TimeProvider time)
    {
        var request = http.GetOpenIddictServerRequest() ?? throw new InvalidOperationException("not an OpenID Connect request");
        if (request.IsAuthorizationCodeGrantType())
        {
            var (delegated, problem) = await Delegation.RedeemAsync(http, db, http.RequestAborted);
            if (delegated is null)
                return Refuse(Errors.InvalidGrant, problem!);
            delegated.SetAccessTokenLifetime(TimeSpan.FromMinutes(options.Value.TokenLifetimeMinutes));
            return Results.SignIn(new ClaimsPrincipal(delegated), authenticationScheme: OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
        }
        Agent? agent;
        if (request.IsClientCredentialsGrantType())
        {
            if (string.IsNullOrEmpty(request.ClientId))
                return Refuse(Errors.InvalidClient, "client_credentials needs client authentication");
            agent = await db.Agents.Include(a => a.Role).SingleOrDefaultAsync(a => a.Name == request.ClientId, http.RequestAborted);
            if (agent is null)
                return Refuse(Errors.InvalidClient, "this client is not an agent");
        }
        else if (request.GrantType == SamlBearerGrant.GrantType)
        {
            var (name, problem) = await SamlBearerGrant.ResolveAgentAsync(request.Assertion, db, options.Value, time.GetUtcNow(), http.RequestAborted);
            if (problem is not null)
                return Refuse(Errors.InvalidGrant, problem);
            agent = await db.Agents.Include(a => a.Role).SingleOrDefaultAsync(a => a.Name == name, http.RequestAborted);
            if (agent is null)
                return Refuse(Errors.InvalidGrant, $"the binding names agent '{name}', which does not exist");
        }
        else
        {
            return Refuse(Errors.UnsupportedGrantType, $"supported: client_credentials, authorization_code (MCP clients acting for a person), {SamlBearerGrant.GrantType}");
        }
        if (!agent.Enabled)
            return Refuse(Errors.InvalidClient, $"agent '{agent.Name}' is disabled");

        var identity = new ClaimsIdentity(TokenValidationParameters.DefaultAuthenticationType, Claims.Name, Claims.Role);
        identity.SetClaim(Claims.Subject, agent.Id.ToString());
        identity.SetClaim(Claims.Name, agent.Name);
        identity.SetClaim(Claims.Role, agent.Role!.Name);
        identity.SetClaim("owner", agent.Owner);
        // RFC 8707: a token asked for one resource (a sidecar's MCP front door) names that resource alone, so
        // it opens nothing else: not the PostgreSQL listeners, not another sidecar's front door.
        var resources = (request.Resources ?? []).OfType<string>().ToList();
        if (resources.Count > 1)
            return Refuse(Errors.InvalidTarget, "ask for one resource per token");
        if (resources.Count == 1 && (ResourceProblem(resources[0]) ?? GatewayAudienceProblem(resources[0], options.Value)) is { } resourceProblem)
            return Refuse(Errors.InvalidTarget, resourceProblem);
        identity.SetAudiences(resources.Count == 1 ? resources[0] : options.Value.Audience);
        identity.SetAccessTokenLifetime(TimeSpan.FromMinutes(options.Value.TokenLifetimeMinutes));
        identity.SetDestinations(_ => [Destinations.AccessToken]);

        agent.LastTokenIssuedAt = time.GetUtcNow();
        await db.SaveChangesAsync(http.RequestAborted);
        return Results.SignIn(new ClaimsPrincipal(identity), authenticationScheme: OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
    }

    /// <summary>Why a <c>resource</c> cannot be an audience: it must be an https URL (http only on loopback) without a fragment.</summary>
    internal static string? ResourceProblem(string resource) =>
        !Uri.TryCreate(resource, UriKind.Absolute, out var uri) ? $"resource '{resource}' is not an absolute URL"
        : uri.Fragment.Length > 0 ? "a resource has no fragment (RFC 8707)"
        : uri.Scheme != Uri.UriSchemeHttps && !(uri.Scheme == Uri.UriSchemeHttp && uri.IsLoopback) ? "a resource is an https URL"
        : resource.Length > 500 ? "the resource is longer than 500 characters"
        : null;

    /// <summary>The PostgreSQL listeners' own audience is not a resource to ask for (such a token would skip a front door's rules for it).</summary>
    internal static string? GatewayAudienceProblem(string resource, AgentTokenOptions options) =>
        string.Equals(resource, options.Audience, StringComparison.Ordinal) ? "the gateway's own audience is not a resource; name an MCP front door" : null;

    /// <summary>An OAuth error the way OpenIddict answers it (at the token endpoint a JSON body; at the authorization endpoint a redirect to the client).</summary>
    internal static IResult Refuse(string error, string description) =>
        Results.Forbid(
            new AuthenticationProperties(new Dictionary<string, string?>
            {
                [OpenIddictServerAspNetCoreConstants.Properties.Error] = error,
                [OpenIddictServerAspNetCoreConstants.Properties.ErrorDescription] = description,
            }),
            [OpenIddictServerAspNetCoreDefaults.AuthenticationScheme]);
}

/// <summary>
/// Gives OpenIddict the issuer and the one token key that signs now, read from the store; when a
/// rotated-in key activates, drops OpenIddict's cached options so the next token is signed with it.
/// </summary>
internal sealed class TokenSigningSetup(
    IServiceScopeFactory scopes,
    IOptions<AgentTokenOptions> tokenOptions,
    IOptionsMonitorCache<OpenIddictServerOptions> cache,
    ILogger<TokenSigningSetup> logger) : BackgroundService, IConfigureOptions<OpenIddictServerOptions>
{
    private volatile string? _configuredKeyId;

    public void Configure(OpenIddictServerOptions options)
    {
        options.Issuer = new Uri(tokenOptions.Value.Issuer!, UriKind.Absolute);
        options.AccessTokenLifetime = TimeSpan.FromMinutes(tokenOptions.Value.TokenLifetimeMinutes);
        var (keyId, algorithm, pkcs8) = CurrentKey();
        SecurityKey key;
        if (algorithm == "RS256")
        {
            var rsa = RSA.Create();
            rsa.ImportPkcs8PrivateKey(pkcs8, out _);
            key = new RsaSecurityKey(rsa) { KeyId = keyId };
        }
        else
        {
            var ecdsa = ECDsa.Create();
            ecdsa.ImportPkcs8PrivateKey(pkcs8, out _);
            key = new ECDsaSecurityKey(ecdsa) { KeyId = keyId };
        }
        options.SigningCredentials.Clear();
        options.SigningCredentials.Add(new SigningCredentials(key, algorithm == "RS256" ? SecurityAlgorithms.RsaSha256 : SecurityAlgorithms.EcdsaSha256));
        _configuredKeyId = keyId;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(15));
        while (await timer.WaitForNextTickAsync(stoppingToken))
            Recheck();
    }

    /// <summary>Called after a rotation and periodically: a different current key invalidates OpenIddict's options.</summary>
    public void Recheck()
    {
        var current = CurrentKey().KeyId;
        if (_configuredKeyId is not null && current != _configuredKeyId)
        {
            logger.LogInformation("Agent tokens are now signed with key {KeyId}", current);
            cache.TryRemove(Options.DefaultName);
        }
    }

    private (string KeyId, string Algorithm, byte[] Pkcs8) CurrentKey()
    {
        using var scope = scopes.CreateScope();
        // Options are built synchronously; this runs once per key change, not per request.
        return scope.ServiceProvider.GetRequiredService<SnapshotSigningKeys>().GetTokenSigningKeyAsync(CancellationToken.None).GetAwaiter().GetResult();
    }
}
