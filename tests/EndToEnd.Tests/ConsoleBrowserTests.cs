using Airlock.Testing;
using Microsoft.Playwright;

namespace Airlock.EndToEnd.Tests;

/// <summary>
/// Headless Chromium from Debian's package, driven by Playwright (never a downloaded browser), with
/// the flags this closed network needs.
/// </summary>
public abstract class BrowserTest : IAsyncLifetime
{
    private IPlaywright? _playwright;
    private IBrowser? _browser;

    protected IBrowser Browser => _browser ?? throw new InvalidOperationException("the browser is not started");

    public async Task InitializeAsync()
    {
        _playwright = await Playwright.CreateAsync();
        _browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Environment.GetEnvironmentVariable("AIRLOCK_CHROMIUM") ?? "/usr/bin/chromium",
            Headless = true,
            // --disable-dev-shm-usage: containers often give /dev/shm 64 MB, where Chromium's renderers crash.
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"],
        });
    }

    public async Task DisposeAsync()
    {
        if (_browser is not null)
            await _browser.DisposeAsync();
        _playwright?.Dispose();
    }

    /// <summary>A new browser context signed in as <paramref name="user"/> through the form, on <paramref name="path"/> with its circuit live.</summary>
    protected async Task<IPage> SignInAsync(string baseUrl, string user, string password, string path)
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions { BaseURL = baseUrl, ViewportSize = new() { Width = 1366, Height = 900 } });
        var page = await context.NewPageAsync();
        await page.GotoAsync($"/account/login?returnUrl={Uri.EscapeDataString(path)}");
        await page.FillAsync("input[name=userName]", user);
        await page.FillAsync("input[name=password]", password);
        await page.ClickAsync("button[type=submit]");
        await page.WaitForURLAsync(url => new Uri(url).AbsolutePath == path);
        await page.Locator("[data-interactive=true]").WaitForAsync();
        return page;
    }

    /// <summary>Goes to a console page and waits for its live circuit.</summary>
    protected static async Task GoAsync(IPage page, string path)
    {
        await page.GotoAsync(path);
        await page.Locator("[data-interactive=true]").WaitForAsync();
    }

    /// <summary>Opens a MudSelect and picks the option with exactly this text.</summary>
    protected static async Task ChooseAsync(IPage page, string testId, string option)
    {
        await page.GetByTestId(testId).Locator("xpath=ancestor::div[contains(@class,'mud-select')][1]").ClickAsync();
        await page.Locator(".mud-popover-open .mud-list-item").Filter(new() { HasTextRegex = new System.Text.RegularExpressions.Regex($"^\\s*{System.Text.RegularExpressions.Regex.Escape(option)}\\s*$") }).First.ClickAsync();
        await page.Locator(".mud-popover-open").WaitForAsync(new() { State = WaitForSelectorState.Detached });
    }
}

/// <summary>The console in headless Chromium (Debian's package) against a real control plane and sidecar.</summary>
public sealed class ConsoleBrowserTests : BrowserTest
{
    [Fact]
    public async Task An_admin_signs_in_and_sees_the_sidecar_online_then_offline_without_a_reload()
    {
        await using var cp = await ControlPlaneProcess.StartAsync();
        await using var sidecar = SidecarProcess.Start(cp.Url, await cp.CreateSidecarAsync("edge-1"));
        await sidecar.WaitForVersionAsync(1);

        var page = await Browser.NewPageAsync(new BrowserNewPageOptions { BaseURL = cp.Url });
        await page.GotoAsync("/sidecars");
        // Not signed in: the sign-in form, which then returns to the page asked for.
        await page.WaitForURLAsync(url => url.Contains("/account/login", StringComparison.Ordinal));
        await page.FillAsync("input[name=userName]", "admin");
        await page.FillAsync("input[name=password]", ControlPlaneProcess.AdminPassword);
        await page.ClickAsync("button[type=submit]");
        await page.WaitForURLAsync(url => url.EndsWith("/sidecars", StringComparison.Ordinal));

        var state = page.GetByTestId("state-edge-1");
        await Assertions.Expect(state).ToHaveTextAsync("online", new() { Timeout = 15000 });
        await Assertions.Expect(page.GetByTestId("versions-edge-1")).ToHaveTextAsync("1 / 1");
        await Assertions.Expect(page.GetByTestId("signed-in-user")).ToHaveTextAsync("admin");

        // The sidecar goes away; the page follows over its live circuit, with no reload.
        await page.Locator("[data-interactive=true]").WaitForAsync();
        await sidecar.Process.KillAsync();
        await Assertions.Expect(state).ToHaveTextAsync("offline", new() { Timeout = 30000 });
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Path.GetTempPath(), "airlock-sidecars-page.png") });
    }

    [Fact]
    public async Task An_open_tab_of_a_disabled_admin_is_signed_out_without_a_reload()
    {
        await using var cp = await ControlPlaneProcess.StartAsync(extraArgs: ["--Airlock:Console:RevalidationSeconds=2"]);
        Assert.Equal(System.Net.HttpStatusCode.Created, (await cp.Api.PostAsync("/api/v1/users", System.Net.Http.Json.JsonContent.Create(new { userName = "carol", password = "carol-long-password", role = "Admin" }))).StatusCode);
        var page = await Browser.NewPageAsync(new BrowserNewPageOptions { BaseURL = cp.Url });
        await page.GotoAsync("/account/login?returnUrl=%2Fusers");
        await page.FillAsync("input[name=userName]", "carol");
        await page.FillAsync("input[name=password]", "carol-long-password");
        await page.ClickAsync("button[type=submit]");
        await page.WaitForURLAsync(url => url.EndsWith("/users", StringComparison.Ordinal));
        await page.Locator("[data-interactive=true]").WaitForAsync();
        await Assertions.Expect(page.GetByTestId("create-user")).ToBeVisibleAsync();

        // Another admin disables carol: her open tab loses the page by itself, no click, no reload.
        Assert.Equal(System.Net.HttpStatusCode.OK, (await cp.Api.PutAsync("/api/v1/users/carol", System.Net.Http.Json.JsonContent.Create(new { disabled = true }))).StatusCode);
        await page.WaitForURLAsync(url => url.Contains("/account/login", StringComparison.Ordinal), new() { Timeout = 15000 });
    }

    [Fact]
    public async Task A_wrong_password_is_refused_with_a_message()
    {
        await using var cp = await ControlPlaneProcess.StartAsync();
        var page = await Browser.NewPageAsync(new BrowserNewPageOptions { BaseURL = cp.Url });
        await page.GotoAsync("/account/login");
        await page.FillAsync("input[name=userName]", "admin");
        await page.FillAsync("input[name=password]", "not-the-password");
        await page.ClickAsync("button[type=submit]");
        await Assertions.Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("Wrong user name or password");
    }
}

/// <summary>A signed-in person changes their own password in the console.</summary>
public sealed class PasswordPageBrowserTests : BrowserTest
{
    [Fact]
    public async Task A_user_changes_their_own_password_after_proving_the_current_one_and_every_session_ends()
    {
        await using var cp = await ControlPlaneProcess.StartAsync();
        Assert.Equal(System.Net.HttpStatusCode.Created, (await cp.Api.PostAsync("/api/v1/users",
            System.Net.Http.Json.JsonContent.Create(new { userName = "paula", password = "paula-long-password", role = "Auditor" }))).StatusCode);
        var (otherBrowser, _) = await ConsoleSignIn.SignInAsync(cp.Url, "paula", "paula-long-password");
        using var other = otherBrowser;
        Assert.Equal(System.Net.HttpStatusCode.OK, (await other.GetAsync("/api/v1/sessions")).StatusCode);

        var page = await Browser.NewPageAsync(new BrowserNewPageOptions { BaseURL = cp.Url });
        await page.GotoAsync("/account/login?returnUrl=%2Fsessions");
        await page.FillAsync("input[name=userName]", "paula");
        await page.FillAsync("input[name=password]", "paula-long-password");
        await page.ClickAsync("button[type=submit]");
        await page.WaitForURLAsync(url => url.EndsWith("/sessions", StringComparison.Ordinal));
        await page.Locator("[data-interactive=true]").WaitForAsync();
        await page.GetByTestId("account-password").ClickAsync();
        await page.WaitForURLAsync(url => url.EndsWith("/account/password", StringComparison.Ordinal));
        await page.Locator("[data-interactive=true]").WaitForAsync();

        async Task TryAsync(string current, string next, string repeat, string error)
        {
            await page.GetByTestId("current-password").FillAsync(current);
            await page.GetByTestId("new-password").FillAsync(next);
            await page.GetByTestId("repeat-password").FillAsync(repeat);
            await page.GetByTestId("change-password").ClickAsync();
            await Assertions.Expect(page.GetByTestId("password-error")).ToContainTextAsync(error);
        }
        await TryAsync("paula-long-password", "a-new-long-password", "a-new-long-passw0rd", "the two entries differ");
        await TryAsync("paula-long-password", "short", "short", "at least 12 characters");
        await TryAsync("not-her-password", "a-new-long-password", "a-new-long-password", "current password: not correct");
        await page.GetByTestId("current-password").FillAsync("paula-long-password");
        await page.GetByTestId("new-password").FillAsync("a-new-long-password");
        await page.GetByTestId("repeat-password").FillAsync("a-new-long-password");
        await page.GetByTestId("change-password").ClickAsync();
        await Assertions.Expect(page.GetByTestId("password-changed")).ToBeVisibleAsync();

        // Her other browser's session has ended; the old password no longer signs in, the new one does.
        Assert.Equal(System.Net.HttpStatusCode.Unauthorized, (await other.GetAsync("/api/v1/sessions")).StatusCode);
        Assert.Contains("error=invalid", (await ConsoleSignIn.SignInAsync(cp.Url, "paula", "paula-long-password")).Location, StringComparison.Ordinal);
        Assert.Equal("/", (await ConsoleSignIn.SignInAsync(cp.Url, "paula", "a-new-long-password")).Location);
        var audit = await cp.Api.GetStringAsync("/api/v1/audit?take=20&entityType=user");
        Assert.Contains("password-change", audit, StringComparison.Ordinal);
        Assert.DoesNotContain("a-new-long-password", audit, StringComparison.Ordinal);
    }
}

/// <summary>The session replay in the browser: the timeline, the verification badge, and events arriving live.</summary>
public sealed class SessionPagesBrowserTests : BrowserTest
{
    [Fact]
    public async Task A_live_session_grows_on_screen_and_ends_verified()
    {
        await using var cp = await ControlPlaneProcess.StartAsync();
        await using var sidecar = SidecarProcess.Start(cp.Url, await cp.CreateSidecarAsync("edge-1"));
        await sidecar.WaitForVersionAsync(1);
        var id = await sidecar.StartSyntheticSessionAsync(statements: 40, delayMs: 100);

        var page = await Browser.NewPageAsync(new BrowserNewPageOptions { BaseURL = cp.Url });
        await page.GotoAsync("/account/login?returnUrl=%2Fsessions");
        await page.FillAsync("input[name=userName]", "admin");
        await page.FillAsync("input[name=password]", ControlPlaneProcess.AdminPassword);
        await page.ClickAsync("button[type=submit]");
        await page.WaitForURLAsync(url => url.EndsWith("/sessions", StringComparison.Ordinal));
        await Assertions.Expect(page.GetByTestId($"status-{id}")).ToHaveTextAsync("live", new() { Timeout = 15000 });
        // Click only once the live circuit drives the page, not its prerendered HTML.
        await page.Locator("[data-interactive=true]").WaitForAsync();

        await page.GetByTestId($"session-{id}").ClickAsync();
        await Assertions.Expect(page.GetByTestId("event-1")).ToBeVisibleAsync();
        // Still live: later events appear without a reload, then the session ends and verifies.
        await Assertions.Expect(page.GetByTestId("event-30")).ToBeVisibleAsync(new() { Timeout = 20000 });
        await Assertions.Expect(page.GetByTestId("session-status")).ToHaveTextAsync("ended", new() { Timeout = 20000 });
        await Assertions.Expect(page.GetByTestId("event-42")).ToBeVisibleAsync();
        await Assertions.Expect(page.GetByTestId($"chain-{id}")).ToContainTextAsync("verified");
        await page.GetByTestId("verify").ClickAsync();
        await Assertions.Expect(page.GetByTestId("message")).ToContainTextAsync("The chain of 42 events verifies");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Path.GetTempPath(), "airlock-session-page.png"), FullPage = false });
    }

    [Fact]
    public async Task An_admin_terminates_a_live_session_only_after_confirming_with_a_reason()
    {
        await using var harness = await GatewayHarness.StartAsync();
        await using var agent = new Npgsql.NpgsqlConnection(harness.SidecarConnectionString);
        await agent.OpenAsync();
        await using (var first = new Npgsql.NpgsqlCommand("SELECT 1", agent))
            await first.ExecuteScalarAsync();
        string? id = null;
        await PolicySyncTests.Eventually(async () =>
        {
            var live = System.Text.Json.JsonDocument.Parse(await harness.ControlPlane.Api.GetStringAsync("/api/v1/sessions?status=live")).RootElement;
            id = live.GetArrayLength() > 0 ? live[0].GetProperty("id").GetString() : null;
            return id is not null;
        });

        var page = await Browser.NewPageAsync(new BrowserNewPageOptions { BaseURL = harness.ControlPlane.Url });
        await page.GotoAsync($"/account/login?returnUrl=%2Fsessions%2F{id}");
        await page.FillAsync("input[name=userName]", "admin");
        await page.FillAsync("input[name=password]", ControlPlaneProcess.AdminPassword);
        await page.ClickAsync("button[type=submit]");
        await page.WaitForURLAsync(url => url.EndsWith($"/sessions/{id}", StringComparison.Ordinal));
        await page.Locator("[data-interactive=true]").WaitForAsync();

        // A click asks first; keeping it running changes nothing.
        await page.GetByTestId("terminate").ClickAsync();
        await Assertions.Expect(page.GetByTestId("terminate-now")).ToBeDisabledAsync();
        await page.GetByTestId("terminate-cancel").ClickAsync();
        await Assertions.Expect(page.GetByTestId("terminate-confirm")).ToHaveCountAsync(0);
        await using (var still = new Npgsql.NpgsqlCommand("SELECT 2", agent))
            Assert.Equal(2, await still.ExecuteScalarAsync());

        await page.GetByTestId("terminate").ClickAsync();
        await page.GetByTestId("terminate-reason").FillAsync("runaway job, see ticket 42");
        await page.GetByTestId("terminate-now").ClickAsync();
        await Assertions.Expect(page.GetByTestId("message")).ToContainTextAsync("Termination sent to the sidecar.");
        Exception? ended = null;
        await PolicySyncTests.Eventually(async () =>
        {
            try
            {
                await using var after = new Npgsql.NpgsqlCommand("SELECT 3", agent);
                await after.ExecuteScalarAsync();
                return false;
            }
            catch (Exception e) when (e is Npgsql.NpgsqlException or InvalidOperationException)
            {
                ended = e;
                return true;
            }
        });
        Assert.Contains("runaway job, see ticket 42", (ended as Npgsql.PostgresException)?.MessageText ?? ended!.Message, StringComparison.Ordinal);
        var audit = await harness.ControlPlane.Api.GetStringAsync("/api/v1/audit?take=20&entityType=session");
        Assert.Contains("runaway job, see ticket 42", audit, StringComparison.Ordinal);
        await Assertions.Expect(page.GetByTestId("session-status")).Not.ToHaveTextAsync("live", new() { Timeout = 20000 });
    }
}
