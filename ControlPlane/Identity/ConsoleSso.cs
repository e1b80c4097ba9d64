using System.ComponentModel.DataAnnotations;
using System.Security.Claims;
using System.Text.RegularExpressions;
using Airlock.ControlPlane.Data;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;
using Microsoft.EntityFrameworkCore;

namespace Airlock.ControlPlane.Identity;

/// <summary>
/// Section <c>Airlock:Console:Oidc</c>: single sign-on for people through an OpenID Connect provider
/// (authorization code with PKCE). Off unless <see cref="Authority"/> is set. The provider's groups
/// give the console role: a person in none of the listed groups cannot sign in.
/// </summary>
public sealed class ConsoleSsoOptions : IValidatableObject
{
    /// <summary>The provider's issuer URL; its discovery document is read from it.</summary>
    public string? Authority { get; set; }
    public string? ClientId { get; set; }
    /// <summary>Optional (a public client then, PKCE only); prefer an environment variable to a file.</summary>
    public string? ClientSecret { get; set; }
    /// <summary>The sign-in button's text: "Sign in with {DisplayName}".</summary>
    public string DisplayName { get; set; } = "single sign-on";
    /// <summary>The claim with the person's groups (an array, or one claim per group).</summary>
    public string GroupsClaim { get; set; } = "groups";
    /// <summary>The claim that names the person in the console and the audit log.</summary>
    public string UserNameClaim { get; set; } = "preferred_username";
    public List<string> AdminGroups { get; set; } = [];
    public List<string> ApproverGroups { get; set; } = [];
    public List<string> AuditorGroups { get; set; } = [];
    /// <summary>Scopes asked for besides <c>openid</c>; none configured: <c>profile</c>. (Empty by default: configuration appends to a list, it would not replace a default.)</summary>
    public List<string> Scopes { get; set; } = [];
    /// <summary>Only for a provider on loopback in tests and labs: its metadata over plain HTTP.</summary>
    public bool RequireHttpsMetadata { get; set; } = true;

    public bool Enabled => !string.IsNullOrWhiteSpace(Authority);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!Enabled)
            yield break;
        if (!Uri.TryCreate(Authority, UriKind.Absolute, out var authority) || (authority.Scheme != Uri.UriSchemeHttps && RequireHttpsMetadata))
            yield return new ValidationResult("Airlock:Console:Oidc:Authority: an absolute https:// URL (http only with RequireHttpsMetadata false)");
        if (string.IsNullOrWhiteSpace(ClientId))
            yield return new ValidationResult("Airlock:Console:Oidc:ClientId: is required with an Authority");
        if (AdminGroups.Count + ApproverGroups.Count + AuditorGroups.Count == 0)
            yield return new ValidationResult("Airlock:Console:Oidc: name the provider's groups of at least one role (AdminGroups, ApproverGroups, AuditorGroups)");
    }

    /// <summary>Pure: the strongest console role the groups give (Admin, then Approver, then Auditor), or null.</summary>
    public string? RoleFor(IEnumerable<string> groups)
    {
        var set = groups.ToHashSet(StringComparer.Ordinal);
        return AdminGroups.Any(set.Contains) ? ConsoleRoles.Admin
            : ApproverGroups.Any(set.Contains) ? ConsoleRoles.Approver
            : AuditorGroups.Any(set.Contains) ? ConsoleRoles.Auditor
            : null;
    }
}

/// <summary>Why a person the provider vouched for may not sign in; the sign-in page words each (never text from a link).</summary>
public enum SsoRefusal { NoRole, NoUserName, NameTaken, Disabled, Provider }

/// <summary>The console account of a person who signs in through the provider, or why they may not.</summary>
public sealed record SsoSignIn(ConsoleUser? User, SsoRefusal? Refusal)
{
    /// <summary>What the sign-in page says for each refusal.</summary>
    public static string Explain(SsoRefusal? refusal) => refusal switch
    {
        SsoRefusal.NoRole => "your groups at the identity provider give no Airlock role; ask an Airlock admin to map one of them",
        SsoRefusal.NoUserName => "the identity provider gave no usable user name",
        SsoRefusal.NameTaken => "an Airlock account with your name already exists and is not this identity provider's; an Airlock admin must rename or remove it first",
        SsoRefusal.Disabled => "your Airlock account is disabled",
        _ => "the identity provider's answer was refused",
    };
}

/// <summary>A refusal carried from the token check to the failure handler.</summary>
public sealed class SsoRefusedException(SsoRefusal refusal) : Exception(SsoSignIn.Explain(refusal))
{
    public SsoRefusal Refusal { get; } = refusal;
}

/// <summary>
/// Maps a person the provider vouched for to their console account: found by issuer and subject
/// (never by name, so nobody becomes a local account by choosing its name at the provider), created
/// on first sign-in, its role and approver groups taken from the provider's groups at every sign-in.
/// </summary>
public sealed partial class SsoUsers(AirlockDbContext db, TimeProvider time)
{
    [GeneratedRegex("^[A-Za-z0-9._@-]{1,100}$")]
    private static partial Regex UserNamePattern();

    public async Task<SsoSignIn> SignInAsync(string issuer, string subject, string? userName, IReadOnlyList<string> groups, ConsoleSsoOptions options, CancellationToken ct)
    {
        if (options.RoleFor(groups) is not { } role)
            return new(null, SsoRefusal.NoRole);
        var approverGroups = groups.Where(ConsoleGroupName.IsValid).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).Take(50).ToList();
        var actor = $"sso:{issuer}";
        var now = time.GetUtcNow();
        var user = await db.Users.SingleOrDefaultAsync(u => u.ExternalIssuer == issuer && u.ExternalSubject == subject, ct);
        if (user is null)
        {
            if (userName is null || !UserNamePattern().IsMatch(userName))
                return new(null, SsoRefusal.NoUserName);
            // Case aside too: "Admin" from the provider must not stand beside a local "admin".
            var folded = userName.ToLowerInvariant();
            if (await db.Users.AnyAsync(u => u.UserName.ToLower() == folded, ct))
                return new(null, SsoRefusal.NameTaken);
            user = new ConsoleUser
            {
                Id = Guid.NewGuid(), UserName = userName, PasswordHash = "", Role = role, CreatedAt = now, Groups = approverGroups,
                ExternalIssuer = issuer, ExternalSubject = subject,
            };
            db.Users.Add(user);
            db.Record(now, actor, "create", "user", user.UserName, null, new { user.UserName, user.Role, user.Groups, singleSignOn = issuer });
            await db.SaveChangesAsync(ct);
            return new(user, null);
        }
        if (user.Disabled)
            return new(null, SsoRefusal.Disabled);
        if (user.Role != role || !user.Groups.SequenceEqual(approverGroups))
        {
            var before = new { user.UserName, user.Role, Groups = user.Groups.ToList() };
            user.Role = role;
            user.Groups = approverGroups;
            db.Record(now, actor, "update", "user", user.UserName, before, new { user.UserName, user.Role, user.Groups });
            await db.SaveChangesAsync(ct);
        }
        return new(user, null);
    }
}

public static class ConsoleSsoExtensions
{
    public const string Scheme = "oidc";
    public const string CallbackPath = "/signin-oidc";

    /// <summary>When the provider last vouched for the person (Unix seconds), carried in the console's cookie.</summary>
    public const string SignedInAtClaim = "airlock:sso_signed_in_at";

    /// <summary>
    /// How long a single sign-on session lasts, however busy: then the person signs in at the provider
    /// again, so a person removed there, or moved to a group of less, loses the console within this.
    /// </summary>
    public static readonly TimeSpan SessionLifetime = TimeSpan.FromHours(8);

    public static bool StillVouchedFor(ClaimsPrincipal principal, DateTimeOffset now) =>
        long.TryParse(principal.FindFirstValue(SignedInAtClaim), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var at)
        && now - DateTimeOffset.FromUnixTimeSeconds(at) < SessionLifetime;

    /// <summary>Adds the provider as a sign-in scheme whose result is the console's own cookie (same claims, stamp and revalidation as a local sign-in).</summary>
    public static AuthenticationBuilder AddConsoleSso(this AuthenticationBuilder auth, ConsoleSsoOptions sso)
    {
        if (!sso.Enabled)
            return auth;
        return auth.AddOpenIdConnect(Scheme, o =>
        {
            o.Authority = sso.Authority;
            o.ClientId = sso.ClientId;
            o.ClientSecret = sso.ClientSecret;
            o.RequireHttpsMetadata = sso.RequireHttpsMetadata;
            o.ResponseType = "code";
            o.UsePkce = true;
            // The answer comes back as a redirect (GET), so the correlation and nonce cookies can be
            // SameSite=Lax: they reach the callback without needing a Secure SameSite=None cookie.
            o.ResponseMode = "query";
            o.CorrelationCookie.SameSite = SameSiteMode.Lax;
            o.NonceCookie.SameSite = SameSiteMode.Lax;
            o.CallbackPath = CallbackPath;
            o.SignInScheme = CookieAuthenticationDefaults.AuthenticationScheme;
            o.MapInboundClaims = false;
            o.SaveTokens = false;
            o.Scope.Clear();
            o.Scope.Add("openid");
            foreach (var scope in sso.Scopes.Count == 0 ? ["profile"] : sso.Scopes)
                o.Scope.Add(scope);
            o.Events.OnTokenValidated = ctx => TokenValidatedAsync(ctx, sso);
            o.Events.OnRemoteFailure = ctx =>
            {
                // A code, never the message: the sign-in page words it, so a link cannot put text there.
                var refusal = (ctx.Failure as SsoRefusedException ?? ctx.Failure?.InnerException as SsoRefusedException)?.Refusal ?? SsoRefusal.Provider;
                ctx.HttpContext.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(ConsoleSsoExtensions))
                    .LogWarning("Single sign-on refused: {Refusal}: {Detail}", refusal, ctx.Failure?.Message);
                ctx.Response.Redirect($"/account/login?error=sso&reason={refusal}");
                ctx.HandleResponse();
                return Task.CompletedTask;
            };
        });
    }

    private static async Task TokenValidatedAsync(TokenValidatedContext ctx, ConsoleSsoOptions sso)
    {
        var principal = ctx.Principal!;
        var issuer = principal.FindFirstValue("iss") ?? sso.Authority!;
        var subject = principal.FindFirstValue("sub");
        if (subject is null)
        {
            ctx.Fail("the identity provider's token has no subject");
            return;
        }
        // One claim per group (the token handler splits a JSON array); a value is a name, never parsed again.
        var groups = principal.FindAll(sso.GroupsClaim).Select(c => c.Value).Take(200).ToList();
        var users = ctx.HttpContext.RequestServices.GetRequiredService<SsoUsers>();
        var result = await users.SignInAsync(issuer, subject, principal.FindFirstValue(sso.UserNameClaim), groups, sso, ctx.HttpContext.RequestAborted);
        if (result.User is not { } user)
        {
            ctx.Fail(new SsoRefusedException(result.Refusal!.Value));
            return;
        }
        // The console's own principal: what a local sign-in issues, so every check after is the same.
        ctx.Principal = new ClaimsPrincipal(new ClaimsIdentity(
            [
                new Claim(ClaimTypes.Name, user.UserName), new Claim(ClaimTypes.Role, user.Role), new Claim(IdentityExtensions.SecurityStampClaim, user.SecurityStamp),
                new Claim(SignedInAtClaim, DateTimeOffset.UtcNow.ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture)),
            ],
            CookieAuthenticationDefaults.AuthenticationScheme));
        // The cookie ends with the single sign-on session, however it slides.
        ctx.Properties!.ExpiresUtc = DateTimeOffset.UtcNow + SessionLifetime;
        ctx.Properties.AllowRefresh = false;
    }

    /// <summary><c>GET /account/sso?returnUrl=</c>: off to the provider, back to the page asked for.</summary>
    public static WebApplication MapConsoleSso(this WebApplication app, ConsoleSsoOptions sso, Func<string?, string> safeReturnUrl)
    {
        app.MapGet("/account/sso", (string? returnUrl) => sso.Enabled
                ? Results.Challenge(new AuthenticationProperties { RedirectUri = safeReturnUrl(returnUrl) }, [Scheme])
                : Results.Problem(statusCode: 404, title: "Single sign-on is not configured", detail: "set Airlock:Console:Oidc:Authority"))
            .AllowAnonymous();
        return app;
    }
}
