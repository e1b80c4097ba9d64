using System.Security.Claims;
using Airlock.ControlPlane.Identity;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Mvc;
using MudBlazor.Services;

namespace Airlock.ControlPlane.Components;

internal static class ConsoleExtensions
{
    public static WebApplicationBuilder AddAirlockConsole(this WebApplicationBuilder builder)
    {
        // Serve MudBlazor's and Blazor's files from a build output too (the runtime manifest
        // points into the package cache), not only in Development; a no-op once published.
        builder.WebHost.UseStaticWebAssets();
        builder.Services.AddRazorComponents().AddInteractiveServerComponents();
        builder.Services.AddMudServices();
        builder.Services.AddScoped<Microsoft.AspNetCore.Components.Authorization.AuthenticationStateProvider, ConsoleAuthenticationStateProvider>();
        builder.Services.AddScoped<ConsoleActor>();
        builder.Services.AddHttpContextAccessor(); // the layout reads the dark-mode cookie
        return builder;
    }

    public static WebApplication MapAirlockConsole(this WebApplication app)
    {
        app.MapStaticAssets();
        app.MapRazorComponents<App>().AddInteractiveServerRenderMode();
        return app;
    }

    /// <summary>Sign-in and sign-out for the console's cookie. The form is a static page; the result is a redirect.</summary>
    public static WebApplication MapAccountEndpoints(this WebApplication app)
    {
        app.MapPost("/account/login", async (
            [FromForm] string userName, [FromForm] string password, [FromForm] string? returnUrl,
            UserService users, HttpContext http, CancellationToken ct) =>
        {
            var result = await users.SignInAsync(userName, password, http.Connection.RemoteIpAddress?.ToString() ?? "unknown", ct);
            if (result.Outcome != SignInOutcome.Success)
                return Results.Redirect($"/account/login?error=invalid&returnUrl={Uri.EscapeDataString(SafeReturnUrl(returnUrl))}");
            var identity = new ClaimsIdentity(
                [new Claim(ClaimTypes.Name, result.User!.UserName), new Claim(ClaimTypes.Role, result.User.Role), new Claim(IdentityExtensions.SecurityStampClaim, result.User.SecurityStamp)],
                CookieAuthenticationDefaults.AuthenticationScheme);
            await http.SignInAsync(CookieAuthenticationDefaults.AuthenticationScheme, new ClaimsPrincipal(identity));
            return Results.LocalRedirect(SafeReturnUrl(returnUrl));
        }).AllowAnonymous();

        // Signing out ends every session of the user, not only this browser's: a new security stamp
        // invalidates every other cookie and open console tab of theirs.
        app.MapPost("/account/logout", async (HttpContext http, UserAdministration users, CancellationToken ct) =>
        {
            if (http.User.Identity?.Name is { } name)
                await users.RenewSecurityStampAsync(name, name, ct);
            await http.SignOutAsync(CookieAuthenticationDefaults.AuthenticationScheme);
            return Results.LocalRedirect("/account/login");
        });
        app.MapConsoleSso(app.Services.GetRequiredService<ConsoleSsoOptions>(), SafeReturnUrl);
        return app;
    }

    /// <summary>Only local paths: an open redirect after sign-in is a phishing tool.</summary>
    internal static string SafeReturnUrl(string? returnUrl) =>
        returnUrl is { Length: > 0 } && returnUrl[0] == '/' && !returnUrl.StartsWith("//", StringComparison.Ordinal)
            // No backslash and no control character anywhere: browsers drop a tab or newline, so "/\t/evil" is "//evil".
            && !returnUrl.Any(c => c == '\\' || char.IsControl(c))
            ? returnUrl
            : "/";
}
