using Airlock.EndToEnd.Tests.Gateway;
using Airlock.Testing;
using Microsoft.Playwright;
using Npgsql;

namespace Airlock.EndToEnd.Tests;

/// <summary>
/// Approvers in headless Chromium: a statement held at a real sidecar appears on their open page
/// without a reload, with a count in the app bar and a toast; Approve runs it, Deny fails it; the
/// agent's owner is refused; the page works at a phone's width.
/// </summary>
public sealed class ApprovalBrowserTests(ApprovalFixture fixture) : BrowserTest, IClassFixture<ApprovalFixture>
{
    private async Task<IPage> SignInAsync(string user, BrowserNewPageOptions? options = null)
    {
        options ??= new BrowserNewPageOptions();
        options.BaseURL = fixture.Harness.ControlPlane.Url;
        var page = await Browser.NewPageAsync(options);
        await page.GotoAsync("/account/login?returnUrl=%2Fapprovals");
        await page.FillAsync("input[name=userName]", user);
        await page.FillAsync("input[name=password]", ApprovalFixture.Password);
        await page.ClickAsync("button[type=submit]");
        await page.WaitForURLAsync(url => url.EndsWith("/approvals", StringComparison.Ordinal));
        await page.Locator("[data-interactive=true]").WaitForAsync();
        return page;
    }

    private static async Task<long> HeldIdAsync(IPage page)
    {
        var card = page.Locator("[data-testid^=approval-][data-status=pending]").First;
        await card.WaitForAsync(new() { Timeout = 20000 });
        return long.Parse((await card.GetAttributeAsync("data-testid"))!["approval-".Length..]);
    }

    [Fact]
    public async Task A_held_statement_appears_live_and_the_approvers_click_runs_or_fails_it()
    {
        var alice = await SignInAsync("alice");
        var olivia = await SignInAsync("olivia");
        await Assertions.Expect(alice.GetByTestId("no-pending")).ToBeVisibleAsync();

        await using var connection = new NpgsqlConnection(fixture.ConnectionString);
        await connection.OpenAsync();
        await using var delete = new NpgsqlCommand("DELETE FROM orders WHERE id = $1", connection) { Parameters = { new() { Value = 50 } } };
        var running = delete.ExecuteNonQueryAsync();

        // No reload: the card, the app bar's count and a toast arrive over the open circuit.
        var id = await HeldIdAsync(alice);
        await Assertions.Expect(alice.GetByTestId($"approval-sql-{id}")).ToHaveTextAsync("DELETE FROM orders WHERE id = $1");
        await Assertions.Expect(alice.GetByTestId($"approval-parameters-{id}")).ToContainTextAsync("$1 = 50");
        await Assertions.Expect(alice.GetByTestId("approval-count")).ToHaveAttributeAsync("data-count", "1");
        await Assertions.Expect(alice.Locator(".mud-snackbar")).ToContainTextAsync($"Approval request #{id}: deployer on pg");
        // The owner sees it too, is not counted as an approver of it, and is refused.
        await Assertions.Expect(olivia.GetByTestId($"approval-{id}")).ToBeVisibleAsync(new() { Timeout = 20000 });
        await Assertions.Expect(olivia.GetByTestId("approval-count")).ToHaveAttributeAsync("data-count", "0");
        await olivia.GetByTestId($"approve-{id}").ClickAsync();
        await Assertions.Expect(olivia.GetByTestId("approval-error")).ToContainTextAsync("you own agent 'deployer'");
        Assert.False(running.IsCompleted);

        await alice.GetByTestId($"approval-comment-{id}").FillAsync("checked with the team");
        await alice.GetByTestId($"approve-{id}").ClickAsync();
        Assert.Equal(1, await running.WaitAsync(TimeSpan.FromSeconds(20)));
        await Assertions.Expect(alice.GetByTestId("no-pending")).ToBeVisibleAsync();
        await Assertions.Expect(alice.GetByTestId("approval-count")).ToHaveAttributeAsync("data-count", "0");

        // Bob, on a phone, opens the request from its link and denies it.
        await using var update = new NpgsqlCommand("DELETE FROM orders WHERE id = 51", connection);
        var second = update.ExecuteNonQueryAsync();
        var phone = await SignInAsync("bob", new BrowserNewPageOptions { ViewportSize = new() { Width = 390, Height = 844 }, IsMobile = true, HasTouch = true });
        var secondId = await HeldIdAsync(phone);
        await phone.GotoAsync($"/approvals/{secondId}");
        await phone.Locator("[data-interactive=true]").WaitForAsync();
        var deny = phone.GetByTestId($"deny-{secondId}");
        await Assertions.Expect(deny).ToBeInViewportAsync();
        var box = await deny.BoundingBoxAsync();
        Assert.True(box is not null && box.X + box.Width <= 390, $"the Deny button is off a phone's screen: {box?.X} + {box?.Width}");
        await phone.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Path.GetTempPath(), "airlock-approval-phone.png") });
        await deny.TapAsync();
        var e = await Assert.ThrowsAsync<PostgresException>(() => second.WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Equal($"approval request #{secondId} for rule \"deletes-need-approval\" was denied by bob; nothing was run", e.MessageText);
        await Assertions.Expect(phone.GetByTestId($"approval-status-{secondId}")).ToHaveTextAsync("denied");
    }
}
