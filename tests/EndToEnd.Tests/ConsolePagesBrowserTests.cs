using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Airlock.Testing;
using Microsoft.Playwright;

namespace Airlock.EndToEnd.Tests;

/// <summary>A control plane with one enrolled sidecar, shared by the console-page tests.</summary>
public sealed class ConsolePagesFixture : IAsyncLifetime
{
    public ControlPlaneProcess Cp { get; private set; } = default!;
    public SidecarProcess Sidecar { get; private set; } = default!;
    public const string Password = "a-long-enough-password";

    public async Task InitializeAsync()
    {
        Cp = await ControlPlaneProcess.StartAsync();
        Sidecar = SidecarProcess.Start(Cp.Url, await Cp.CreateSidecarAsync("edge-1"));
        await Sidecar.WaitForVersionAsync(1);
        foreach (var (user, role) in new[] { ("bea", "Admin"), ("cid", "Admin"), ("aud", "Auditor") })
            await Cp.EnsureSuccessAsync(await Cp.Api.PostAsJsonAsync("/api/v1/users", new { userName = user, password = Password, role }));
    }

    public async Task DisposeAsync()
    {
        await Sidecar.DisposeAsync();
        await Cp.DisposeAsync();
    }
}

/// <summary>
/// The console's policy pages in headless Chromium: an admin onboards a target, a role and an agent by
/// clicking, with the validator's messages at the fields; two admins editing one role at once get a
/// conflict naming the other, never a silent overwrite; secrets are shown once and never again.
/// </summary>
public sealed class ConsolePagesBrowserTests(ConsolePagesFixture fixture) : BrowserTest, IClassFixture<ConsolePagesFixture>
{
    private ControlPlaneProcess Cp => fixture.Cp;

    private Task<IPage> SignInAsync(string user, string path, string password = ConsolePagesFixture.Password) =>
        SignInAsync(Cp.Url, user, password, path);

    private static string Screenshot(string name) => Path.Combine(Path.GetTempPath(), "airlock-console", $"{name}.png");

    [Fact]
    public async Task An_admin_onboards_a_target_a_role_and_an_agent_by_clicking()
    {
        var port = FreePort.Next();
        var page = await SignInAsync("admin", "/targets", ControlPlaneProcess.AdminPassword);

        // Target: a bad port is reported at the field, and nothing is saved.
        await page.GetByTestId("new-target").ClickAsync();
        await page.GetByTestId("target-name").FillAsync("shop-db");
        await page.GetByTestId("target-listen-port").FillAsync("70000");
        await page.GetByTestId("target-host").FillAsync("127.0.0.1");
        await page.GetByTestId("target-database").FillAsync("shop");
        await page.GetByTestId("target-username").FillAsync("shop_app");
        await page.GetByTestId("target-password").FillAsync("upstream-secret-1");
        await page.GetByTestId("target-save").ClickAsync();
        await Assertions.Expect(page.GetByTestId("target-form")).ToContainTextAsync("between 1 and 65535");
        Assert.Equal(HttpStatusCode.NotFound, (await Cp.Api.GetAsync("/api/v1/targets/shop-db")).StatusCode);

        await page.GetByTestId("target-listen-port").FillAsync(port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await page.GetByTestId("target-save").ClickAsync();
        await Assertions.Expect(page.GetByTestId("target-credential-shop-db")).ToHaveTextAsync("stored");
        await page.ScreenshotAsync(new() { Path = Screenshot("targets"), FullPage = true });
        Assert.DoesNotContain("upstream-secret-1", await page.ContentAsync(), StringComparison.Ordinal);
        // A connection test, run from the sidecar: nothing listens there, and the page says so.
        await page.GetByTestId("test-target-shop-db").ClickAsync();
        await Assertions.Expect(page.GetByTestId("target-test-result")).ToContainTextAsync("shop-db from sidecar edge-1: not reachable", new() { Timeout = 20000 });
        var target = JsonDocument.Parse(await Cp.Api.GetStringAsync("/api/v1/targets/shop-db")).RootElement;
        Assert.Equal("edge-1", target.GetProperty("sidecar").GetString());
        Assert.Equal(port, target.GetProperty("listenPort").GetInt32());

        // Role: from the agent-safe baseline, granting the target, with one rule of its own.
        await GoAsync(page, "/roles");
        await page.GetByTestId("new-role").ClickAsync();
        await page.GetByTestId("role-name").FillAsync("shop-reader");
        await ChooseAsync(page, "grant-target-0", "shop-db");
        await page.GetByTestId("add-rule").ClickAsync();
        await page.GetByTestId("rule-name-0").FillAsync("no-orders");
        await page.GetByTestId("rule-tables-0").FillAsync("orders");
        await page.GetByTestId("rule-pattern-0").FillAsync("(unclosed");
        await Assertions.Expect(page.GetByTestId("role-yaml")).ToContainTextAsync("baseline: agent-safe");
        await page.GetByTestId("role-save").ClickAsync();
        await Assertions.Expect(page.GetByTestId("role-form")).ToContainTextAsync("regular expression");
        await page.GetByTestId("rule-pattern-0").FillAsync("");
        await page.GetByTestId("role-save").ClickAsync();
        await Assertions.Expect(page.GetByTestId("role-rules-shop-reader")).ToHaveTextAsync("no-orders (block)");
        await page.ScreenshotAsync(new() { Path = Screenshot("roles"), FullPage = true });

        // The saved role, tried beside the form.
        await page.GetByTestId("role-sim-sql").FillAsync("select * from orders");
        await page.GetByTestId("role-sim-run").ClickAsync();
        await Assertions.Expect(page.GetByTestId("role-sim-decision")).ToContainTextAsync("block · no-orders");
        // The form as it stands, not saved: the rule now names another table, and the read is allowed.
        await page.GetByTestId("rule-tables-0").FillAsync("invoices");
        await page.GetByTestId("role-sim-run").ClickAsync();
        await Assertions.Expect(page.GetByTestId("role-sim-decision")).ToContainTextAsync("allow · agent-safe/reads");
        Assert.Contains("orders", await Cp.Api.GetStringAsync("/api/v1/roles/shop-reader/rules"), StringComparison.Ordinal); // nothing was saved

        // Agent, and its secret: shown once, usable, never shown again.
        await GoAsync(page, "/agents");
        await page.GetByTestId("new-agent").ClickAsync();
        await page.GetByTestId("agent-name").FillAsync("shop-bot");
        await ChooseAsync(page, "agent-role", "shop-reader");
        await ChooseAsync(page, "agent-owner", "bea");
        await page.GetByTestId("agent-description").FillAsync("nightly report");
        await page.GetByTestId("agent-save").ClickAsync();
        await Assertions.Expect(page.GetByTestId("agent-shop-bot")).ToBeVisibleAsync();
        await page.GetByTestId("agent-search").FillAsync("nightly");
        await Assertions.Expect(page.GetByTestId("agent-shop-bot")).ToBeVisibleAsync();
        await page.GetByTestId("agent-search").FillAsync("no-such-thing");
        await Assertions.Expect(page.GetByTestId("no-agents")).ToBeVisibleAsync();

        await GoAsync(page, "/agents/shop-bot");
        await page.GetByTestId("rotate-secret").ClickAsync();
        var secret = (await page.GetByTestId("new-secret-value").TextContentAsync())!.Trim();
        Assert.StartsWith("cs_", secret, StringComparison.Ordinal);
        await page.ScreenshotAsync(new() { Path = Screenshot("agent"), FullPage = true });
        using (var http = new HttpClient())
        {
            var token = await http.PostAsync($"{Cp.Url}/connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "client_credentials", ["client_id"] = "shop-bot", ["client_secret"] = secret,
            }));
            Assert.Equal(HttpStatusCode.OK, token.StatusCode);
            var jwt = JsonDocument.Parse(await token.Content.ReadAsStringAsync()).RootElement.GetProperty("access_token").GetString()!;

            // The token tester says what a sidecar would decide.
            await page.GetByTestId("token-input").FillAsync(jwt);
            await page.GetByTestId("token-test-run").ClickAsync();
            await Assertions.Expect(page.GetByTestId("token-verdict")).ToContainTextAsync("accept it as agent 'shop-bot'");
            await Assertions.Expect(page.GetByTestId("token-claims")).ToContainTextAsync("\"sub\"");
            await page.GetByTestId("token-input").FillAsync(jwt[..^4] + "AAAA");
            await page.GetByTestId("token-test-run").ClickAsync();
            await Assertions.Expect(page.GetByTestId("token-verdict")).ToContainTextAsync("refuse it");
        }
        await page.ReloadAsync();
        await page.Locator("[data-interactive=true]").WaitForAsync();
        await Assertions.Expect(page.GetByTestId("credential-summary")).ToContainTextAsync("has a client secret");
        Assert.DoesNotContain(secret, await page.ContentAsync(), StringComparison.Ordinal);

        // Every change went through the audit log, by the admin who clicked.
        var audit = JsonDocument.Parse(await Cp.Api.GetStringAsync("/api/v1/audit?actor=admin&take=50")).RootElement;
        var changes = audit.EnumerateArray().Select(a => $"{a.GetProperty("action").GetString()} {a.GetProperty("entityType").GetString()} {a.GetProperty("entityName").GetString()}").ToList();
        Assert.Contains("create target shop-db", changes);
        Assert.Contains("create role shop-reader", changes);
        Assert.Contains("create agent shop-bot", changes);
        Assert.Contains("rotate-secret agent shop-bot", changes);
        Assert.DoesNotContain("upstream-secret-1", audit.GetRawText(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Two_admins_editing_one_role_at_once_the_second_is_told_who_changed_it_and_nothing_is_overwritten()
    {
        await Cp.EnsureSuccessAsync(await Cp.Api.PutAsJsonAsync("/api/v1/roles/shared-role", new { description = "first" }));
        var bea = await SignInAsync("bea", "/roles");
        var cid = await SignInAsync("cid", "/roles");
        foreach (var page in new[] { bea, cid })
            await page.GetByTestId("edit-role-shared-role").ClickAsync();

        await bea.GetByTestId("role-description").FillAsync("bea's");
        await bea.GetByTestId("role-save").ClickAsync();
        await Assertions.Expect(bea.GetByTestId("role-shared-role").Locator("xpath=..")).ToContainTextAsync("bea's");

        await cid.GetByTestId("role-description").FillAsync("cid's");
        await cid.GetByTestId("role-save").ClickAsync();
        await Assertions.Expect(cid.GetByTestId("role-problem")).ToContainTextAsync("bea changed it at");
        await cid.ScreenshotAsync(new() { Path = Screenshot("conflict"), FullPage = true });
        Assert.Equal("bea's", JsonDocument.Parse(await Cp.Api.GetStringAsync("/api/v1/roles/shared-role")).RootElement.GetProperty("description").GetString());

        // Reload shows bea's version; cid's change then applies on top of it.
        await cid.GetByTestId("role-reload").ClickAsync();
        await Assertions.Expect(cid.GetByTestId("role-description")).ToHaveValueAsync("bea's");
        await cid.GetByTestId("role-description").FillAsync("cid's, after bea's");
        await cid.GetByTestId("role-save").ClickAsync();
        // Saved once the list shows it (the problem line being absent proves nothing before the save answered).
        await Assertions.Expect(cid.GetByTestId("role-shared-role").Locator("xpath=..")).ToContainTextAsync("cid's, after bea's");
        await Assertions.Expect(cid.GetByTestId("role-problem")).Not.ToBeVisibleAsync();
        Assert.Equal("cid's, after bea's", JsonDocument.Parse(await Cp.Api.GetStringAsync("/api/v1/roles/shared-role")).RootElement.GetProperty("description").GetString());
    }

    [Fact]
    public async Task The_policy_pages_work_from_the_keyboard()
    {
        var page = await SignInAsync("bea", "/roles");

        // Tab to "New role" and press Enter; type into the form; Tab onward to Save and press Enter.
        async Task TabToAsync(string testId)
        {
            for (var i = 0; i < 80; i++)
            {
                await page.Keyboard.PressAsync("Tab");
                if (await page.EvaluateAsync<string?>("() => document.activeElement?.closest('[data-testid]')?.getAttribute('data-testid')") == testId)
                    return;
            }
            Assert.Fail($"{testId} cannot be reached with Tab");
        }
        await TabToAsync("new-role");
        await page.Keyboard.PressAsync("Enter");
        await Assertions.Expect(page.GetByTestId("role-form")).ToBeVisibleAsync();
        await TabToAsync("role-name");
        await page.Keyboard.TypeAsync("keyboard-role");
        await TabToAsync("grant-remove-0"); // no grant yet: a role may reach nothing
        await page.Keyboard.PressAsync("Enter");
        await TabToAsync("role-save");
        await page.Keyboard.PressAsync("Enter");
        await Assertions.Expect(page.GetByTestId("role-keyboard-role")).ToBeVisibleAsync();
        Assert.Equal(System.Net.HttpStatusCode.OK, (await Cp.Api.GetAsync("/api/v1/roles/keyboard-role")).StatusCode);
    }

    [Fact]
    public async Task An_auditor_reads_every_page_but_is_offered_no_change()
    {
        var page = await SignInAsync("aud", "/targets");
        foreach (var (path, readable) in new[] { ("/targets", "targets"), ("/roles", "roles"), ("/agents", "agents-table"), ("/sidecars", "sidecars-table"), ("/settings", "signing-keys"), ("/audit", "audit-table") })
        {
            await GoAsync(page, path);
            await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Level = 4 })).ToBeVisibleAsync();
            foreach (var action in new[] { "new-target", "new-role", "new-agent", "create-sidecar", "rotate-snapshot-key", "new-issuer" })
                Assert.Equal(0, await page.GetByTestId(action).CountAsync());
        }
        await page.GotoAsync("/users");
        await page.WaitForURLAsync(url => new Uri(url).AbsolutePath == "/account/denied");
        await Assertions.Expect(page.GetByText("does not allow this page")).ToBeVisibleAsync();
    }
}
