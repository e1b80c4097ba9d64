using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Airlock.Testing;
using Npgsql;

namespace Airlock.EndToEnd.Tests.Gateway;

/// <summary>
/// A real sidecar, control plane and PostgreSQL server; agent <c>deployer</c> (owned by olivia) whose
/// role holds deletes and updates of <c>orders</c> for approval and refuses inserts fail-fast until
/// approved. Approvers alice and bob are in group <c>dba</c>; carol is an Approver outside it. Votes go
/// through the REST API with each person's console cookie, as the console's own buttons do.
/// </summary>
public sealed class ApprovalFixture : IAsyncLifetime
{
    public const string Password = "a-long-enough-password";

    public GatewayHarness Harness { get; private set; } = default!;
    public string Token { get; private set; } = "";
    private readonly Dictionary<string, HttpClient> _people = [];

    public async Task InitializeAsync()
    {
        Harness = await GatewayHarness.StartAsync();
        await using (var direct = new NpgsqlConnection(Harness.DirectConnectionString))
        {
            await direct.OpenAsync();
            await using var setup = new NpgsqlCommand("""
                CREATE TABLE orders (id int PRIMARY KEY, state text NOT NULL);
                INSERT INTO orders SELECT g, 'open' FROM generate_series(1, 100) g;
                CREATE TABLE jobs (id int PRIMARY KEY);
                CREATE TABLE scratch (id int);
                INSERT INTO scratch SELECT g FROM generate_series(1, 100) g;
                """, direct);
            await setup.ExecuteNonQueryAsync();
        }
        var cp = Harness.ControlPlane;
        foreach (var (name, groups) in new[] { ("alice", new[] { "dba" }), ("bob", new[] { "dba" }), ("olivia", new[] { "dba" }), ("carol", Array.Empty<string>()) })
            Ok(await cp.Api.PostAsJsonAsync("/api/v1/users", new { userName = name, password = Password, role = "Approver", groups }));
        Ok(await cp.Api.PostAsJsonAsync("/api/v1/users", new { userName = "ada", password = Password, role = "Admin" })); // decides grants
        var (_, ready) = await Harness.Sidecar.ReadyAsync();
        var version = ready.GetProperty("version").GetInt64();
        Ok(await cp.Api.PutAsJsonAsync("/api/v1/roles/deployer", new
        {
            baseline = "agent-safe",
            grants = new[] { new { target = "pg" } },
            rules = new object[]
            {
                new { name = "writes", action = "allow", match = new { classes = new[] { "write" } } },
                new { name = "deletes-need-approval", action = "require_approval", match = new { commands = new[] { "DELETE" }, tables = new[] { "orders" } }, approval = new { mode = "hold", timeoutSeconds = 120 } },
                new { name = "updates-need-two-dbas", action = "require_approval", match = new { commands = new[] { "UPDATE" }, tables = new[] { "orders" } }, approval = new { mode = "hold", approvals = 2, group = "dba", timeoutSeconds = 120 } },
                new { name = "scratch-deletes-expire", action = "require_approval", match = new { commands = new[] { "DELETE" }, tables = new[] { "scratch" } }, approval = new { mode = "hold", timeoutSeconds = 10 } },
                new { name = "inserts-fail-fast", action = "require_approval", match = new { commands = new[] { "INSERT" }, tables = new[] { "orders" } }, approval = new { mode = "fail-fast" } },
                new { name = "job-inserts-for-five-minutes", action = "require_approval", match = new { commands = new[] { "INSERT" }, tables = new[] { "jobs" } }, approval = new { mode = "fail-fast", windowMinutes = 5 } },
            },
        }));
        // What a time-boxed grant elevates the deployer to: schema changes, nothing else (it grants no target itself).
        Ok(await cp.Api.PutAsJsonAsync("/api/v1/roles/schema-changer", new
        {
            rules = new object[] { new { name = "ddl", action = "allow", match = new { classes = new[] { "ddl" } } } },
        }));
        Ok(await cp.Api.PutAsJsonAsync("/api/v1/agents/deployer", new { role = "deployer", owner = "olivia" }));
        Token = await GatewayHarness.TokenAsync(cp, "deployer");
        await Harness.Sidecar.WaitForVersionAsync(version + 1);
        await GatewayHarness.WaitUntilAgentConnectsAsync(ConnectionString);
    }

    public string ConnectionString => Harness.SidecarConnectionStringFor(Token, "deployer") + ";Include Error Detail=true";

    /// <summary>A console user's cookie-carrying client (signed in once).</summary>
    public async Task<HttpClient> PersonAsync(string name)
    {
        if (!_people.TryGetValue(name, out var client))
            _people[name] = client = (await ConsoleSignIn.SignInAsync(Harness.ControlPlane.Url, name, Password)).Client;
        return client;
    }

    private static void Ok(HttpResponseMessage response)
    {
        if (!response.IsSuccessStatusCode)
            throw new InvalidOperationException($"refused: {response.StatusCode} {response.Content.ReadAsStringAsync().Result}");
    }

    public async Task DisposeAsync()
    {
        foreach (var client in _people.Values)
            client.Dispose();
        await Harness.DisposeAsync();
    }
}

public sealed class ApprovalTests(ApprovalFixture fixture) : IClassFixture<ApprovalFixture>
{
    private GatewayHarness H => fixture.Harness;

    private async Task<NpgsqlConnection> OpenAsync(List<string>? notices = null)
    {
        var connection = new NpgsqlConnection(fixture.ConnectionString);
        if (notices is not null)
            connection.Notice += (_, e) =>
            {
                lock (notices)
                    notices.Add(e.Notice.MessageText + " | " + e.Notice.Hint);
            };
        await connection.OpenAsync();
        return connection;
    }

    private async Task<object?> DirectScalarAsync(string sql)
    {
        await using var direct = new NpgsqlConnection(H.DirectConnectionString);
        await direct.OpenAsync();
        await using var command = new NpgsqlCommand(sql, direct);
        return await command.ExecuteScalarAsync();
    }

    /// <summary>The newest pending request of <paramref name="rule"/> once it is stored (as the console sees it).</summary>
    private async Task<JsonElement> PendingAsync(string rule, long after = 0)
    {
        JsonElement found = default;
        await PolicySyncTests.Eventually(async () =>
        {
            using var doc = JsonDocument.Parse(await H.ControlPlane.Api.GetStringAsync("/api/v1/approvals?status=pending"));
            foreach (var a in doc.RootElement.EnumerateArray())
                if (a.GetProperty("rule").GetString() == rule && a.GetProperty("id").GetInt64() > after)
                {
                    found = a.Clone();
                    return true;
                }
            return false;
        }, seconds: 20);
        return found;
    }

    private async Task<JsonElement> RequestAsync(long id)
    {
        using var doc = JsonDocument.Parse(await H.ControlPlane.Api.GetStringAsync($"/api/v1/approvals/{id}"));
        return doc.RootElement.Clone();
    }

    private async Task<HttpResponseMessage> VoteAsync(string person, long id, bool approve, string? comment = null) =>
        await (await fixture.PersonAsync(person)).PostAsJsonAsync($"/api/v1/approvals/{id}/{(approve ? "approve" : "deny")}", new { comment });

    private static long Id(JsonElement approval) => approval.GetProperty("id").GetInt64();

    private static async Task<int> DeleteOrderAsync(NpgsqlConnection connection, int id, CancellationToken ct = default)
    {
        await using var command = new NpgsqlCommand("DELETE FROM orders WHERE id = $1", connection) { Parameters = { new() { Value = id } } };
        return await command.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Closes a connection whose statement may still be held without hiding the test's own failure behind the close's.</summary>
    private static IAsyncDisposable Quietly(NpgsqlConnection connection) => new QuietClose(connection);

    private sealed class QuietClose(NpgsqlConnection connection) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            try
            {
                await connection.DisposeAsync();
            }
            catch (Exception e) when (e is NpgsqlException or IOException or NotSupportedException)
            {
                // the connection broke with the test's failure
            }
        }
    }

    [Fact]
    public async Task A_held_statement_waits_with_a_notice_while_other_sessions_go_on_and_runs_once_approved()
    {
        var notices = new List<string>();
        var connection = await OpenAsync(notices);
        await using var closing = Quietly(connection);
        var delete = DeleteOrderAsync(connection, 1);
        var pending = await PendingAsync("deletes-need-approval");
        var id = Id(pending);
        Assert.Equal(["DELETE FROM orders WHERE id = $1"], pending.GetProperty("statements").EnumerateArray().Select(s => s.GetString()));
        Assert.Equal(["1"], pending.GetProperty("parameters").EnumerateArray().Select(s => s.GetString()));
        Assert.Equal(("deployer", "olivia", "write"), (pending.GetProperty("agent").GetString(), pending.GetProperty("agentOwner").GetString(), pending.GetProperty("classification").GetString()));
        await PolicySyncTests.Eventually(() => Task.FromResult(notices.Any(n => n.Contains($"waiting for approval request #{id}", StringComparison.Ordinal))));
        Assert.Contains($"/approvals/{id}", notices.Single(), StringComparison.Ordinal);

        // Nothing reached the target; another session of the same agent is not blocked by the wait.
        Assert.Equal(1L, await DirectScalarAsync("SELECT count(*) FROM orders WHERE id = 1"));
        await using (var other = await OpenAsync())
        await using (var read = new NpgsqlCommand("SELECT count(*) FROM orders", other))
            Assert.Equal(100L, await read.ExecuteScalarAsync());
        Assert.False(delete.IsCompleted);

        Assert.Equal(HttpStatusCode.OK, (await VoteAsync("alice", id, approve: true, "looks right")).StatusCode);
        Assert.Equal(1, await delete.WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Equal(0L, await DirectScalarAsync("SELECT count(*) FROM orders WHERE id = 1"));
        // The session carries on; the request is executed, with its vote; a vote after the decision is refused.
        await using (var after = new NpgsqlCommand("SELECT 1", connection))
            Assert.Equal(1, await after.ExecuteScalarAsync());
        await PolicySyncTests.Eventually(async () => (await RequestAsync(id)).GetProperty("status").GetString() == "executed");
        Assert.Equal(HttpStatusCode.Conflict, (await VoteAsync("bob", id, approve: true)).StatusCode);

        // Every step is in the session's hash chain, before the statement it let run, and the chain verifies.
        var session = pending.GetProperty("session").GetGuid();
        string[] steps = [];
        await PolicySyncTests.Eventually(async () =>
        {
            using var events = JsonDocument.Parse(await H.ControlPlane.Api.GetStringAsync($"/api/v1/sessions/{session}/events"));
            steps = events.RootElement.EnumerateArray()
                .Where(e => e.GetProperty("type").GetString() is "approval" or "statement")
                .Select(e => e.GetProperty("type").GetString() == "approval"
                    ? $"{e.GetProperty("payload").GetProperty("outcome").GetString()}:{e.GetProperty("payload").GetProperty("requestId").GetInt64()}"
                    : $"statement:{e.GetProperty("payload").GetProperty("text").GetString()}:{e.GetProperty("payload").GetProperty("decision").GetString()}")
                .ToArray();
            return steps.Contains("statement:SELECT 1:allow");
        });
        Assert.Equal([$"raised:{id}", $"vote:{id}", $"approved:{id}", $"executed:{id}", "statement:DELETE FROM orders WHERE id = $1:require_approval", "statement:SELECT 1:allow"], steps);
        using var verdict = JsonDocument.Parse(await (await H.ControlPlane.Api.PostAsync($"/api/v1/sessions/{session}/verify", null)).Content.ReadAsStringAsync());
        Assert.True(verdict.RootElement.GetProperty("brokenAt").ValueKind == JsonValueKind.Null, verdict.RootElement.ToString());
    }

    [Fact]
    public async Task A_statement_needing_approval_cannot_be_prepared_under_a_name_and_raises_nothing()
    {
        await using var connection = await OpenAsync();
        await using var delete = new NpgsqlCommand("DELETE FROM orders WHERE id = $1", connection) { Parameters = { new() { Value = 9 } } };
        var e = await Assert.ThrowsAsync<PostgresException>(() => delete.PrepareAsync());
        Assert.Equal("42501", e.SqlState);
        Assert.Contains("without preparing it under a name", e.Hint ?? "", StringComparison.Ordinal);
        Assert.Equal(1L, await DirectScalarAsync("SELECT count(*) FROM orders WHERE id = 9"));
        await using var after = new NpgsqlCommand("SELECT count(*) FROM orders WHERE id = 9", connection);
        Assert.Equal(1L, await after.ExecuteScalarAsync());
    }

    [Fact]
    public async Task A_denied_statement_fails_with_the_approvers_reason_and_nothing_runs()
    {
        var connection = await OpenAsync();
        await using var closing = Quietly(connection);
        var delete = DeleteOrderAsync(connection, 2);
        var id = Id(await PendingAsync("deletes-need-approval"));
        Assert.Equal(HttpStatusCode.OK, (await VoteAsync("bob", id, approve: false, "not during the freeze")).StatusCode);
        var e = await Assert.ThrowsAsync<PostgresException>(() => delete.WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Equal("42501", e.SqlState);
        Assert.Equal($"approval request #{id} for rule \"deletes-need-approval\" was denied by bob: not during the freeze; nothing was run", e.MessageText);
        Assert.Equal(1L, await DirectScalarAsync("SELECT count(*) FROM orders WHERE id = 2"));
        await using var after = new NpgsqlCommand("SELECT count(*) FROM orders WHERE id = 2", connection);
        Assert.Equal(1L, await after.ExecuteScalarAsync());
        Assert.Equal("denied", (await RequestAsync(id)).GetProperty("status").GetString());
    }

    [Fact]
    public async Task The_owner_cannot_approve_and_two_of_the_group_are_needed_where_the_rule_says_so()
    {
        var connection = await OpenAsync();
        await using var closing = Quietly(connection);
        await using var update = new NpgsqlCommand("UPDATE orders SET state = 'shipped' WHERE id = 3", connection);
        var running = update.ExecuteNonQueryAsync();
        var id = Id(await PendingAsync("updates-need-two-dbas"));

        var own = await VoteAsync("olivia", id, approve: true);
        Assert.Equal(HttpStatusCode.Forbidden, own.StatusCode);
        Assert.Contains("you own agent 'deployer'", await own.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        var outsider = await VoteAsync("carol", id, approve: true);
        Assert.Equal(HttpStatusCode.Forbidden, outsider.StatusCode);
        Assert.Contains("approver group 'dba'", await outsider.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        // An API key is not a person.
        Assert.Equal(HttpStatusCode.Forbidden, (await H.ControlPlane.Api.PostAsJsonAsync($"/api/v1/approvals/{id}/approve", new { })).StatusCode);

        Assert.Equal(HttpStatusCode.OK, (await VoteAsync("alice", id, approve: true)).StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, (await VoteAsync("alice", id, approve: true)).StatusCode);
        await Task.Delay(500);
        Assert.False(running.IsCompleted);
        Assert.Equal("open", await DirectScalarAsync("SELECT state FROM orders WHERE id = 3"));
        Assert.Equal(1, (await RequestAsync(id)).GetProperty("approvals").GetInt32());

        Assert.Equal(HttpStatusCode.OK, (await VoteAsync("bob", id, approve: true)).StatusCode);
        Assert.Equal(1, await running.WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Equal("shipped", await DirectScalarAsync("SELECT state FROM orders WHERE id = 3"));
    }

    [Fact]
    public async Task An_unanswered_request_expires_and_the_statement_fails()
    {
        var connection = await OpenAsync();
        await using var closing = Quietly(connection);
        await using var delete = new NpgsqlCommand("DELETE FROM scratch WHERE id = 7", connection);
        var running = delete.ExecuteNonQueryAsync();
        var id = Id(await PendingAsync("scratch-deletes-expire"));
        var e = await Assert.ThrowsAsync<PostgresException>(() => running.WaitAsync(TimeSpan.FromSeconds(40)));
        Assert.Equal("42501", e.SqlState);
        Assert.Contains($"approval request #{id} for rule \"scratch-deletes-expire\" expired", e.MessageText, StringComparison.Ordinal);
        Assert.Equal(1L, await DirectScalarAsync("SELECT count(*) FROM scratch WHERE id = 7"));
        // The sidecar keeps the expiry by its own clock; the control plane marks it within a second or so.
        await PolicySyncTests.Eventually(async () => (await RequestAsync(id)).GetProperty("status").GetString() == "expired");
        Assert.Equal(HttpStatusCode.Conflict, (await VoteAsync("alice", id, approve: true)).StatusCode);
    }

    [Fact]
    public async Task Cancelling_a_held_statement_ends_the_wait_with_57014_and_closing_the_connection_cancels_the_request()
    {
        var connection = await OpenAsync();
        await using (Quietly(connection))
        {
            using var cancel = new CancellationTokenSource();
            var delete = DeleteOrderAsync(connection, 4, cancel.Token);
            var id = Id(await PendingAsync("deletes-need-approval"));
            cancel.Cancel(); // Npgsql sends a CancelRequest on a new connection
            var e = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => delete.WaitAsync(TimeSpan.FromSeconds(20)));
            var postgres = Assert.IsType<PostgresException>(e.InnerException);
            Assert.Equal("57014", postgres.SqlState);
            Assert.Contains($"approval request #{id}", postgres.MessageText, StringComparison.Ordinal);
            await PolicySyncTests.Eventually(async () => (await RequestAsync(id)).GetProperty("status").GetString() == "cancelled");
            await using var after = new NpgsqlCommand("SELECT count(*) FROM orders WHERE id = 4", connection);
            Assert.Equal(1L, await after.ExecuteScalarAsync());
        }

        // The client goes away while its statement is held (its network is cut: both sockets close).
        var tap = new ByteTap(H.Port);
        var gone = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(fixture.ConnectionString) { Port = tap.Port }.ConnectionString);
        await gone.OpenAsync();
        await using var closing = Quietly(gone);
        var abandoned = DeleteOrderAsync(gone, 5);
        var second = Id(await PendingAsync("deletes-need-approval"));
        await tap.DisposeAsync();
        await Assert.ThrowsAnyAsync<Exception>(() => abandoned.WaitAsync(TimeSpan.FromSeconds(10)));
        await PolicySyncTests.Eventually(async () => (await RequestAsync(second)).GetProperty("status").GetString() == "cancelled");
        Assert.Equal(HttpStatusCode.Conflict, (await VoteAsync("alice", second, approve: true)).StatusCode);
        Assert.Equal(1L, await DirectScalarAsync("SELECT count(*) FROM orders WHERE id = 5"));
    }

    [Fact]
    public async Task A_fail_fast_approval_covers_the_identical_statement_once_and_not_other_parameter_values()
    {
        await using var connection = await OpenAsync();
        async Task<int> InsertAsync(int id)
        {
            await using var insert = new NpgsqlCommand("INSERT INTO orders VALUES ($1, 'new')", connection) { Parameters = { new() { Value = id } } };
            return await insert.ExecuteNonQueryAsync();
        }
        var first = await Assert.ThrowsAsync<PostgresException>(() => InsertAsync(1001));
        Assert.Equal("42501", first.SqlState);
        var id = long.Parse(System.Text.RegularExpressions.Regex.Match(first.MessageText, "request #([0-9]+) was raised").Groups[1].Value);
        Assert.Contains("covers one run", first.Detail ?? "", StringComparison.Ordinal);
        // The same statement before approval waits for the same request.
        var again = await Assert.ThrowsAsync<PostgresException>(() => InsertAsync(1001));
        Assert.Contains($"request #{id} was raised", again.MessageText, StringComparison.Ordinal);

        Assert.Equal(HttpStatusCode.OK, (await VoteAsync("alice", id, approve: true)).StatusCode);
        // Other parameter values are another statement: not covered.
        var other = await Assert.ThrowsAsync<PostgresException>(() => InsertAsync(1002));
        Assert.DoesNotContain($"#{id} ", other.MessageText, StringComparison.Ordinal);
        Assert.Equal(0L, await DirectScalarAsync("SELECT count(*) FROM orders WHERE id IN (1001, 1002)"));
        // The approved one runs once, then needs a new approval.
        Assert.Equal(1, await InsertAsync(1001));
        await using (var delete = new NpgsqlCommand("SELECT 1", connection))
            await delete.ExecuteScalarAsync();
        var third = await Assert.ThrowsAsync<PostgresException>(() => InsertAsync(1001));
        Assert.DoesNotContain($"#{id} ", third.MessageText, StringComparison.Ordinal);
        Assert.Equal("executed", (await RequestAsync(id)).GetProperty("status").GetString());
    }

    [Fact]
    public async Task A_fail_fast_approval_with_a_window_covers_the_identical_statement_for_its_minutes()
    {
        await using var connection = await OpenAsync();
        async Task<int> InsertAsync()
        {
            await using var insert = new NpgsqlCommand("INSERT INTO jobs SELECT coalesce(max(id), 0) + 1 FROM jobs", connection);
            return await insert.ExecuteNonQueryAsync();
        }
        var refused = await Assert.ThrowsAsync<PostgresException>(InsertAsync);
        var id = long.Parse(System.Text.RegularExpressions.Regex.Match(refused.MessageText, "request #([0-9]+) was raised").Groups[1].Value);
        Assert.Contains("for 5 minutes", refused.Detail ?? "", StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await VoteAsync("bob", id, approve: true)).StatusCode);
        for (var i = 0; i < 3; i++)
            Assert.Equal(1, await InsertAsync());
        Assert.Equal(3L, await DirectScalarAsync("SELECT count(*) FROM jobs"));
        var approval = await RequestAsync(id);
        Assert.Equal(("approved", 3), (approval.GetProperty("status").GetString(), approval.GetProperty("uses").GetInt32()));
        Assert.True(approval.GetProperty("validUntil").GetDateTimeOffset() > DateTimeOffset.UtcNow.AddMinutes(4));
    }

    [Fact]
    public async Task A_time_boxed_grant_elevates_the_agent_once_approved_until_revoked_or_expired()
    {
        var connection = await OpenAsync();
        await using var closing = Quietly(connection);
        async Task<string?> CreateAsync(string table)
        {
            try
            {
                await using var create = new NpgsqlCommand($"CREATE TABLE {table} (x int)", connection);
                await create.ExecuteNonQueryAsync();
                return null;
            }
            catch (PostgresException e)
            {
                return $"{e.SqlState}: {e.MessageText}";
            }
        }
        Assert.StartsWith("42501", await CreateAsync("grant_probe_0"));

        var olivia = await fixture.PersonAsync("olivia");
        var refused = await (await fixture.PersonAsync("carol")).PostAsJsonAsync("/api/v1/grants", new { agent = "deployer", target = "pg", role = "schema-changer", minutes = 1 });
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode); // only the owner (or an Admin) asks
        var bad = await olivia.PostAsJsonAsync("/api/v1/grants", new { agent = "deployer", target = "pg", role = "nobody", minutes = 0 });
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("role: 'nobody' does not exist; minutes: must be between 1 and 1440", await bad.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        async Task<long> GrantAsync(string reason)
        {
            var asked = await olivia.PostAsJsonAsync("/api/v1/grants", new { agent = "deployer", target = "pg", role = "schema-changer", minutes = 1, reason });
            Assert.Equal(HttpStatusCode.Created, asked.StatusCode);
            var id = JsonDocument.Parse(await asked.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetInt64();
            Assert.Equal(HttpStatusCode.Forbidden, (await VoteAsync("olivia", id, approve: true)).StatusCode); // her own request, her own agent
            Assert.Equal(HttpStatusCode.Forbidden, (await VoteAsync("alice", id, approve: true)).StatusCode); // an Approver: a grant is an Admin's to decide
            Assert.Equal(HttpStatusCode.OK, (await VoteAsync("ada", id, approve: true, "for the migration")).StatusCode);
            return id;
        }

        // Approved: it reaches the sidecar with the next snapshot, and an Admin takes it back at once.
        var first = await GrantAsync("run the migration");
        var n = 1;
        await PolicySyncTests.Eventually(async () => await CreateAsync($"grant_probe_{n++}") is null, seconds: 10);
        Assert.Equal(HttpStatusCode.OK, (await H.ControlPlane.Api.PostAsync($"/api/v1/grants/{first}/revoke", null)).StatusCode);
        await PolicySyncTests.Eventually(async () => await CreateAsync($"grant_probe_{n++}") is not null, seconds: 10);
        Assert.Equal("revoked", (await RequestAsync(first)).GetProperty("status").GetString());

        // Another: it ends by itself at its minute, by the sidecar's clock (no new snapshot is sent for it).
        var second = await GrantAsync("one more table");
        await PolicySyncTests.Eventually(async () => await CreateAsync($"grant_probe_{n++}") is null, seconds: 10);
        var until = (await RequestAsync(second)).GetProperty("validUntil").GetDateTimeOffset();
        var (_, ready) = await H.Sidecar.ReadyAsync();
        var version = ready.GetProperty("version").GetInt64();
        await Task.Delay(until - DateTimeOffset.UtcNow + TimeSpan.FromMilliseconds(300));
        var lapsed = await CreateAsync("grant_probe_after");
        Assert.NotNull(lapsed);
        Assert.StartsWith("42501", lapsed);
        Assert.Equal(version, (await H.Sidecar.ReadyAsync()).Body.GetProperty("version").GetInt64());
        var active = JsonDocument.Parse(await H.ControlPlane.Api.GetStringAsync("/api/v1/grants?active=true")).RootElement;
        Assert.Equal(0, active.GetArrayLength());
    }
}
