using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Airlock.Contracts.Recording;
using Airlock.Testing;
using Npgsql;

namespace Airlock.EndToEnd.Tests.Gateway;

/// <summary>
/// A real sidecar and PostgreSQL server, an agent whose role masks columns by every strategy, and a
/// byte tap between each client and the sidecar (no TLS, on loopback) that keeps every byte the client
/// received. Every route a masked value could take — plain output in text and binary, aliases, *,
/// cursors, RETURNING, inheritance children, COPY, expressions, whole rows, views, functions, errors,
/// notices, statistics — is tried with psql, Npgsql and node-postgres, and the clear values are searched
/// for in all of those bytes, in the recording and in the sidecar's and control plane's files.
/// </summary>
public sealed class MaskingFixture : IAsyncLifetime
{
    public GatewayHarness Harness { get; private set; } = default!;
    public string Token { get; private set; } = "";
    public ByteTap Tap { get; private set; } = default!;

    /// <summary>Values that must never reach the agent.</summary>
    public static readonly string[] Secrets =
    [
        "alice.secret@example.com", "bob.secret@example.com", "old.secret@example.com", "4111 1111 1111 1111", "5500-0000-0000-0004",
        "111-22-3333", "222-33-4444", "987654", "876543", "123456789", "legacy-ssn-777", "tax-id-888",
        "carol.detected@example.org", "4242 4242 4242 4242",
    ];

    public async Task InitializeAsync()
    {
        Harness = await GatewayHarness.StartAsync(sidecarArgs: ["--Sidecar:Postgres:MaskCatalogSeconds=1"]);
        await using (var direct = new NpgsqlConnection(Harness.DirectConnectionString))
        {
            await direct.OpenAsync();
            await using var setup = new NpgsqlCommand("""
                CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text, card text, ssn text, balance int);
                INSERT INTO customers VALUES
                  (1, 'Alice', 'alice.secret@example.com', '4111 1111 1111 1111', '111-22-3333', 987654),
                  (2, 'Bob', 'bob.secret@example.com', '5500-0000-0000-0004', '222-33-4444', 876543),
                  (3, 'Nobody', NULL, NULL, NULL, NULL);
                CREATE TABLE customers_archive () INHERITS (customers);
                INSERT INTO customers_archive VALUES (100, 'Old', 'old.secret@example.com', NULL, NULL, 5);
                CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL, email text NOT NULL);
                INSERT INTO orders VALUES (10, 1, 'alice.secret@example.com'), (11, 2, 'bob.secret@example.com'), (12, 1, 'alice.secret@example.com');
                CREATE TABLE staff (id int PRIMARY KEY, salary int NOT NULL);
                INSERT INTO staff VALUES (1, 123456789);
                CREATE TABLE people (id int PRIMARY KEY, legacy_ssn text);
                INSERT INTO people VALUES (1, 'legacy-ssn-777');
                CREATE TABLE memos (id int PRIMARY KEY, body text NOT NULL);
                INSERT INTO memos VALUES (1, 'call carol.detected@example.org, card 4242 4242 4242 4242');
                CREATE VIEW customer_emails AS SELECT id, email FROM customers;
                CREATE FUNCTION leak_email(i int) RETURNS text LANGUAGE sql STABLE AS $$ SELECT email FROM customers WHERE id = i $$;
                CREATE FUNCTION shout_id(i int) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'id ' || i $$;
                CREATE FUNCTION notify_email() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_notify('leaks', NEW.email); RETURN NEW; END $$;
                CREATE TRIGGER customers_notify AFTER UPDATE ON customers FOR EACH ROW EXECUTE FUNCTION notify_email();
                ANALYZE customers;
                """, direct);
            await setup.ExecuteNonQueryAsync();
        }
        var cp = Harness.ControlPlane;
        var (_, ready) = await Harness.Sidecar.ReadyAsync();
        var version = ready.GetProperty("version").GetInt64();
        var put = await cp.Api.PutAsJsonAsync("/api/v1/roles/masked", new
        {
            baseline = "agent-safe",
            grants = new[] { new { target = "pg-loopback" } },
            rules = new object[]
            {
                new { name = "writes", action = "allow", match = new { classes = new[] { "write" } } },
                new { name = "order-deletes-need-approval", action = "require_approval", match = new { commands = new[] { "DELETE" }, tables = new[] { "orders" } }, approval = new { mode = "fail-fast" } },
                new { name = "pii-hash", action = "mask", mask = new { columns = new[] { "customers.email", "orders.email" }, strategy = "hash" } },
                new { name = "pii-partial", action = "mask", mask = new { columns = new[] { "public.customers.card" }, strategy = "partial", keepLast = 4 } },
                new { name = "pii-redact", action = "mask", mask = new { columns = new[] { "customers.ssn", "customers.balance", "people.ssn", "people.tax_id" }, strategy = "redact" } },
                new { name = "pay", action = "mask", mask = new { columns = new[] { "staff.salary" }, strategy = "null", mode = "strict" } },
                new { name = "detect", action = "mask", mask = new { detectors = new[] { "email", "card" }, strategy = "redact" } },
            },
        });
        Assert.True(put.IsSuccessStatusCode, await put.Content.ReadAsStringAsync());
        var agent = await cp.Api.PutAsJsonAsync("/api/v1/agents/masker", new { role = "masked", owner = "admin" });
        Assert.True(agent.IsSuccessStatusCode, await agent.Content.ReadAsStringAsync());
        Token = await GatewayHarness.TokenAsync(cp, "masker");
        await Harness.Sidecar.WaitForVersionAsync(version + 1);
        Tap = new ByteTap(Harness.Ports["pg-loopback"]);
        await GatewayHarness.WaitUntilAgentConnectsAsync(ConnectionString);
    }

    /// <summary>Npgsql through the tap, without TLS (the sidecar allows cleartext tokens on loopback for this target).</summary>
    public string ConnectionString => new NpgsqlConnectionStringBuilder
    {
        Host = "127.0.0.1", Port = Tap.Port, Database = Harness.Database, Username = "masker", Password = Token, Pooling = false, SslMode = SslMode.Disable,
    }.ConnectionString;

    public string Libpq => $"host=127.0.0.1 port={Tap.Port} dbname={Harness.Database} user=masker sslmode=disable";

    public async Task DisposeAsync()
    {
        await Tap.DisposeAsync();
        await Harness.DisposeAsync();
    }
}

public sealed class MaskingTests(MaskingFixture fixture) : IClassFixture<MaskingFixture>
{
    private GatewayHarness H => fixture.Harness;

    private async Task<NpgsqlConnection> OpenAsync()
    {
        var connection = new NpgsqlConnection(fixture.ConnectionString);
        await connection.OpenAsync();
        return connection;
    }

    private static async Task<List<object?[]>> RowsAsync(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<object?[]>();
        while (await reader.ReadAsync())
        {
            var row = new object?[reader.FieldCount];
            for (var i = 0; i < row.Length; i++)
                row[i] = reader.IsDBNull(i) ? null : reader.GetValue(i);
            rows.Add(row);
        }
        return rows;
    }

    private void AssertNoSecretReachedTheAgent(params string[] alsoIn)
    {
        foreach (var secret in MaskingFixture.Secrets)
        {
            Assert.False(fixture.Tap.Saw(secret), $"the clear value {secret} reached the agent");
            foreach (var text in alsoIn)
                Assert.DoesNotContain(secret, text, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Plain_columns_are_masked_by_provenance_in_binary_results_whatever_their_name()
    {
        await using var connection = await OpenAsync();
        var rows = await RowsAsync(connection, "SELECT * FROM customers ORDER BY id");
        Assert.Equal(4, rows.Count); // with the inheritance child's row
        var alice = rows[0];
        Assert.Equal("Alice", alice[1]);
        Assert.Matches("^h_[0-9a-f]{24}$", (string)alice[2]!);
        Assert.Equal("**** **** **** 1111", alice[3]);
        Assert.Equal("****", alice[4]);
        Assert.Equal(0, alice[5]); // an int stays an int
        Assert.Equal("****-****-****-0004", rows[1][3]);
        Assert.Equal([null, null, null, null], rows[2][2..]); // NULL stays NULL
        Assert.Matches("^h_", (string)rows[3][2]!); // the inheritance child's column is masked too

        var aliased = await RowsAsync(connection, "SELECT c.email AS contact, card AS c2, c.id FROM customers c WHERE c.id = 1");
        Assert.Equal(alice[2], aliased[0][0]);
        Assert.Equal("**** **** **** 1111", aliased[0][1]);
        var child = await RowsAsync(connection, "SELECT email, ssn FROM customers_archive");
        Assert.Matches("^h_", (string)child[0][0]!);

        // The same statement prepared: Bind and Execute without a new RowDescription.
        await using (var prepared = new NpgsqlCommand("SELECT email, balance FROM customers WHERE id = $1", connection))
        {
            prepared.Parameters.AddWithValue(2);
            await prepared.PrepareAsync();
            for (var i = 0; i < 3; i++)
            {
                await using var reader = await prepared.ExecuteReaderAsync();
                Assert.True(await reader.ReadAsync());
                Assert.Matches("^h_", reader.GetString(0));
                Assert.Equal(0, reader.GetInt32(1));
            }
        }
        Assert.All(await RowsAsync(connection, "SELECT salary FROM staff"), r => Assert.Null(r[0]));
        Assert.True(fixture.Tap.Saw("Alice"), "the tap keeps what the agent received"); // the search below can fail
        AssertNoSecretReachedTheAgent();
    }

    [Fact]
    public async Task Hashed_values_still_join_and_group()
    {
        await using var connection = await OpenAsync();
        var pairs = await RowsAsync(connection, "SELECT c.email, o.email FROM customers c JOIN orders o ON o.customer_id = c.id ORDER BY o.id");
        Assert.Equal(3, pairs.Count);
        Assert.All(pairs, p => Assert.Equal(p[0], p[1]));
        Assert.NotEqual(pairs[0][0], pairs[1][0]);
        var groups = await RowsAsync(connection, "SELECT email, count(*) FROM orders GROUP BY email ORDER BY count(*) DESC");
        Assert.Equal(2L, groups[0][1]);
        Assert.Equal(pairs[0][0], groups[0][0]);
        AssertNoSecretReachedTheAgent();
    }

    [Fact]
    public async Task Cursors_and_returning_are_masked()
    {
        await using var connection = await OpenAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await using (var declare = new NpgsqlCommand("DECLARE c CURSOR FOR SELECT email, card FROM customers ORDER BY id", connection, transaction))
            await declare.ExecuteNonQueryAsync();
        var fetched = await RowsAsync(connection, "FETCH ALL FROM c");
        Assert.Matches("^h_", (string)fetched[0][0]!);
        var returned = await RowsAsync(connection, "UPDATE customers SET name = 'Alice' WHERE id = 1 RETURNING email, ssn, balance");
        Assert.Equal("****", returned[0][1]);
        Assert.Equal(0, returned[0][2]);
        await transaction.RollbackAsync();
        AssertNoSecretReachedTheAgent();
    }

    [Fact]
    public async Task A_statement_approved_to_run_runs_masked_and_one_masking_refuses_raises_no_request()
    {
        await using var connection = await OpenAsync();
        // Masking refuses it outright: there is nothing to approve.
        await using (var leak = new NpgsqlCommand("DELETE FROM orders WHERE id = 11 RETURNING lower(email)", connection))
        {
            var e = await Assert.ThrowsAsync<PostgresException>(() => leak.ExecuteNonQueryAsync());
            Assert.Contains("masking rule \"pii-hash\"", e.MessageText, StringComparison.Ordinal);
            Assert.DoesNotContain("request #", e.MessageText, StringComparison.Ordinal);
        }
        const string delete = "DELETE FROM orders WHERE id = 12 RETURNING email";
        await using (var first = new NpgsqlCommand(delete, connection))
        {
            var e = await Assert.ThrowsAsync<PostgresException>(() => first.ExecuteNonQueryAsync());
            var id = long.Parse(System.Text.RegularExpressions.Regex.Match(e.MessageText, "request #([0-9]+) was raised").Groups[1].Value);
            Assert.Equal(System.Net.HttpStatusCode.Created, (await H.ControlPlane.Api.PostAsJsonAsync("/api/v1/users",
                new { userName = "mask-approver", password = "mask-approver-password", role = "Approver" })).StatusCode);
            var (approver, _) = await ConsoleSignIn.SignInAsync(H.ControlPlane.Url, "mask-approver", "mask-approver-password");
            using (approver)
                Assert.Equal(System.Net.HttpStatusCode.OK, (await approver.PostAsJsonAsync($"/api/v1/approvals/{id}/approve", new { })).StatusCode);
        }
        // Approved, it runs — and its RETURNING email is masked like any plain output column.
        await using var transaction = await connection.BeginTransactionAsync();
        var returned = await RowsAsync(connection, delete);
        Assert.Matches("^h_", (string)Assert.Single(returned)[0]!);
        await transaction.RollbackAsync();
        AssertNoSecretReachedTheAgent();
    }

    [Theory]
    [InlineData("SELECT lower(email) FROM customers")]
    [InlineData("SELECT email || '' FROM customers")]
    [InlineData("SELECT email::varchar(100) FROM customers")]
    [InlineData("SELECT row_to_json(c) FROM customers c")]
    [InlineData("SELECT c::text FROM customers c")]
    [InlineData("SELECT to_jsonb(c.*) FROM customers c")]
    [InlineData("SELECT json_agg(email) FROM customers")]
    [InlineData("SELECT string_agg(ssn, ',') FROM customers")]
    [InlineData("SELECT ARRAY[card] FROM customers")]
    [InlineData("SELECT ROW(email, ssn) FROM customers")]
    [InlineData("SELECT (SELECT email FROM customers WHERE id = 1)")]
    [InlineData("WITH x AS (SELECT email FROM customers) SELECT * FROM x")]
    [InlineData("SELECT e FROM (SELECT email AS e FROM customers) s")]
    [InlineData("SELECT * FROM (SELECT * FROM customers) s")]
    [InlineData("SELECT email FROM customers UNION SELECT 'x'")]
    [InlineData("SELECT x FROM customers c(a, b, x)")]
    [InlineData("SELECT * FROM customer_emails")]
    [InlineData("SELECT leak_email(1)")]
    [InlineData("SELECT most_common_vals::text FROM pg_stats WHERE tablename = 'customers'")]
    [InlineData("SELECT pg_notify('leak', email) FROM customers")]
    [InlineData("UPDATE customers SET name = email WHERE id = 3 RETURNING name")]
    [InlineData("INSERT INTO memos SELECT 100 + id, ssn FROM customers")]
    [InlineData("SELECT id FROM staff WHERE salary > 100")]
    [InlineData("COPY (SELECT email FROM customers) TO STDOUT")]
    [InlineData("COPY customers TO STDOUT (FORMAT binary)")]
    [InlineData("ALTER TABLE customers RENAME COLUMN email TO contact")]
    [InlineData("SELECT query_to_xml('select email from customers', true, true, '')")]
    [InlineData("PREPARE p AS SELECT email FROM customers")]
    [InlineData("SELECT ARRAY['', email, ''] FROM customers")]
    [InlineData("SELECT 1 FROM customers WHERE setseed(ascii(substr(email, 1, 1)) / 256.0) IS NULL")]
    public async Task Every_other_route_is_refused_with_42501_naming_the_rule(string sql)
    {
        await using var connection = await OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        var e = await Assert.ThrowsAsync<PostgresException>(() => command.ExecuteNonQueryAsync());
        Assert.True(e.SqlState == "42501", $"{sql}: {e.SqlState} {e.MessageText}");
        Assert.Matches("rule \"(pii-hash|pii-partial|pii-redact|pay|detect|agent-safe/[a-z-]+|writes)\"|no rule of role", e.MessageText);
        Assert.Equal(1, await new NpgsqlCommand("SELECT 1", connection).ExecuteScalarAsync()); // the session goes on
        AssertNoSecretReachedTheAgent(e.MessageText, e.Detail ?? "");
    }

    [Fact]
    public async Task Filters_may_use_masked_columns_and_errors_that_would_quote_a_value_are_withheld()
    {
        await using var connection = await OpenAsync();
        Assert.Single(await RowsAsync(connection, "SELECT id FROM customers WHERE email LIKE 'alice%' ORDER BY ssn"));
        await using var cast = new NpgsqlCommand("SELECT id FROM customers WHERE ssn::int = 1", connection);
        var e = await Assert.ThrowsAsync<PostgresException>(() => cast.ExecuteNonQueryAsync());
        Assert.Equal("22P02", e.SqlState); // the server's SQLSTATE, not its text
        Assert.Contains("withheld", e.MessageText, StringComparison.Ordinal);
        AssertNoSecretReachedTheAgent(e.MessageText, e.Detail ?? "");
    }

    [Fact]
    public async Task A_notification_raised_by_a_statement_on_a_masked_table_has_its_payload_withheld()
    {
        await using var connection = await OpenAsync();
        var payloads = new List<string>();
        connection.Notification += (_, e) =>
        {
            lock (payloads)
                payloads.Add(e.Payload);
        };
        await new NpgsqlCommand("LISTEN leaks", connection).ExecuteNonQueryAsync();
        await new NpgsqlCommand("UPDATE customers SET name = 'Bob' WHERE id = 2", connection).ExecuteNonQueryAsync();
        await new NpgsqlCommand("SELECT 1", connection).ExecuteScalarAsync();
        lock (payloads)
        {
            var payload = Assert.Single(payloads);
            Assert.Contains("withheld", payload, StringComparison.Ordinal);
        }
        AssertNoSecretReachedTheAgent();
    }

    [Fact]
    public async Task Content_detectors_mask_values_the_server_does_not_attribute()
    {
        await using var connection = await OpenAsync();
        var rows = await RowsAsync(connection, "SELECT body || '' AS b, shout_id(id) FROM memos");
        Assert.Equal("call [email], card [card]", rows[0][0]);
        Assert.Equal("id 1", rows[0][1]);
        AssertNoSecretReachedTheAgent();
    }

    [Fact]
    public async Task Psql_sees_masked_rows_and_copy_in_text_and_csv_and_every_refusal()
    {
        var env = new Dictionary<string, string> { ["PGPASSWORD"] = fixture.Token };
        var run = await Cli.RunAsync("psql", [fixture.Libpq, "-X", "-At", "-v", "VERBOSITY=verbose",
            "-c", "SELECT id, email, card, ssn, balance FROM customers ORDER BY id",
            "-c", "COPY customers TO STDOUT",
            "-c", "COPY customers (id, card, email) TO STDOUT WITH (FORMAT csv, HEADER)",
            "-c", "COPY customers TO STDOUT BINARY",
            "-c", "SELECT card::text FROM customers",
            "-c", "SELECT 'done'"], env, workingDirectory: Path.GetTempPath());
        Assert.Contains("1|h_", run.Output, StringComparison.Ordinal);
        Assert.Contains("|**** **** **** 1111|****|0", run.Output, StringComparison.Ordinal);
        Assert.Matches(@"1\tAlice\th_[0-9a-f]{24}\t\*\*\*\* \*\*\*\* \*\*\*\* 1111\t\*\*\*\*\t0\n", run.Output);
        Assert.Contains("3\tNobody\t\\N\t\\N\t\\N\t\\N", run.Output, StringComparison.Ordinal);
        Assert.Contains("id,card,email\n1,\"**** **** **** 1111\",\"h_", run.Output, StringComparison.Ordinal);
        Assert.Contains("done", run.Output, StringComparison.Ordinal);
        Assert.Equal(2, run.Error.Split("ERROR:  42501").Length - 1);
        AssertNoSecretReachedTheAgent(run.Output, run.Error);
    }

    [Fact]
    public async Task Node_postgres_gets_masked_text_results()
    {
        var script = """
            import pg from 'pg';
            const client = new pg.Client();
            await client.connect();
            const rows = (await client.query('SELECT email, card, ssn, balance FROM customers WHERE id = 1')).rows;
            let refused = '';
            try { await client.query('SELECT upper(email) FROM customers'); } catch (e) { refused = e.code; }
            console.log(JSON.stringify({ rows, refused }));
            await client.end();
            """;
        var file = Path.Combine(Binaries.RepositoryRoot, "tests", "node", $"mask-{Guid.NewGuid():N}.mjs");
        await File.WriteAllTextAsync(file, script);
        try
        {
            var run = await Cli.RunAsync("node", [file], new Dictionary<string, string>
            {
                ["PGHOST"] = "127.0.0.1", ["PGPORT"] = fixture.Tap.Port.ToString(CultureInfo.InvariantCulture), ["PGDATABASE"] = H.Database,
                ["PGUSER"] = "masker", ["PGPASSWORD"] = fixture.Token, ["PGSSLMODE"] = "disable",
            });
            Assert.True(run.ExitCode == 0, run.ToString());
            var result = JsonDocument.Parse(run.Output).RootElement;
            var row = result.GetProperty("rows")[0];
            Assert.StartsWith("h_", row.GetProperty("email").GetString(), StringComparison.Ordinal);
            Assert.Equal("**** **** **** 1111", row.GetProperty("card").GetString());
            Assert.Equal(0, row.GetProperty("balance").GetInt32());
            Assert.Equal("42501", result.GetProperty("refused").GetString());
            AssertNoSecretReachedTheAgent(run.Output);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task A_column_added_or_renamed_to_a_masked_name_is_masked_without_reconnecting()
    {
        await using var connection = await OpenAsync();
        Assert.Equal("legacy-ssn-777", (await RowsAsync(connection, "SELECT legacy_ssn FROM people"))[0][0]); // not masked: no rule names it
        fixture.Tap.Clear();
        await using (var direct = new NpgsqlConnection(H.DirectConnectionString))
        {
            await direct.OpenAsync();
            await new NpgsqlCommand("ALTER TABLE people RENAME COLUMN legacy_ssn TO ssn; ALTER TABLE people ADD COLUMN tax_id text; UPDATE people SET tax_id = 'tax-id-888'", direct).ExecuteNonQueryAsync();
        }
        await PolicySyncTests.Eventually(async () =>
        {
            var rows = await RowsAsync(connection, "SELECT ssn, tax_id FROM people");
            return (string?)rows[0][0] == "****" && (string?)rows[0][1] == "****";
        }, seconds: 15);
        // Through the gateway, DDL on a masked table is refused: a rename could unmask it.
        await using var rename = new NpgsqlCommand("ALTER TABLE people RENAME COLUMN ssn TO visible", connection);
        Assert.Equal("42501", (await Assert.ThrowsAsync<PostgresException>(() => rename.ExecuteNonQueryAsync())).SqlState);
        Assert.False(fixture.Tap.Saw("tax-id-888"));
        Assert.False(fixture.Tap.Saw("legacy-ssn-777"));
    }

    [Fact]
    public async Task The_recording_and_the_files_hold_only_masked_values_and_count_them()
    {
        var marker = Guid.NewGuid().ToString("N")[..12];
        await using (var connection = await OpenAsync())
        {
            await RowsAsync(connection, $"SELECT '{marker}', email, card, ssn FROM customers ORDER BY id");
            await using var refused = new NpgsqlCommand("SELECT lower(email) FROM customers", connection);
            await Assert.ThrowsAsync<PostgresException>(() => refused.ExecuteNonQueryAsync());
        }
        JsonElement select = default;
        string all = "";
        await PolicySyncTests.Eventually(async () =>
        {
            var list = JsonDocument.Parse(await H.ControlPlane.Api.GetStringAsync("/api/v1/sessions?agent=masker&take=50")).RootElement;
            foreach (var item in (list.ValueKind == JsonValueKind.Array ? list : list.GetProperty("items")).EnumerateArray())
            {
                var id = item.GetProperty("id").GetString();
                var events = JsonDocument.Parse(await H.ControlPlane.Api.GetStringAsync($"/api/v1/sessions/{id}/events?take=50")).RootElement;
                if (!events.GetRawText().Contains(marker, StringComparison.Ordinal) || item.GetProperty("status").GetString() == "live")
                    continue;
                all = events.GetRawText();
                select = events.EnumerateArray().Where(e => e.GetProperty("type").GetString() == RecordingEventTypes.Statement)
                    .Select(e => e.GetProperty("payload").Clone()).First(p => p.GetProperty("text").GetString()!.Contains(marker, StringComparison.Ordinal));
                return true;
            }
            return false;
        }, seconds: 60);
        var masked = select.GetProperty("masked");
        Assert.Equal(3, masked.GetProperty("public.customers.email").GetInt64()); // Alice, Bob, Old: NULLs are not masked
        Assert.Equal(2, masked.GetProperty("public.customers.card").GetInt64());
        Assert.Contains("h_", select.GetProperty("result").GetRawText(), StringComparison.Ordinal);
        Assert.Contains("pii-hash", all, StringComparison.Ordinal); // the refusal names its rule in the recording
        AssertNoSecretReachedTheAgent(all);

        // Nothing of a clear value in the sidecar's spool or the control plane's store.
        await Task.Delay(500);
        var files = Directory.EnumerateFiles(H.ControlPlane.StateDirectory, "*", SearchOption.AllDirectories)
            .Concat(Directory.EnumerateFiles(H.Sidecar.StateDirectory, "*", SearchOption.AllDirectories));
        foreach (var path in files)
        {
            byte[] bytes;
            try
            {
                bytes = await File.ReadAllBytesAsync(path);
            }
            catch (IOException)
            {
                continue;
            }
            foreach (var secret in new[] { "alice.secret@example.com", "111-22-3333", "4111 1111 1111 1111" })
                Assert.True(bytes.AsSpan().IndexOf(Encoding.UTF8.GetBytes(secret)) < 0, $"{secret} is in {path}");
        }
    }
}
