using System.Text.Json;
using Airlock.Testing;
using Microsoft.Playwright;

namespace Airlock.EndToEnd.Tests;

/// <summary>
/// axe-core (from npm, injected by Playwright) over every console page, in light and in dark mode:
/// no serious or critical violation of WCAG 2 A/AA rules.
/// </summary>
public sealed class AccessibilityTests(ConsolePagesFixture fixture) : BrowserTest, IClassFixture<ConsolePagesFixture>
{
    private static readonly string[] Pages =
        ["/", "/sessions", "/approvals", "/agents", "/roles", "/targets", "/simulator", "/sidecars", "/audit", "/settings", "/users", "/webhooks", "/account/password"];

    private static string AxeScript => Path.Combine(Binaries.RepositoryRoot, "tests", "node", "node_modules", "axe-core", "axe.min.js");

    /// <summary>The serious and critical violations on the page as it is now, one line each with where.</summary>
    private static async Task<IReadOnlyList<string>> ViolationsAsync(IPage page)
    {
        await page.AddScriptTagAsync(new() { Path = AxeScript });
        var json = await page.EvaluateAsync<string>("""
            async () => {
              const result = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
              return JSON.stringify(result.violations
                .filter(v => v.impact === 'serious' || v.impact === 'critical')
                .map(v => v.id + ' (' + v.impact + '): ' + v.help + ' — ' + v.nodes.slice(0, 3).map(n => n.target.join(' ') + ' [' + (n.any[0]?.message ?? '') + ']').join(' | ')));
            }
            """);
        return JsonSerializer.Deserialize<List<string>>(json)!;
    }

    [Fact]
    public async Task Every_page_has_no_serious_or_critical_violations_in_light_and_dark_mode()
    {
        Assert.True(File.Exists(AxeScript), $"{AxeScript} is missing: run the test command (it installs tests/node's npm packages)");
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions { BaseURL = fixture.Cp.Url, ViewportSize = new() { Width = 1366, Height = 900 } });
        var page = await context.NewPageAsync();

        var problems = new List<string>();
        await page.GotoAsync("/account/login");
        problems.AddRange((await ViolationsAsync(page)).Select(v => $"/account/login: {v}"));
        await page.FillAsync("input[name=userName]", "admin");
        await page.FillAsync("input[name=password]", ControlPlaneProcess.AdminPassword);
        await page.ClickAsync("button[type=submit]");
        await page.WaitForURLAsync(url => new Uri(url).AbsolutePath == "/");

        foreach (var dark in new[] { false, true })
        {
            foreach (var path in Pages)
            {
                await page.GotoAsync(path);
                await page.Locator("[data-interactive=true]").WaitForAsync();
                await page.Locator(".mud-progress-linear").WaitForAsync(new() { State = WaitForSelectorState.Detached });
                if (dark != await page.EvaluateAsync<bool>("() => document.cookie.includes('airlock.dark=true')"))
                {
                    await page.GetByTestId("toggle-dark").ClickAsync();
                    // Away from the button, so its tooltip (fading in, half transparent) is not what gets judged.
                    await page.Mouse.MoveAsync(600, 600);
                    await page.Locator(".mud-popover-open").WaitForAsync(new() { State = WaitForSelectorState.Detached });
                }
                await Assertions.Expect(page.GetByTestId("toggle-dark")).ToHaveAttributeAsync("aria-label", dark ? "Switch to light mode" : "Switch to dark mode");
                problems.AddRange((await ViolationsAsync(page)).Select(v => $"{path} ({(dark ? "dark" : "light")}): {v}"));
                if (path == "/")
                    await page.ScreenshotAsync(new() { Path = Path.Combine(Path.GetTempPath(), "airlock-console", $"dashboard-{(dark ? "dark" : "light")}.png"), FullPage = true });
            }
        }
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }
}
