using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.EntityFrameworkCore;

namespace Airlock.ControlPlane.Identity;

public static class IdentityExtensions
{
    private const string Smart = "airlock";

    /// <summary>The claim carrying the user's security stamp at sign-in (see <see cref="Data.ConsoleUser.SecurityStamp"/>).</summary>
    public const string SecurityStampClaim = "airlock:security-stamp";

    /// <summary>
    /// Cookies for people in the console, bearer secrets for machines; one policy scheme picks
    /// per request so every endpoint can be reached by both where its policy allows.
    /// </summary>
    public static IHostApplicationBuilder AddAirlockIdentity(this IHostApplicationBuilder builder)
    {
        builder.Services.AddScoped<UserService>();
        builder.Services.AddSingleton<SignInThrottle>();
        builder.Services.AddScoped<UserAdministration>();
        builder.Services.AddScoped<AgentCredentials>();
        builder.Services.AddScoped<McpClients>();
        builder.Services.AddScoped<TokenTester>();
        builder.Services.AddScoped<KeysAndIssuers>();
        builder.Services.AddHttpClient(TrustedIssuerRefresher.HttpClientName, c => c.Timeout = TimeSpan.FromSeconds(10));
        builder.Services.AddHostedService<TrustedIssuerRefresher>();
        builder.Services.AddScoped<Bootstrapper>();
        builder.Services.AddScoped<SsoUsers>();
        var sso = builder.Configuration.GetSection("Airlock:Console:Oidc").Get<ConsoleSsoOptions>() ?? new ConsoleSsoOptions();
        builder.Services.AddSingleton(sso);
        builder.Services
            .AddAuthentication(Smart)
            .AddPolicyScheme(Smart, "cookie or bearer", o => o.ForwardDefaultSelector = ctx =>
                BearerSecretHandler.ReadSecret(ctx.Request) is null
                    ? CookieAuthenticationDefaults.AuthenticationScheme
                    : BearerSecretHandler.SchemeName)
            .AddCookie(o =>
            {
                o.LoginPath = "/account/login";
                o.AccessDeniedPath = "/account/denied";
                o.Cookie.Name = "airlock.auth";
                o.Cookie.HttpOnly = true;
                o.Cookie.SameSite = SameSiteMode.Strict;
                o.ExpireTimeSpan = TimeSpan.FromHours(8);
                o.SlidingExpiration = true;
                // API callers get status codes, not redirects to a sign-in page.
                o.Events.OnRedirectToLogin = ctx => RedirectOrStatus(ctx, StatusCodes.Status401Unauthorized);
                o.Events.OnRedirectToAccessDenied = ctx => RedirectOrStatus(ctx, StatusCodes.Status403Forbidden);
                o.Events.OnValidatePrincipal = RevalidateUserAsync;
            })
            .AddScheme<AuthenticationSchemeOptions, BearerSecretHandler>(BearerSecretHandler.SchemeName, null)
            .AddConsoleSso(sso);

        builder.Services.AddAuthorizationBuilder()
            .AddPolicy(AccessPolicies.Admin, p => p.RequireRole(ConsoleRoles.Admin))
            .AddPolicy(AccessPolicies.Approver, p => p.RequireRole(ConsoleRoles.Admin, ConsoleRoles.Approver))
            .AddPolicy(AccessPolicies.Viewer, p => p.RequireRole(ConsoleRoles.All))
            .AddPolicy(AccessPolicies.Sidecar, p => p.RequireClaim(BearerSecretHandler.SidecarIdClaim));
        builder.Services.AddCascadingAuthenticationState();
        return builder;
    }

    /// <summary>
    /// A cookie outlives changes to its user: on every request, a deleted or disabled user, or one
    /// whose security stamp changed (password changed, disabled, signed out), is signed
    /// out; a changed role takes effect (the cookie is re-issued with it).
    /// </summary>
    private static async Task RevalidateUserAsync(CookieValidatePrincipalContext context)
    {
        var db = context.HttpContext.RequestServices.GetRequiredService<Data.AirlockDbContext>();
        var user = context.Principal is null ? null : await ConsoleSessionCheck.CurrentAsync(db, context.Principal, context.HttpContext.RequestAborted);
        if (user is null)
        {
            context.RejectPrincipal();
            await context.HttpContext.SignOutAsync(CookieAuthenticationDefaults.AuthenticationScheme);
            return;
        }
        if (!context.Principal!.IsInRole(user.Role))
        {
            var claims = new List<Claim> { new(ClaimTypes.Name, user.UserName), new(ClaimTypes.Role, user.Role), new(SecurityStampClaim, user.SecurityStamp) };
            if (context.Principal.FindFirst(ConsoleSsoExtensions.SignedInAtClaim) is { } signedInAt)
                claims.Add(new Claim(ConsoleSsoExtensions.SignedInAtClaim, signedInAt.Value)); // a new role does not extend a single sign-on session
            context.ReplacePrincipal(new ClaimsPrincipal(new ClaimsIdentity(claims, CookieAuthenticationDefaults.AuthenticationScheme)));
            context.ShouldRenew = true;
        }
    }

    private static Task RedirectOrStatus(RedirectContext<CookieAuthenticationOptions> ctx, int status)
    {
        // Only a browser asking for a page is sent to the sign-in (or "denied") page; the API, the
        // sidecars' hub and gRPC, and any other caller get the status code.
        var wantsPage = (HttpMethods.IsGet(ctx.Request.Method) || HttpMethods.IsHead(ctx.Request.Method))
            && ctx.Request.Headers.Accept.ToString().Contains("text/html", StringComparison.OrdinalIgnoreCase);
        if (!wantsPage || ctx.Request.Path.StartsWithSegments("/api"))
        {
            ctx.Response.StatusCode = status;
            return Task.CompletedTask;
        }
        ctx.Response.Redirect(ctx.RedirectUri);
        return Task.CompletedTask;
    }

    /// <summary>The actor recorded in the audit log: the user name or <c>apikey:NAME</c>.</summary>
    public static string Actor(this ClaimsPrincipal user) => user.Identity?.Name ?? "anonymous";

    public static Guid? SidecarId(this ClaimsPrincipal user) =>
        Guid.TryParse(user.FindFirstValue(BearerSecretHandler.SidecarIdClaim), out var id) ? id : null;
}
