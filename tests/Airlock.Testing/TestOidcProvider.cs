using System.Net;
using System.Security.Claims;
using System.Text;
using Microsoft.AspNetCore;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenIddict.Abstractions;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Airlock.Testing;

/// <summary>A person the test provider knows: name, password, and the groups it vouches for.</summary>
public sealed record ProviderUser(string UserName, string Password, IReadOnlyList<string> Groups)
{
    public string Subject { get; init; } = "sub-" + UserName;
}

/// <summary>
/// A real OpenID Connect provider on loopback for single sign-on tests: OpenIddict's server (the
/// same package Airlock's own issuer is built on) with authorization code + PKCE, discovery, JWKS
/// and a token endpoint, and a plain sign-in form as its login page. The tests choose who it knows
/// and what groups it says they have.
/// </summary>
public sealed class TestOidcProvider : IAsyncDisposable
{
    public const string ClientId = "airlock-console";
    public const string ClientSecret = "test-provider-client-secret";

    private readonly WebApplication _app;
    private readonly Dictionary<string, ProviderUser> _users = new(StringComparer.Ordinal);

    private TestOidcProvider(WebApplication app, string url)
    {
        _app = app;
        Url = url;
    }

    public string Url { get; }

    /// <summary>Adds or replaces a person (a new password or other groups take effect at their next sign-in).</summary>
    public void SetUser(ProviderUser user)
    {
        lock (_users)
            _users[user.UserName] = user;
    }

    private ProviderUser? Find(string? name, string? password)
    {
        lock (_users)
            return name is not null && _users.TryGetValue(name, out var user) && user.Password == password ? user : null;
    }

    private sealed class ProviderDb(DbContextOptions<ProviderDb> options) : DbContext(options);

    public static async Task<TestOidcProvider> StartAsync()
    {
        var url = $"http://127.0.0.1:{FreePort.Next()}";
        var dataDirectory = Directory.CreateTempSubdirectory("airlock-test-idp-").FullName;
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { ContentRootPath = dataDirectory });
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls(url);
        builder.Services.AddDbContext<ProviderDb>(o => o.UseSqlite($"Data Source={Path.Combine(dataDirectory, "idp.db")}").UseOpenIddict());
        builder.Services.AddOpenIddict()
            .AddCore(o => o.UseEntityFrameworkCore().UseDbContext<ProviderDb>())
            .AddServer(o =>
            {
                o.SetIssuer(new Uri(url + "/"));
                o.SetAuthorizationEndpointUris("connect/authorize").SetTokenEndpointUris("connect/token");
                o.AllowAuthorizationCodeFlow().RequireProofKeyForCodeExchange();
                o.RegisterScopes(Scopes.OpenId, Scopes.Profile);
                o.AddEphemeralEncryptionKey().AddEphemeralSigningKey();
                o.DisableAccessTokenEncryption();
                o.UseAspNetCore().EnableAuthorizationEndpointPassthrough().DisableTransportSecurityRequirement();
            });
        var app = builder.Build();
        var provider = new TestOidcProvider(app, url);
        using (var scope = app.Services.CreateScope())
            await scope.ServiceProvider.GetRequiredService<ProviderDb>().Database.EnsureCreatedAsync();

        // The login page is the authorization endpoint itself: shown until the form posts a known person.
        app.MapMethods("/connect/authorize", ["GET", "POST"], async (HttpContext http) =>
        {
            var request = http.GetOpenIddictServerRequest()!;
            var form = http.Request.HasFormContentType ? await http.Request.ReadFormAsync() : null;
            var user = provider.Find(form?["login_user"], form?["login_password"]);
            if (user is null)
                return Results.Content(LoginPage(request, form is not null), "text/html; charset=utf-8");
            var identity = new ClaimsIdentity(OpenIddictServerAspNetCoreDefaults.AuthenticationScheme, Claims.Name, Claims.Role);
            identity.SetClaim(Claims.Subject, user.Subject).SetClaim(Claims.Name, user.UserName).SetClaim(Claims.PreferredUsername, user.UserName);
            identity.SetClaims("groups", [.. user.Groups]);
            identity.SetScopes(request.GetScopes());
            identity.SetDestinations(_ => [Destinations.IdentityToken, Destinations.AccessToken]);
            return Results.SignIn(new ClaimsPrincipal(identity), properties: null, OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
        }).DisableAntiforgery();
        await app.StartAsync();
        return provider;
    }

    /// <summary>Registers Airlock's console as a confidential client whose sign-in comes back to <paramref name="controlPlaneUrl"/>.</summary>
    public async Task RegisterConsoleAsync(string controlPlaneUrl)
    {
        using var scope = _app.Services.CreateScope();
        var applications = scope.ServiceProvider.GetRequiredService<IOpenIddictApplicationManager>();
        if (await applications.FindByClientIdAsync(ClientId) is { } existing)
            await applications.DeleteAsync(existing);
        await applications.CreateAsync(new OpenIddictApplicationDescriptor
        {
            ClientId = ClientId,
            ClientSecret = ClientSecret,
            ClientType = ClientTypes.Confidential,
            RedirectUris = { new Uri(controlPlaneUrl.TrimEnd('/') + "/signin-oidc") },
            Permissions =
            {
                Permissions.Endpoints.Authorization, Permissions.Endpoints.Token,
                Permissions.GrantTypes.AuthorizationCode, Permissions.ResponseTypes.Code,
                Permissions.Prefixes.Scope + Scopes.OpenId, Permissions.Scopes.Profile,
            },
            Requirements = { Requirements.Features.ProofKeyForCodeExchange },
        });
    }

    /// <summary>The options a control plane needs to use this provider, as command-line arguments.</summary>
    public IEnumerable<string> ControlPlaneArgs(string adminGroup = "airlock-admins", string approverGroup = "airlock-approvers", string auditorGroup = "airlock-auditors") =>
    [
        $"--Airlock:Console:Oidc:Authority={Url}/",
        $"--Airlock:Console:Oidc:ClientId={ClientId}",
        $"--Airlock:Console:Oidc:ClientSecret={ClientSecret}",
        "--Airlock:Console:Oidc:DisplayName=Test IdP",
        "--Airlock:Console:Oidc:RequireHttpsMetadata=false",
        $"--Airlock:Console:Oidc:AdminGroups:0={adminGroup}",
        $"--Airlock:Console:Oidc:ApproverGroups:0={approverGroup}",
        $"--Airlock:Console:Oidc:AuditorGroups:0={auditorGroup}",
    ];

    private static string LoginPage(OpenIddictRequest request, bool failed)
    {
        var html = new StringBuilder("<!DOCTYPE html><html lang=\"en\"><head><title>Test IdP</title></head><body><h1>Test IdP</h1>");
        if (failed)
            html.Append("<p id=\"login-error\">Wrong user name or password.</p>");
        html.Append("<form method=\"post\" action=\"/connect/authorize\">");
        foreach (var (name, value) in request.GetParameters())
            html.Append($"<input type=\"hidden\" name=\"{WebUtility.HtmlEncode(name)}\" value=\"{WebUtility.HtmlEncode(value.ToString())}\" />");
        html.Append("<label>User <input name=\"login_user\" id=\"login_user\" /></label>");
        html.Append("<label>Password <input name=\"login_password\" id=\"login_password\" type=\"password\" /></label>");
        html.Append("<button type=\"submit\" id=\"login_submit\">Sign in</button></form></body></html>");
        return html.ToString();
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
