using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Airlock.Testing;
using Microsoft.Playwright;

namespace Airlock.EndToEnd.Tests;

/// <summary>
/// Single sign-on for people against a real OpenID Connect provider (OpenIddict's server, run by the
/// test), clicked through in headless Chromium: the provider's groups give the console role, at
/// every sign-in; a person in no mapped group, or one whose name is a local account's, is refused;
/// a single sign-on account has no password.
/// </summary>
public sealed class SingleSignOnTests : BrowserTest
{
    private static async Task<IPage> SignInThroughProviderAsync(IBrowser browser, string cpUrl, string user, string password, string path = "/users")
    {
        var page = await (await browser.NewContextAsync(new() { BaseURL = cpUrl })).NewPageAsync();
        await page.GotoAsync($"/account/login?returnUrl={Uri.EscapeDataString(path)}");
        await page.GetByTestId("sso-sign-in").ClickAsync();
        await page.Locator("#login_user").FillAsync(user);
        await page.Locator("#login_password").FillAsync(password);
        await page.Locator("#login_submit").ClickAsync();
        await page.WaitForURLAsync(url => url.StartsWith(cpUrl, StringComparison.Ordinal) && !url.Contains("/signin-oidc", StringComparison.Ordinal));
        return page;
    }

    [Fact]
    public async Task People_sign_in_through_the_provider_with_the_role_their_groups_give()
    {
        await using var idp = await TestOidcProvider.StartAsync();
        await using var cp = await ControlPlaneProcess.StartAsync(extraArgs: idp.ControlPlaneArgs());
        await idp.RegisterConsoleAsync(cp.Url);
        idp.SetUser(new ProviderUser("olga", "olga-idp-password", ["airlock-admins", "dba"]));
        idp.SetUser(new ProviderUser("nina", "nina-idp-password", ["marketing"]));
        idp.SetUser(new ProviderUser("admin", "admin-idp-password", ["airlock-admins"]) { Subject = "someone-else" });

        // Olga: an Admin by her group, straight to the page she asked for.
        var olga = await SignInThroughProviderAsync(Browser, cp.Url, "olga", "olga-idp-password");
        Assert.Equal("/users", new Uri(olga.Url).AbsolutePath);
        await Assertions.Expect(olga.GetByTestId("signed-in-user")).ToHaveTextAsync("olga");
        await Assertions.Expect(olga.GetByTestId("user-olga")).ToBeVisibleAsync();
        var users = JsonDocument.Parse(await cp.Api.GetStringAsync("/api/v1/users")).RootElement.EnumerateArray().ToList();
        var account = users.Single(u => u.GetProperty("userName").GetString() == "olga");
        Assert.Equal("Admin", account.GetProperty("role").GetString());
        Assert.Equal($"{idp.Url}/", account.GetProperty("singleSignOn").GetString());
        Assert.Equal(["airlock-admins", "dba"], account.GetProperty("groups").EnumerateArray().Select(g => g.GetString()));
        var audit = await cp.Api.GetStringAsync("/api/v1/audit?entityName=olga");
        Assert.Contains($"sso:{idp.Url}/", audit, StringComparison.Ordinal);

        // Nina's groups give no role: refused, and told why.
        var nina = await SignInThroughProviderAsync(Browser, cp.Url, "nina", "nina-idp-password");
        await Assertions.Expect(nina.GetByTestId("sso-error")).ToContainTextAsync("give no Airlock role");
        Assert.DoesNotContain(users, u => u.GetProperty("userName").GetString() == "nina");

        // Someone called "admin" at the provider does not become the local admin.
        var impostor = await SignInThroughProviderAsync(Browser, cp.Url, "admin", "admin-idp-password");
        await Assertions.Expect(impostor.GetByTestId("sso-error")).ToContainTextAsync("already exists and is not this identity provider's");

        // Olga's groups change at the provider: her next sign-in brings the new role.
        idp.SetUser(new ProviderUser("olga", "olga-idp-password", ["airlock-auditors"]));
        var again = await SignInThroughProviderAsync(Browser, cp.Url, "olga", "olga-idp-password", path: "/audit");
        await Assertions.Expect(again.GetByTestId("audit-table")).ToBeVisibleAsync();
        await again.GotoAsync("/users");
        await again.WaitForURLAsync(url => new Uri(url).AbsolutePath == "/account/denied");
        Assert.Equal("Auditor", JsonDocument.Parse(await cp.Api.GetStringAsync("/api/v1/users")).RootElement.EnumerateArray()
            .Single(u => u.GetProperty("userName").GetString() == "olga").GetProperty("role").GetString());

        // A single sign-on account has no password: not at the form, not by an Admin's reset.
        var (_, location) = await ConsoleSignInOrRefusal(cp.Url, "olga", "olga-idp-password");
        Assert.StartsWith("/account/login?error=invalid", location, StringComparison.Ordinal);
        var reset = await cp.Api.PutAsJsonAsync("/api/v1/users/olga", new { password = "a-brand-new-password" });
        Assert.Equal(HttpStatusCode.BadRequest, reset.StatusCode);
        Assert.Contains("single sign-on", await reset.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        // Disabled in Airlock: the provider's word is not enough.
        await cp.EnsureSuccessAsync(await cp.Api.PutAsJsonAsync("/api/v1/users/olga", new { disabled = true }));
        var disabled = await SignInThroughProviderAsync(Browser, cp.Url, "olga", "olga-idp-password");
        await Assertions.Expect(disabled.GetByTestId("sso-error")).ToContainTextAsync("disabled");
    }

    [Fact]
    public async Task A_bad_single_sign_on_option_stops_the_control_plane_with_a_message_naming_it()
    {
        var cp = ManagedProcess.Start("control plane", Binaries.ControlPlane,
            [$"--Airlock:StateDirectory={Directory.CreateTempSubdirectory("airlock-cp-").FullName}", $"--Kestrel:Endpoints:Http:Url=http://127.0.0.1:{FreePort.Next()}",
             $"--Kestrel:Endpoints:Grpc:Url=http://127.0.0.1:{FreePort.Next()}", "--Airlock:Console:Oidc:Authority=https://idp.example", "--Airlock:Console:Oidc:ClientId=x"],
            new Dictionary<string, string>());
        Assert.Equal(2, await cp.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.Contains("Airlock:Console:Oidc: name the provider's groups of at least one role", cp.Output, StringComparison.Ordinal);
    }

    /// <summary>The sign-in form's answer: where it redirects (a refusal redirects back to the form).</summary>
    private static async Task<(HttpStatusCode, string)> ConsoleSignInOrRefusal(string url, string user, string password)
    {
        try
        {
            var (_, location) = await ConsoleSignIn.SignInAsync(url, user, password);
            return (HttpStatusCode.Redirect, location);
        }
        catch (InvalidOperationException e)
        {
            return (HttpStatusCode.BadRequest, e.Message);
        }
    }
}
