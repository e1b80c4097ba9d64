using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Airlock.Testing;
using Microsoft.Playwright;

namespace Airlock.EndToEnd.Tests;

/// <summary>
/// <c>POST /api/v1/simulate</c> and the console's simulator page against a real control plane: the
/// sidecar's classifier and evaluator on the stored policy, per statement.
/// </summary>
public sealed class SimulatorFixture : IAsyncLifetime
{
    public ControlPlaneProcess Cp { get; private set; } = default!;

    private const string Policy = """
        targets:
        - {name: db, sidecar: edge-1, listenPort: 16432, upstream: {host: 127.0.0.1, port: 5432, database: app, username: app, tls: disable}}
        - {name: other, sidecar: edge-1, listenPort: 16433, upstream: {host: 127.0.0.1, port: 5432, database: app, username: app, tls: disable}}
        roles:
        - name: reader
          baseline: agent-safe
          grants: [{target: db}]
        - name: writer
          baseline: agent-safe
          grants: [{target: db}]
          rules:
          - {name: writes, action: allow, match: {classes: [write]}}
          - {name: no-customers-delete, action: block, match: {commands: [DELETE], tables: [customers]}, message: customers are kept}
          - {name: approve-orders, action: require_approval, match: {tables: [orders], classes: [write]}}
        - name: masked
          baseline: agent-safe
          grants: [{target: db}]
          rules:
          - {name: pii, action: mask, mask: {columns: [customers.email, customers.phone], strategy: hash}}
        agents:
        - {name: bot, owner: admin, role: reader}
        - {name: deployer, owner: admin, role: writer}
        """;

    public async Task InitializeAsync()
    {
        Cp = await ControlPlaneProcess.StartAsync();
        await Cp.CreateSidecarAsync("edge-1");
        var put = await Cp.PutPolicyAsync(Policy);
        Assert.True(put.IsSuccessStatusCode, await put.Content.ReadAsStringAsync());
    }

    public async Task DisposeAsync() => await Cp.DisposeAsync();
}

public sealed class SimulatorTests(SimulatorFixture fixture) : BrowserTest, IClassFixture<SimulatorFixture>
{

    private static async Task<JsonElement> SimulateAsync(ControlPlaneProcess cp, object body, HttpStatusCode expected = HttpStatusCode.OK)
    {
        var response = await cp.Api.PostAsJsonAsync("/api/v1/simulate", body);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"{response.StatusCode}: {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    [Fact]
    public async Task Masked_output_columns_and_refused_routes_are_shown_with_their_rule()
    {
        var plain = await SimulateAsync(fixture.Cp, new { role = "masked", target = "db", sql = "SELECT id, email AS e FROM customers; SELECT * FROM customers c" });
        Assert.Equal("allow", plain.GetProperty("decision").GetString());
        var first = plain.GetProperty("statements")[0].GetProperty("masked");
        Assert.Equal("customers.email", Assert.Single(first.EnumerateArray()).GetProperty("column").GetString());
        Assert.Equal("hash", first[0].GetProperty("strategy").GetString());
        Assert.Equal(["customers.email", "customers.phone"], plain.GetProperty("statements")[1].GetProperty("masked").EnumerateArray().Select(m => m.GetProperty("column").GetString()));

        var refused = await SimulateAsync(fixture.Cp, new { role = "masked", target = "db", sql = "SELECT upper(email) FROM customers" });
        Assert.Equal("block", refused.GetProperty("decision").GetString());
        Assert.Equal("pii", refused.GetProperty("rule").GetString());
        Assert.Contains("expression", refused.GetProperty("reason").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_api_answers_per_statement_with_the_deciding_rule()
    {
        var cp = fixture.Cp;
        var read = await SimulateAsync(cp, new { agent = "bot", target = "db", sql = "SELECT * FROM customers; DROP TABLE customers" });
        Assert.Equal("block", read.GetProperty("decision").GetString());
        Assert.True(read.GetProperty("readOnlySession").GetBoolean());
        var statements = read.GetProperty("statements").EnumerateArray().ToList();
        Assert.Equal(2, statements.Count);
        Assert.Equal(("SELECT", "read", "allow", "agent-safe/reads"),
            (statements[0].GetProperty("command").GetString(), statements[0].GetProperty("classification").GetString(), statements[0].GetProperty("decision").GetString(), statements[0].GetProperty("rule").GetString()));
        Assert.Equal(("DROP TABLE", "ddl", "block", "default-deny"),
            (statements[1].GetProperty("command").GetString(), statements[1].GetProperty("classification").GetString(), statements[1].GetProperty("decision").GetString(), statements[1].GetProperty("rule").GetString()));
        Assert.Equal("customers", statements[0].GetProperty("tablesRead")[0].GetString());

        var blocked = await SimulateAsync(cp, new { role = "writer", target = "db", sql = "delete from public.customers where id = $1" });
        Assert.Equal("no-customers-delete", blocked.GetProperty("rule").GetString());
        Assert.Contains("customers are kept", blocked.GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.False(blocked.GetProperty("readOnlySession").GetBoolean());
        var approval = await SimulateAsync(cp, new { agent = "deployer", target = "db", sql = "UPDATE orders SET state = 'x' WHERE id = 1" });
        Assert.Equal(("require_approval", "approve-orders"), (approval.GetProperty("decision").GetString(), approval.GetProperty("rule").GetString()));
        var unfiltered = await SimulateAsync(cp, new { agent = "deployer", target = "db", sql = "UPDATE orders SET state = 'x'" });
        Assert.Equal(("block", "agent-safe/filtered-writes"), (unfiltered.GetProperty("decision").GetString(), unfiltered.GetProperty("rule").GetString()));
        var allowed = await SimulateAsync(cp, new { agent = "deployer", target = "db", sql = "INSERT INTO audit VALUES (1)" });
        Assert.Equal(("allow", "writes"), (allowed.GetProperty("decision").GetString(), allowed.GetProperty("rule").GetString()));
        var notGranted = await SimulateAsync(cp, new { agent = "bot", target = "other", sql = "SELECT 1" });
        Assert.Equal(("block", "no-grant"), (notGranted.GetProperty("decision").GetString(), notGranted.GetProperty("rule").GetString()));
    }

    [Theory]
    [InlineData("{\"agent\":\"nobody\",\"target\":\"db\",\"sql\":\"SELECT 1\"}", "agent 'nobody' does not exist")]
    [InlineData("{\"agent\":\"bot\",\"target\":\"nowhere\",\"sql\":\"SELECT 1\"}", "target 'nowhere' does not exist")]
    [InlineData("{\"agent\":\"bot\",\"role\":\"reader\",\"target\":\"db\",\"sql\":\"SELECT 1\"}", "exactly one of 'agent' or 'role'")]
    [InlineData("{\"agent\":\"bot\",\"target\":\"db\"}", "give the SQL text")]
    public async Task Bad_requests_get_a_problem_naming_what_is_wrong(string body, string expected)
    {
        var cp = fixture.Cp;
        var response = await cp.Api.PostAsync("/api/v1/simulate", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(expected, await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_console_page_answers_as_you_type()
    {
        var cp = fixture.Cp;
        var page = await Browser.NewPageAsync(new BrowserNewPageOptions { BaseURL = cp.Url });
        await page.GotoAsync("/account/login?returnUrl=%2Fsimulator");
        await page.FillAsync("input[name=userName]", "admin");
        await page.FillAsync("input[name=password]", ControlPlaneProcess.AdminPassword);
        await page.ClickAsync("button[type=submit]");
        await page.WaitForURLAsync(url => url.EndsWith("/simulator", StringComparison.Ordinal));
        await page.Locator("[data-interactive=true]").WaitForAsync();

        var sql = page.Locator("textarea[data-testid=simulator-sql], [data-testid=simulator-sql] textarea").First;
        await sql.PressSequentiallyAsync("SELECT 1; DROP TABLE customers", new() { Delay = 5 });
        await Assertions.Expect(page.GetByTestId("simulator-action")).ToHaveTextAsync("block", new() { Timeout = 15000 });
        await Assertions.Expect(page.GetByTestId("statement-rule").Nth(1)).ToHaveTextAsync("default-deny");
        await Assertions.Expect(page.GetByTestId("statement-decision").Nth(0)).ToHaveTextAsync("allow");

        await sql.FillAsync("SELECT count(*) FROM customers");
        await Assertions.Expect(page.GetByTestId("simulator-action")).ToHaveTextAsync("allow", new() { Timeout = 15000 });
        await Assertions.Expect(page.GetByTestId("statement-rule")).ToHaveCountAsync(1);
        await Assertions.Expect(page.GetByTestId("statement-rule")).ToHaveTextAsync("agent-safe/reads");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Path.GetTempPath(), "airlock-simulator-page.png") });
    }
}
