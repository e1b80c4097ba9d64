using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Airlock.Testing;
using Microsoft.Playwright;
using Npgsql;

namespace Airlock.EndToEnd.Tests;

/// <summary>
/// Two control-plane processes on one PostgreSQL store with the Redis backplane (the test command
/// starts Redis), and a sidecar connected to replica A only. Through replica B: a policy change reaches
/// the sidecar within a second, an approver watching B sees a statement held through A appear and
/// approves it there, a live session recorded through A grows on B's page and B terminates it, and a
/// decision made on B while A is down reaches the sidecar when A is back.
/// </summary>
public sealed class ReplicaTests : BrowserTest
{
    [Fact]
    public async Task Approvals_policy_changes_and_terminate_work_across_two_replicas()
    {
        var store = await TestPostgres.CreateDatabaseAsync("replicas");
        try
        {
            await using var harness = await GatewayHarness.StartAsync(storeConnectionString: store, controlPlaneArgs: [$"--Airlock:Redis={ControlPlaneProcess.TestRedis}"]);
            var a = harness.ControlPlane;
            var (b, apiB) = await a.StartReplicaAsync(store, ControlPlaneProcess.TestRedis);
            await using var replica = b;
            using var replicaApi = apiB;

            await using (var direct = new NpgsqlConnection(harness.DirectConnectionString))
            {
                await direct.OpenAsync();
                await using var setup = new NpgsqlCommand("CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders SELECT generate_series(1, 10);", direct);
                await setup.ExecuteNonQueryAsync();
            }
            Assert.Equal(HttpStatusCode.Created, (await apiB.PostAsJsonAsync("/api/v1/users", new { userName = "alice", password = "alice-long-password", role = "Approver" })).StatusCode);

            // A policy change made through B reaches the sidecar streaming from A within a second.
            var (_, ready) = await harness.Sidecar.ReadyAsync();
            var version = ready.GetProperty("version").GetInt64();
            var put = await apiB.PutAsJsonAsync("/api/v1/roles/deployer", new
            {
                grants = new[] { new { target = "pg" } },
                rules = new object[]
                {
                    new { name = "reads", action = "allow", match = new { classes = new[] { "read" } } },
                    new { name = "deletes-need-approval", action = "require_approval", match = new { commands = new[] { "DELETE" } }, approval = new { mode = "hold", timeoutSeconds = 120 } },
                },
            });
            var changed = Stopwatch.StartNew(); // from the change committed (the PUT answered), as the policy-propagation benchmark measures
            Assert.Equal(HttpStatusCode.OK, put.StatusCode);
            await harness.Sidecar.WaitForVersionAsync(version + 1, TimeSpan.FromSeconds(30));
            var propagation = changed.Elapsed;
            Console.WriteLine($"replicas: a policy change through B reached the sidecar on A in {propagation.TotalMilliseconds:F0} ms");
            Assert.True(propagation < TimeSpan.FromSeconds(1), $"a change through replica B took {propagation.TotalMilliseconds:F0} ms to reach the sidecar on replica A");
            Assert.Equal(HttpStatusCode.OK, (await apiB.PutAsJsonAsync("/api/v1/agents/deployer", new { role = "deployer", owner = "admin" })).StatusCode);
            var token = await GatewayHarness.TokenAsync(a, "deployer");
            await GatewayHarness.WaitUntilAgentConnectsAsync(harness.SidecarConnectionStringFor(token, "deployer"));

            // Alice watches replica B's console; the statement is held through the sidecar on A.
            var page = await Browser.NewPageAsync(new BrowserNewPageOptions { BaseURL = b.Url });
            await page.GotoAsync("/account/login?returnUrl=%2Fapprovals");
            await page.FillAsync("input[name=userName]", "alice");
            await page.FillAsync("input[name=password]", "alice-long-password");
            await page.ClickAsync("button[type=submit]");
            await page.WaitForURLAsync(url => url.EndsWith("/approvals", StringComparison.Ordinal));
            await page.Locator("[data-interactive=true]").WaitForAsync();

            await using var agent = new NpgsqlConnection(harness.SidecarConnectionStringFor(token, "deployer"));
            await agent.OpenAsync();
            await using var delete = new NpgsqlCommand("DELETE FROM orders WHERE id = 3", agent);
            var held = delete.ExecuteNonQueryAsync();
            var card = page.Locator("[data-testid^=approval-][data-status=pending]").First;
            await card.WaitForAsync(new() { Timeout = 20000 });
            var id = long.Parse((await card.GetAttributeAsync("data-testid"))!["approval-".Length..]);
            await Assertions.Expect(page.GetByTestId("approval-count")).ToHaveAttributeAsync("data-count", "1");
            await page.GetByTestId($"approve-{id}").ClickAsync();
            Assert.Equal(1, await held.WaitAsync(TimeSpan.FromSeconds(20)));

            // The session is live on A's sidecar (its recording goes to A); B's console shows it grow, and B terminates it.
            var session = JsonDocument.Parse(await apiB.GetStringAsync($"/api/v1/approvals/{id}")).RootElement.GetProperty("session").GetGuid();
            await PolicySyncTests.Eventually(async () => (await apiB.GetAsync($"/api/v1/sessions/{session}")).IsSuccessStatusCode);
            await page.GotoAsync($"/sessions/{session}");
            await page.Locator("[data-interactive=true]").WaitForAsync();
            await using (var marker = new NpgsqlCommand("SELECT 'seen live on replica B'", agent))
                await marker.ExecuteScalarAsync();
            await Assertions.Expect(page.GetByTestId("timeline")).ToContainTextAsync("seen live on replica B", new() { Timeout = 20000 });
            Assert.Equal(HttpStatusCode.Accepted, (await apiB.PostAsJsonAsync($"/api/v1/sessions/{session}/terminate", new { reason = "replica test" })).StatusCode);
            // The command reaches the sidecar through A over the backplane: the session ends with the reason.
            Exception? ended = null;
            await PolicySyncTests.Eventually(async () =>
            {
                try
                {
                    await using var after = new NpgsqlCommand("SELECT 1", agent);
                    await after.ExecuteScalarAsync();
                    await Task.Delay(100);
                    return false;
                }
                catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
                {
                    ended = e;
                    return true;
                }
            }, seconds: 20);
            Assert.Contains("replica test", (ended as PostgresException)?.MessageText ?? ended!.InnerException?.Message ?? ended.Message, StringComparison.Ordinal);

            // The sidecar's replica goes down while a statement is held; the decision is made on B meanwhile
            // (no replica can reach the sidecar) and delivered when the sidecar is back on A — once.
            await page.GotoAsync("/approvals");
            await page.Locator("[data-interactive=true]").WaitForAsync();
            await using var again = new NpgsqlConnection(harness.SidecarConnectionStringFor(token, "deployer"));
            await again.OpenAsync();
            await using var second = new NpgsqlCommand("DELETE FROM orders WHERE id = 4", again);
            var waiting = second.ExecuteNonQueryAsync();
            var secondCard = page.Locator("[data-testid^=approval-][data-status=pending]").First;
            await secondCard.WaitForAsync(new() { Timeout = 20000 });
            var secondId = long.Parse((await secondCard.GetAttributeAsync("data-testid"))!["approval-".Length..]);
            await a.StopAsync();
            await page.GetByTestId($"approve-{secondId}").ClickAsync();
            await Assertions.Expect(page.GetByTestId($"approval-{secondId}")).ToHaveCountAsync(0); // decided: off the pending list
            await Task.Delay(2000);
            Assert.False(waiting.IsCompleted);
            await a.RestartAsync();
            Assert.Equal(1, await waiting.WaitAsync(TimeSpan.FromSeconds(60)));
            await PolicySyncTests.Eventually(async () =>
                JsonDocument.Parse(await apiB.GetStringAsync($"/api/v1/approvals/{secondId}")).RootElement.GetProperty("status").GetString() == "executed", seconds: 30);
        }
        finally
        {
            await TestPostgres.DropDatabaseAsync(store);
        }
    }
}
