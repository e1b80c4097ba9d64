using System.Security.Claims;
using Airlock.ControlPlane.Data;
using Microsoft.AspNetCore.Components.Authorization;
using Microsoft.AspNetCore.Components.Server;
using Microsoft.EntityFrameworkCore;

namespace Airlock.ControlPlane.Identity;

/// <summary>
/// Whether a signed-in person's cookie or console tab still speaks for them: the account exists, is
/// enabled, and its security stamp (renewed by a password change, disablement and every sign-out) is the one they signed in under. Callers compare the role: a cookie is re-issued
/// with the new one, a console tab is signed out (a reload brings the new role).
/// </summary>
public static class ConsoleSessionCheck
{
    /// <summary>The user as they are now when <paramref name="principal"/> still speaks for them; null otherwise.</summary>
    public static async Task<ConsoleUser?> CurrentAsync(AirlockDbContext db, ClaimsPrincipal principal, CancellationToken ct)
    {
        if (principal.Identity?.Name is not { } name)
            return null;
        var user = await db.Users.AsNoTracking().SingleOrDefaultAsync(u => u.UserName == name, ct);
        if (user is null || user.Disabled)
            return null;
        // An empty stamp never matches: a cookie without one (or an account re-created under the same name) is no sign-in.
        var stamp = principal.FindFirstValue(IdentityExtensions.SecurityStampClaim);
        if (stamp is not { Length: > 0 } || !string.Equals(stamp, user.SecurityStamp, StringComparison.Ordinal))
            return null;
        // A single sign-on session lasts as long as its provider's word: then the person signs in there again,
        // and a person the provider no longer vouches for (or for less) gets no further.
        if (user.SingleSignOn && !ConsoleSsoExtensions.StillVouchedFor(principal, DateTimeOffset.UtcNow))
            return null;
        return user;
    }
}

/// <summary>Section <c>Airlock:Console</c>.</summary>
public sealed class ConsoleOptions : System.ComponentModel.DataAnnotations.IValidatableObject
{
    /// <summary>How often an open console tab re-checks its user (1–30 s).</summary>
    [System.ComponentModel.DataAnnotations.Range(1, 30)]
    public int RevalidationSeconds { get; set; } = 30;

    /// <summary>Single sign-on for people (<c>Airlock:Console:Oidc</c>); off by default.</summary>
    public ConsoleSsoOptions Oidc { get; set; } = new();

    public IEnumerable<System.ComponentModel.DataAnnotations.ValidationResult> Validate(System.ComponentModel.DataAnnotations.ValidationContext validationContext) =>
        Oidc.Validate(validationContext);
}

/// <summary>
/// The console's authentication state for Blazor circuits: a tab that stays open is checked again
/// every <c>Airlock:Console:RevalidationSeconds</c> (default 30, at most 30), so a disabled, demoted
/// or signed-out user loses what the tab showed them.
/// </summary>
public sealed class ConsoleAuthenticationStateProvider(ILoggerFactory loggers, IServiceScopeFactory scopes, IConfiguration configuration)
    : RevalidatingServerAuthenticationStateProvider(loggers)
{
    protected override TimeSpan RevalidationInterval =>
        TimeSpan.FromSeconds(configuration.GetSection("Airlock:Console").Get<ConsoleOptions>()?.RevalidationSeconds ?? 30);

    protected override async Task<bool> ValidateAuthenticationStateAsync(AuthenticationState state, CancellationToken ct)
    {
        if (state.User.Identity?.IsAuthenticated != true)
            return true;
        using var scope = scopes.CreateScope();
        var user = await ConsoleSessionCheck.CurrentAsync(scope.ServiceProvider.GetRequiredService<AirlockDbContext>(), state.User, ct);
        return user is not null && state.User.IsInRole(user.Role);
    }
}

/// <summary>
/// The person behind a console tab, checked again before every change they make: what the tab was
/// allowed when it opened does not count, only what the account may do now.
/// </summary>
public sealed class ConsoleActor(AuthenticationStateProvider authentication, IServiceScopeFactory scopes)
{
    /// <summary>The actor's name when they may act as <paramref name="roles"/> now; null (the change must not happen) otherwise.</summary>
    public async Task<string?> AuthorizeAsync(IReadOnlyCollection<string> roles, CancellationToken ct = default)
    {
        var principal = (await authentication.GetAuthenticationStateAsync()).User;
        using var scope = scopes.CreateScope();
        var user = await ConsoleSessionCheck.CurrentAsync(scope.ServiceProvider.GetRequiredService<AirlockDbContext>(), principal, ct);
        return user is not null && roles.Contains(user.Role) ? user.UserName : null;
    }

    public const string Refusal = "Your access has changed since this page was opened (signed out, disabled or a new role): the change was not made. Reload the page.";
}
