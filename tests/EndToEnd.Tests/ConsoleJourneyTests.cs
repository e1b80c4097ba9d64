using System.Buffers.Text;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Airlock.Testing;
using Microsoft.Playwright;
using Npgsql;

namespace Airlock.EndToEnd.Tests;

/// <summary>
/// The first hour, clicked through in headless Chromium from an empty store: an admin enrolls a
/// sidecar, adds a target, creates a role from the agent-safe baseline and an agent with a public
/// key; the agent connects with psql through the sidecar; its blocked statement shows on the
/// dashboard; its held statement is approved by an approver in a second browser; an auditor replays
/// the session and sees it verify. Every page visited is saved as a screenshot.
/// </summary>
public sealed class ConsoleJourneyTests : BrowserTest
{
    private const string Password = "journey-long-password";
    private static readonly string Shots = Path.Combine(Path.GetTempPath(), "airlock-console", "journey");
    private int _shot;

    private async Task ShotAsync(IPage page, string name)
    {
        Directory.CreateDirectory(Shots);
        await page.ScreenshotAsync(new() { Path = Path.Combine(Shots, $"{++_shot:D2}-{name}.png"), FullPage = true });
    }

    [Fact]
    public async Task From_an_empty_store_to_an_approved_statement_and_a_verified_replay_by_clicking()
    {
        // A database to protect, and the people besides the bootstrap admin.
        await GatewayHarness.EnsureLoginRolesAsync();
        var database = await GatewayHarness.CreateDatabaseAsync();
        await using (var setup = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(TestPostgres.ServerConnectionString) { Database = database, Pooling = false }.ConnectionString))
        {
            await setup.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE TABLE customers (id int PRIMARY KEY, name text); INSERT INTO customers VALUES (1, 'Ada'), (2, 'Grace'), (3, 'Edsger'); ALTER TABLE customers OWNER TO {GatewayHarness.ScramUser}", setup);
            await create.ExecuteNonQueryAsync();
        }
        await using var cp = await ControlPlaneProcess.StartAsync();
        await cp.EnsureSuccessAsync(await cp.Api.PostAsJsonAsync("/api/v1/users", new { userName = "paula", password = Password, role = "Approver" }));
        await cp.EnsureSuccessAsync(await cp.Api.PostAsJsonAsync("/api/v1/users", new { userName = "audra", password = Password, role = "Auditor" }));

        var admin = await SignInAsync(cp.Url, "admin", ControlPlaneProcess.AdminPassword, "/");
        await Assertions.Expect(admin.GetByTestId("checklist")).ToContainTextAsync("0 of 6 done");
        await ShotAsync(admin, "dashboard-empty");

        // 1. A sidecar, enrolled with the command the page gives.
        await GoAsync(admin, "/sidecars");
        await admin.GetByTestId("new-sidecar-name").FillAsync("edge-j");
        await admin.GetByTestId("create-sidecar").ClickAsync();
        await admin.GetByTestId("enroll-edge-j").ClickAsync();
        var command = (await admin.GetByTestId("enrollment-command").TextContentAsync())!;
        await ShotAsync(admin, "sidecars-enroll");
        var token = System.Text.RegularExpressions.Regex.Match(command, @"--enrollment-token (\S+)").Groups[1].Value;
        Assert.Contains($"--control-plane {cp.Url}", command, StringComparison.Ordinal);
        var certificates = GatewayHarness.WriteCertificates();
        await using var sidecar = SidecarProcess.Start(cp.Url, token, extraArgs:
        [
            $"--Sidecar:Postgres:CertificatePath={Path.Combine(certificates, "server.pem")}",
            $"--Sidecar:Postgres:KeyPath={Path.Combine(certificates, "server.key")}",
            "--Sidecar:Postgres:ListenAddress=127.0.0.1",
        ]);
        await Assertions.Expect(admin.GetByTestId("state-edge-j")).ToHaveTextAsync("online", new() { Timeout = 30000 });

        // 2. The target, its password stored.
        var port = FreePort.Next();
        var server = new NpgsqlConnectionStringBuilder(TestPostgres.ServerConnectionString);
        await GoAsync(admin, "/targets");
        await admin.GetByTestId("new-target").ClickAsync();
        await admin.GetByTestId("target-name").FillAsync("shop");
        await admin.GetByTestId("target-listen-port").FillAsync(port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await admin.GetByTestId("target-host").FillAsync(server.Host!);
        await admin.GetByTestId("target-port").FillAsync(server.Port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await admin.GetByTestId("target-database").FillAsync(database);
        await admin.GetByTestId("target-username").FillAsync(GatewayHarness.ScramUser);
        await admin.GetByTestId("target-password").FillAsync(GatewayHarness.ScramPassword);
        await admin.GetByTestId("target-save").ClickAsync();
        await Assertions.Expect(admin.GetByTestId("target-credential-shop")).ToHaveTextAsync("stored");
        await ShotAsync(admin, "targets");

        // 3. A role from the agent-safe baseline: reads, and deletes only with an approval.
        await GoAsync(admin, "/roles");
        await admin.GetByTestId("new-role").ClickAsync();
        await admin.GetByTestId("role-name").FillAsync("shop-agent");
        await ChooseAsync(admin, "grant-target-0", "shop");
        await admin.GetByTestId("add-rule").ClickAsync();
        await admin.GetByTestId("rule-name-0").FillAsync("deletes-need-approval");
        await ChooseAsync(admin, "rule-action-0", "require_approval");
        await admin.GetByTestId("rule-commands-0").FillAsync("DELETE");
        await admin.GetByTestId("role-save").ClickAsync();
        await Assertions.Expect(admin.GetByTestId("role-rules-shop-agent")).ToHaveTextAsync("deletes-need-approval (require_approval)");
        await ShotAsync(admin, "roles");

        // 4 and 5. The agent, with a public key (private_key_jwt: no shared secret).
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var q = key.ExportParameters(false).Q;
        var jwks = JsonSerializer.Serialize(new { keys = new[] { new { kty = "EC", crv = "P-256", kid = "shop-bot-1", use = "sig", alg = "ES256", x = Base64Url.EncodeToString(q.X), y = Base64Url.EncodeToString(q.Y) } } });
        await GoAsync(admin, "/agents");
        await admin.GetByTestId("new-agent").ClickAsync();
        await admin.GetByTestId("agent-name").FillAsync("shop-bot");
        await ChooseAsync(admin, "agent-role", "shop-agent");
        await ChooseAsync(admin, "agent-owner", "admin");
        await admin.GetByTestId("agent-save").ClickAsync();
        await Assertions.Expect(admin.GetByTestId("agent-shop-bot")).ToBeVisibleAsync();
        await GoAsync(admin, "/agents/shop-bot");
        await admin.GetByTestId("public-keys").FillAsync(jwks);
        await admin.GetByTestId("set-keys").ClickAsync();
        await Assertions.Expect(admin.GetByTestId("credential-summary")).ToContainTextAsync("public keys: shop-bot-1");
        await ShotAsync(admin, "agent");

        // 6. The agent connects with psql through the sidecar, its token as the password.
        var agentToken = await TokenWithKeyAsync(cp.Url, "shop-bot", key);
        var libpq = $"host=127.0.0.1 port={port} dbname={database} user=shop-bot sslmode=require";
        var env = new Dictionary<string, string> { ["PGPASSWORD"] = agentToken, ["PGCONNECT_TIMEOUT"] = "10" };
        await GatewayHarness.WaitUntilAgentConnectsAsync(new NpgsqlConnectionStringBuilder { Host = "127.0.0.1", Port = port, Database = database, Username = "shop-bot", Password = agentToken, SslMode = SslMode.Require, Pooling = false }.ConnectionString);
        var wrong = await Cli.RunAsync("psql", [libpq, "-XAt", "-c", "SELECT 1"], new Dictionary<string, string> { ["PGPASSWORD"] = "not-a-token" });
        Assert.NotEqual(0, wrong.ExitCode);
        var read = await Cli.RunAsync("psql", [libpq, "-XAt", "-c", "SELECT count(*) FROM customers"], env);
        Assert.True(read.ExitCode == 0, read.Error);
        Assert.Equal("3", read.Output.Trim());
        var blocked = await Cli.RunAsync("psql", [libpq, "-XAt", "-c", "DROP TABLE customers"], env);
        Assert.NotEqual(0, blocked.ExitCode);
        Assert.Contains("ERROR:", blocked.Error, StringComparison.Ordinal);

        // The blocked statement shows on the dashboard, and the checklist is done.
        await GoAsync(admin, "/");
        await Assertions.Expect(admin.GetByTestId("total-blocked")).ToHaveTextAsync("1", new() { Timeout = 30000 });
        await Assertions.Expect(admin.GetByTestId("checklist")).ToHaveCountAsync(0);
        // The wrong token's refusal is there too, with who and why, not only in the sidecar's log.
        await Assertions.Expect(admin.GetByTestId("refused-count")).ToHaveTextAsync("1", new() { Timeout = 30000 });
        await Assertions.Expect(admin.GetByTestId("refused-connection")).ToContainTextAsync("shop-bot → shop on edge-j");
        await Assertions.Expect(admin.GetByTestId("refused-connection")).ToContainTextAsync("agent token refused");
        await ShotAsync(admin, "dashboard");

        // A held statement: an approver approves it in another browser while psql waits.
        var held = Cli.RunAsync("psql", [libpq, "-XAt", "-c", "DELETE FROM customers WHERE id = 3"], env, timeout: TimeSpan.FromSeconds(120));
        var paula = await SignInAsync(cp.Url, "paula", Password, "/approvals");
        var card = paula.Locator("[data-testid^=approval-][data-status=pending]").First;
        await card.WaitForAsync(new() { Timeout = 30000 });
        var id = (await card.GetAttributeAsync("data-testid"))!["approval-".Length..];
        await Assertions.Expect(paula.GetByTestId($"approval-sql-{id}")).ToContainTextAsync("DELETE FROM customers WHERE id = 3");
        await ShotAsync(paula, "approvals");
        await paula.GetByTestId($"approve-{id}").ClickAsync();
        var deleted = await held;
        Assert.True(deleted.ExitCode == 0, $"{deleted.Error}\ncontrol plane output (last lines):\n{string.Join('\n', cp.Process.Output.Split('\n').TakeLast(60))}");
        Assert.Contains("DELETE 1", deleted.Output + deleted.Error, StringComparison.Ordinal);

        // An auditor replays the session and sees it verify.
        var audra = await SignInAsync(cp.Url, "audra", Password, "/sessions");
        var session = audra.Locator("[data-testid^=session-]").First;
        await session.WaitForAsync(new() { Timeout = 30000 });
        await ShotAsync(audra, "sessions");
        string? sessionId = null;
        await PolicySyncTests.Eventually(async () =>
        {
            var list = JsonDocument.Parse(await cp.Api.GetStringAsync("/api/v1/sessions?agent=shop-bot&status=ended")).RootElement;
            foreach (var s in list.EnumerateArray())
                if ((await cp.Api.GetStringAsync($"/api/v1/sessions/{s.GetProperty("id").GetString()}/events")).Contains("DELETE FROM customers", StringComparison.Ordinal))
                    sessionId = s.GetProperty("id").GetString();
            return sessionId is not null;
        }, seconds: 30);
        await GoAsync(audra, $"/sessions/{sessionId}");
        await Assertions.Expect(audra.GetByTestId("session-status")).ToHaveTextAsync("ended");
        await Assertions.Expect(audra.Locator("body")).ToContainTextAsync("DELETE FROM customers WHERE id = 3");
        await audra.GetByTestId("verify").ClickAsync();
        await Assertions.Expect(audra.GetByTestId("message")).ToContainTextAsync("the sidecar's signature covers the session's end", new() { Timeout = 15000 });
        await Assertions.Expect(audra.GetByTestId("terminate")).ToHaveCountAsync(0);
        await ShotAsync(audra, "session-verified");
    }

    /// <summary>A token for <paramref name="agent"/> by <c>private_key_jwt</c>: an assertion signed with its key, audience the issuer.</summary>
    private static async Task<string> TokenWithKeyAsync(string cpUrl, string agent, ECDsa key)
    {
        using var http = new HttpClient();
        var issuer = JsonDocument.Parse(await http.GetStringAsync(cpUrl + "/.well-known/openid-configuration")).RootElement.GetProperty("issuer").GetString()!;
        var now = DateTimeOffset.UtcNow;
        var header = Base64Url.EncodeToString(JsonSerializer.SerializeToUtf8Bytes(new { alg = "ES256", typ = "client-authentication+jwt", kid = "shop-bot-1" }));
        var payload = Base64Url.EncodeToString(JsonSerializer.SerializeToUtf8Bytes(new
        {
            iss = agent, sub = agent, aud = issuer, jti = Guid.NewGuid().ToString(), iat = now.ToUnixTimeSeconds(), exp = now.AddMinutes(2).ToUnixTimeSeconds(),
        }));
        var assertion = $"{header}.{payload}.{Base64Url.EncodeToString(key.SignData(Encoding.ASCII.GetBytes($"{header}.{payload}"), HashAlgorithmName.SHA256))}";
        var response = await http.PostAsync(cpUrl + "/connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials", ["client_id"] = agent,
            ["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", ["client_assertion"] = assertion,
        }));
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, body);
        return JsonDocument.Parse(body).RootElement.GetProperty("access_token").GetString()!;
    }
}
