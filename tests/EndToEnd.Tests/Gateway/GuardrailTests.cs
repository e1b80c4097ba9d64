using System.Net.Http.Json;
using System.Text.Json;
using Airlock.Contracts.Recording;
using Airlock.Testing;
using Npgsql;

namespace Airlock.EndToEnd.Tests.Gateway;

/// <summary>
/// A real sidecar and PostgreSQL server, two agents: <c>reader</c> (the agent-safe baseline: reads only,
/// so its upstream session is read-only) and <c>writer</c> (the baseline plus an allow rule for writes),
/// and an approval rule. Refused statements in simple, extended, batched, pipelined and transactional
/// use through psql, Npgsql and node-postgres: each gets 42501 naming the rule, the session goes on, and
/// the target is unchanged (checked directly).
/// </summary>
public sealed class GuardrailFixture : IAsyncLifetime
{
    public GatewayHarness Harness { get; private set; } = default!;
    public string ReaderToken { get; private set; } = "";
    public string WriterToken { get; private set; } = "";

    public async Task InitializeAsync()
    {
        // bump_counter writes although it is vouched for: only the read-only upstream session stops it.
        Harness = await GatewayHarness.StartAsync(sidecarArgs: ["--Sidecar:Postgres:SafeFunctions:0=bump_counter"]);
        await using (var direct = new NpgsqlConnection(Harness.DirectConnectionString))
        {
            await direct.OpenAsync();
            await using var setup = new NpgsqlCommand("""
                CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL);
                INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 5) g;
                CREATE TABLE counter (n int NOT NULL);
                INSERT INTO counter VALUES (0);
                CREATE FUNCTION bump_counter() RETURNS int LANGUAGE plpgsql VOLATILE AS $$ BEGIN UPDATE counter SET n = n + 1; RETURN 1; END $$;
                CREATE FUNCTION customer_label(i int) RETURNS text LANGUAGE sql STABLE AS $$ SELECT 'label ' || i $$;
                CREATE FUNCTION touch_counter() RETURNS int LANGUAGE sql VOLATILE AS $$ SELECT 1 $$;
                CREATE FUNCTION shout(t text) RETURNS text LANGUAGE sql VOLATILE AS $$ SELECT upper(t) $$;
                """, direct);
            await setup.ExecuteNonQueryAsync();
        }
        var cp = Harness.ControlPlane;
        var (_, ready) = await Harness.Sidecar.ReadyAsync();
        var version = ready.GetProperty("version").GetInt64();
        Put(await cp.Api.PutAsJsonAsync("/api/v1/roles/safe-reader", new { baseline = "agent-safe", grants = new[] { new { target = "pg" } } }));
        Put(await cp.Api.PutAsJsonAsync("/api/v1/roles/safe-writer", new
        {
            baseline = "agent-safe",
            grants = new[] { new { target = "pg" } },
            rules = new object[]
            {
                new { name = "writes", action = "allow", match = new { classes = new[] { "write" } } },
                new { name = "big-deletes-need-approval", action = "require_approval", match = new { commands = new[] { "DELETE" }, tables = new[] { "counter" } }, approval = new { mode = "fail-fast" } },
            },
        }));
        Put(await cp.Api.PutAsJsonAsync("/api/v1/agents/reader", new { role = "safe-reader", owner = "admin" }));
        Put(await cp.Api.PutAsJsonAsync("/api/v1/agents/writer", new { role = "safe-writer", owner = "admin" }));
        ReaderToken = await GatewayHarness.TokenAsync(cp, "reader");
        WriterToken = await GatewayHarness.TokenAsync(cp, "writer");
        // Snapshots may coalesce changes: wait until both agents can connect with their roles in force.
        await Harness.Sidecar.WaitForVersionAsync(version + 1);
        await PolicySyncTests.Eventually(async () =>
        {
            try
            {
                foreach (var (agent, token) in new[] { ("reader", ReaderToken), ("writer", WriterToken) })
                {
                    await using var connection = new NpgsqlConnection(Harness.SidecarConnectionStringFor(token, agent));
                    await connection.OpenAsync();
                }
                return true;
            }
            catch (PostgresException)
            {
                return false;
            }
        }, seconds: 30);
    }

    private static void Put(HttpResponseMessage response)
    {
        if (!response.IsSuccessStatusCode)
            throw new InvalidOperationException($"refused: {response.StatusCode} {response.Content.ReadAsStringAsync().Result}");
    }

    public async Task DisposeAsync() => await Harness.DisposeAsync();
}

public sealed class GuardrailTests(GuardrailFixture fixture) : IClassFixture<GuardrailFixture>
{
    private GatewayHarness H => fixture.Harness;

    private string Reader => H.SidecarConnectionStringFor(fixture.ReaderToken, "reader");
    private string Writer => H.SidecarConnectionStringFor(fixture.WriterToken, "writer");

    private async Task<NpgsqlConnection> OpenAsync(string connectionString)
    {
        var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        return connection;
    }

    private async Task<object?> DirectScalarAsync(string sql)
    {
        await using var direct = await OpenAsync(H.DirectConnectionString);
        await using var command = new NpgsqlCommand(sql, direct);
        return await command.ExecuteScalarAsync();
    }

    private static async Task<PostgresException> RefusedAsync(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        var e = await Assert.ThrowsAsync<PostgresException>(() => command.ExecuteNonQueryAsync());
        Assert.True(e.SqlState == "42501", $"{sql}: {e.SqlState} {e.MessageText}");
        return e;
    }

    private static async Task<object?> ScalarAsync(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        return await command.ExecuteScalarAsync();
    }

    [Fact]
    public async Task A_refused_statement_names_its_rule_and_the_session_goes_on()
    {
        await using var reader = await OpenAsync(Reader);
        var drop = await RefusedAsync(reader, "DROP TABLE customers");
        Assert.Contains("no rule of role \"safe-reader\" allows DROP TABLE", drop.MessageText, StringComparison.Ordinal);
        var file = await RefusedAsync(reader, "SELECT pg_read_file('/etc/passwd')");
        Assert.Contains("agent-safe/no-administration", file.MessageText, StringComparison.Ordinal);
        var unfiltered = await RefusedAsync(reader, "DELETE FROM customers WHERE 1 = 1");
        Assert.Contains("agent-safe/filtered-writes", unfiltered.MessageText, StringComparison.Ordinal);
        var delete = await RefusedAsync(reader, "DELETE FROM customers WHERE id = 1");
        Assert.Contains("no rule of role \"safe-reader\" allows DELETE", delete.MessageText, StringComparison.Ordinal);
        Assert.Equal(5L, await ScalarAsync(reader, "SELECT count(*) FROM customers"));
        Assert.Equal(5L, await DirectScalarAsync("SELECT count(*) FROM customers"));
    }

    [Fact]
    public async Task A_multi_statement_query_with_one_refused_statement_runs_nothing()
    {
        // psql -c sends both in one simple Query message.
        var result = await Cli.RunAsync("psql", [$"host=127.0.0.1 port={H.Port} dbname={H.Database} user=writer sslmode=require", "-X", "-At",
                "-c", "INSERT INTO customers VALUES (100, 'x'); DELETE FROM customers", "-c", "SELECT 'still here'"],
            new Dictionary<string, string> { ["PGPASSWORD"] = fixture.WriterToken }, workingDirectory: Path.GetTempPath());
        Assert.Contains("statement 2 of 2; none of them was run", result.Error, StringComparison.Ordinal);
        Assert.Contains("agent-safe/filtered-writes", result.Error, StringComparison.Ordinal);
        Assert.Contains("still here", result.Output, StringComparison.Ordinal);
        Assert.Equal(0L, await DirectScalarAsync("SELECT count(*) FROM customers WHERE id = 100"));
    }

    [Fact]
    public async Task Extended_protocol_refusal_comes_at_the_parse_and_the_connection_stays_usable()
    {
        await using var reader = await OpenAsync(Reader);
        await using (var delete = new NpgsqlCommand("DELETE FROM customers WHERE id = $1", reader))
        {
            delete.Parameters.AddWithValue(1);
            var e = await Assert.ThrowsAsync<PostgresException>(() => delete.ExecuteNonQueryAsync());
            Assert.Equal("42501", e.SqlState);
        }
        await using (var prepared = new NpgsqlCommand("UPDATE customers SET name = $1 WHERE id = $2", reader))
        {
            prepared.Parameters.AddWithValue("y");
            prepared.Parameters.AddWithValue(2);
            var e = await Assert.ThrowsAsync<PostgresException>(() => prepared.PrepareAsync());
            Assert.Equal("42501", e.SqlState);
        }
        await using (var select = new NpgsqlCommand("SELECT name FROM customers WHERE id = $1", reader))
        {
            select.Parameters.AddWithValue(2);
            await select.PrepareAsync();
            Assert.Equal("customer 2", await select.ExecuteScalarAsync());
            Assert.Equal("customer 2", await select.ExecuteScalarAsync());
        }
        Assert.Equal("customer 1", await DirectScalarAsync("SELECT name FROM customers WHERE id = 1"));
    }

    [Fact]
    public async Task A_batch_with_one_sync_runs_nothing_after_the_refusal_and_with_error_barriers_the_rest_runs()
    {
        await using var writer = await OpenAsync(Writer);
        await using (var batch = new NpgsqlBatch(writer)
        {
            BatchCommands = { new("INSERT INTO customers VALUES (200, 'a')"), new("DELETE FROM customers"), new("INSERT INTO customers VALUES (201, 'b')") },
        })
        {
            var e = await Assert.ThrowsAsync<PostgresException>(() => batch.ExecuteNonQueryAsync());
            Assert.Equal("42501", e.SqlState);
        }
        // One Sync: one implicit transaction, so the first insert is rolled back with the failure.
        Assert.Equal(0L, await DirectScalarAsync("SELECT count(*) FROM customers WHERE id IN (200, 201)"));

        // A Sync after each statement (several Syncs in one pipeline): the refused one fails alone.
        await using (var batch = new NpgsqlBatch(writer)
        {
            EnableErrorBarriers = true,
            BatchCommands = { new("INSERT INTO customers VALUES (202, 'a')"), new("DELETE FROM customers"), new("INSERT INTO customers VALUES (203, 'b')") },
        })
        {
            var e = await Assert.ThrowsAsync<PostgresException>(() => batch.ExecuteNonQueryAsync());
            Assert.Equal("42501", e.SqlState);
        }
        Assert.Equal(2L, await DirectScalarAsync("SELECT count(*) FROM customers WHERE id IN (202, 203)"));
        Assert.Equal(1, await ScalarAsync(writer, "SELECT 1"));
        await DirectScalarAsync("DELETE FROM customers WHERE id IN (202, 203)");
    }

    [Fact]
    public async Task Inside_a_transaction_the_server_fails_too_so_client_and_server_agree()
    {
        await using var writer = await OpenAsync(Writer);
        await using var transaction = await writer.BeginTransactionAsync();
        await using (var insert = new NpgsqlCommand("INSERT INTO customers VALUES (300, 'in a transaction')", writer, transaction))
            await insert.ExecuteNonQueryAsync();
        await RefusedAsync(writer, "TRUNCATE customers");
        await using (var after = new NpgsqlCommand("SELECT 1", writer, transaction))
        {
            var e = await Assert.ThrowsAsync<PostgresException>(() => after.ExecuteScalarAsync());
            Assert.Equal("25P02", e.SqlState); // current transaction is aborted
        }
        await transaction.RollbackAsync();
        Assert.Equal(0L, await DirectScalarAsync("SELECT count(*) FROM customers WHERE id = 300"));
        Assert.Equal(1, await ScalarAsync(writer, "SELECT 1"));
    }

    [Fact]
    public async Task The_read_only_session_catches_a_write_the_classifier_was_told_to_allow()
    {
        await using var reader = await OpenAsync(Reader);
        // The operator vouched for bump_counter (Sidecar:Postgres:SafeFunctions), so the guard allows it;
        // the reader's upstream session is read-only, so the server refuses its UPDATE.
        await using var command = new NpgsqlCommand("SELECT bump_counter()", reader);
        var e = await Assert.ThrowsAsync<PostgresException>(() => command.ExecuteScalarAsync());
        Assert.Equal("25006", e.SqlState); // read_only_sql_transaction
        Assert.Equal(0, await DirectScalarAsync("SELECT n FROM counter"));
        // And nothing turns the read-only session off.
        foreach (var sql in new[] { "SET default_transaction_read_only = off", "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", "BEGIN READ WRITE",
                     "SET transaction_read_only = off", "SELECT set_config('default_transaction_read_only', 'off', false)", "RESET ALL; SET default_transaction_read_only TO DEFAULT" })
            await RefusedAsync(reader, sql);
        Assert.Equal("on", await ScalarAsync(reader, "SHOW default_transaction_read_only"));

        // The writer's session is not read-only.
        await using var writer = await OpenAsync(Writer);
        Assert.Equal("off", await ScalarAsync(writer, "SHOW default_transaction_read_only"));
    }

    [Fact]
    public async Task Functions_the_classifier_does_not_know_are_judged_by_the_targets_catalog()
    {
        await using var reader = await OpenAsync(Reader);
        // customer_label is STABLE in the target's catalog: a read.
        Assert.Equal("label 3", await ScalarAsync(reader, "SELECT customer_label(3)"));
        Assert.Equal("label 4", await ScalarAsync(reader, "SELECT public.CUSTOMER_LABEL(4)"));
        // touch_counter is VOLATILE and not on the safe list: at least a write, which the reader may not do.
        var e = await RefusedAsync(reader, "SELECT touch_counter()");
        Assert.Contains("no rule of role \"safe-reader\" allows SELECT (write: calls touch_counter(), a volatile function not on the safe list", e.MessageText, StringComparison.Ordinal);
        // Attribute notation is a call too: (name).shout is shout(name), a volatile function; c.name is a column.
        var attribute = await RefusedAsync(reader, "SELECT (c.name).shout FROM customers c WHERE c.id = 1");
        Assert.Contains("shout", attribute.MessageText, StringComparison.Ordinal);
        Assert.Equal("customer 1", await ScalarAsync(reader, "SELECT c.name FROM customers c WHERE c.id = 1"));
        // The writer may.
        await using var writer = await OpenAsync(Writer);
        Assert.Equal(1, await ScalarAsync(writer, "SELECT touch_counter()"));
        Assert.Equal("CUSTOMER 1", await ScalarAsync(writer, "SELECT (c.name).shout FROM customers c WHERE c.id = 1"));
    }

    [Fact]
    public async Task A_fail_fast_approval_rule_refuses_at_once_naming_the_request_and_the_session_goes_on()
    {
        await using var writer = await OpenAsync(Writer);
        var e = await RefusedAsync(writer, "DELETE FROM counter WHERE n > 100");
        Assert.Matches("^approval required by rule \"big-deletes-need-approval\": request #[0-9]+ was raised; nothing was run$", e.MessageText);
        Assert.Contains("/approvals/", e.Hint ?? "", StringComparison.Ordinal);
        Assert.Equal(1L, await ScalarAsync(writer, "SELECT count(*) FROM counter"));
    }

    /// <summary>Attack classes through psql, each a refusal (42501) in one session that carries on; the table stays whole.</summary>
    [Fact]
    public async Task Psql_bypass_attempts_are_refused_and_benign_statements_work()
    {
        string[] attacks =
        [
            "DrOp/**/TaBlE customers;",
            "SELECT 1; DROP TABLE customers;",
            "/* x */ DELETE FROM customers WHERE true;",
            "WITH gone AS (DELETE FROM customers RETURNING *) SELECT count(*) FROM gone;",
            "EXPLAIN ANALYZE DELETE FROM customers WHERE id > 0;",
            "SELECT * INTO stolen FROM customers;",
            "CREATE TABLE stolen AS SELECT * FROM customers;",
            "COPY customers TO PROGRAM 'cat > /tmp/airlock-x';",
            "COPY customers FROM STDIN;",
            "PREPARE p AS DELETE FROM customers WHERE id = $1;",
            "DO $$ BEGIN EXECUTE 'DROP TABLE customers'; END $$;",
            "SELECT query_to_xml('DELETE FROM customers RETURNING *', true, true, '');",
            "SELECT \"pg_catalog\".\"pg_read_file\"('/etc/passwd');",
            "SELECT U&\"pg_read\\005Ffile\"('/etc/passwd');",
            "SET ROLE postgres;",
            "SET SESSION AUTHORIZATION postgres;",
            "SET search_path = pg_temp, public;",
            "SELECT set_config('search_path', 'evil', false);",
            "ALTER SYSTEM SET log_statement = 'none';",
            "LOAD 'auto_explain';",
            "SELECT pg_terminate_backend(pg_backend_pid());",
            "SELECT pg_advisory_lock(1);",
            "LOCK TABLE customers;",
            "SELECT lo_import('/etc/passwd');",
            "GRANT ALL ON customers TO PUBLIC;",
            "CREATE ROLE evil SUPERUSER PASSWORD 'hunter2';",
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC DELETE FROM customers; SELECT 1; END;",
            "SELECT E'\\'; DROP TABLE customers; --';DROP TABLE customers;",
            "SELECT 'a\\'; DROP TABLE customers; --';",
            "SELECT 1 +--; x\n 2; DROP TABLE customers;",
            "UPDATE customers SET name = 'x';",
            "MERGE INTO customers c USING (SELECT 1 AS id) s ON c.id = s.id WHEN MATCHED THEN DELETE;",
            "SELECT * FROM customers FOR UPDATE;",
            "NOTIFY jobs, 'x';",
            "SELECT pg_notify('jobs', 'x');",
            "SELECT nextval('x');",
            "CALL p();",
            "SET standard_conforming_strings = off;",
            "SET client_encoding = 'SJIS';",
        ];
        string[] benign =
        [
            "SELECT count(*) FROM customers;",
            "select name from customers where id = 3;",
            "WITH c AS (SELECT * FROM customers) SELECT max(id) FROM c;",
            "EXPLAIN SELECT * FROM customers;",
            "BEGIN; SELECT 1; COMMIT;",
            "SET statement_timeout = '5s';",
            "SHOW server_version;",
            "SELECT now(), lower('A'), coalesce(NULL, 1);",
            "DECLARE c CURSOR WITH HOLD FOR SELECT id FROM customers; FETCH 2 FROM c; CLOSE c;",
            "PREPARE q(int) AS SELECT name FROM customers WHERE id = $1; EXECUTE q(1); DEALLOCATE q;",
            "SELECT $$ DROP TABLE customers; $$;",
            "COPY customers TO STDOUT;",
            "LISTEN jobs;",
        ];
        var env = new Dictionary<string, string> { ["PGPASSWORD"] = fixture.ReaderToken, ["PGCONNECT_TIMEOUT"] = "10" };
        var libpq = $"host=127.0.0.1 port={H.Port} dbname={H.Database} user=reader sslmode=require";
        var script = string.Join("\n", attacks.Select((a, i) => $"\\echo attack-{i}\n{a}")) + "\n" + string.Join("\n", benign.Select((b, i) => $"\\echo benign-{i}\n{b}")) + "\n\\echo done\n";
        var file = Path.Combine(Path.GetTempPath(), $"airlock-guardrails-{Guid.NewGuid():N}.sql");
        await File.WriteAllTextAsync(file, script);
        try
        {
            var result = await Cli.RunAsync("psql", [libpq, "-X", "-At", "-v", "VERBOSITY=verbose", "-f", file], env, workingDirectory: Path.GetTempPath());
            Assert.Contains("done", result.Output, StringComparison.Ordinal);
            // Every attack gets one 42501 error; no benign statement gets any error.
            var errors = result.Error.Split('\n').Where(l => l.Contains("ERROR:", StringComparison.Ordinal)).ToList();
            Assert.True(errors.Count(l => l.Contains("42501", StringComparison.Ordinal)) >= attacks.Length,
                $"expected {attacks.Length} refusals, got:\n{result.Error}");
            Assert.True(errors.All(l => l.Contains("42501", StringComparison.Ordinal)), $"an error other than a refusal:\n{result.Error}");
        }
        finally
        {
            File.Delete(file);
        }
        Assert.Equal(5L, await DirectScalarAsync("SELECT count(*) FROM customers WHERE id <= 5"));
        Assert.Equal(0L, await DirectScalarAsync("SELECT count(*) FROM pg_class WHERE relname = 'stolen'"));
        Assert.Equal(0L, await DirectScalarAsync("SELECT count(*) FROM pg_roles WHERE rolname = 'evil'"));
    }

    [Fact]
    public async Task Fastpath_large_object_calls_are_judged_as_the_functions_they_call()
    {
        var source = Path.Combine(Path.GetTempPath(), $"airlock-lo-{Guid.NewGuid():N}.txt");
        await File.WriteAllTextAsync(source, "large object content");
        try
        {
            string Libpq(string agent) => $"host=127.0.0.1 port={H.Port} dbname={H.Database} user={agent} sslmode=require";
            // psql's \lo_import creates and writes a large object by fastpath calls (lo_creat, lo_open, lowrite).
            var refused = await Cli.RunAsync("psql", [Libpq("reader"), "-X", "-At", "-c", $"\\lo_import {source}"],
                new Dictionary<string, string> { ["PGPASSWORD"] = fixture.ReaderToken }, workingDirectory: Path.GetTempPath());
            Assert.NotEqual(0, refused.ExitCode);
            Assert.Contains("no rule of role \"safe-reader\" allows SELECT (write", refused.Error, StringComparison.Ordinal);
            var allowed = await Cli.RunAsync("psql", [Libpq("writer"), "-X", "-At", "-c", $"\\lo_import {source}"],
                new Dictionary<string, string> { ["PGPASSWORD"] = fixture.WriterToken }, workingDirectory: Path.GetTempPath());
            Assert.True(allowed.ExitCode == 0, allowed.ToString());
            var oid = allowed.Output.Trim().Split(' ')[^1];
            Assert.Equal("large object content", System.Text.Encoding.UTF8.GetString((byte[])(await DirectScalarAsync($"SELECT lo_get({oid})"))!));
            await DirectScalarAsync($"SELECT lo_unlink({oid})");
        }
        finally
        {
            File.Delete(source);
        }
    }

    [Fact]
    public async Task The_fastpath_large_object_oids_are_the_servers()
    {
        await using var direct = await OpenAsync(H.DirectConnectionString);
        foreach (var (oid, function) in Airlock.Sidecar.Protocols.Postgres.PgFastpath.LargeObjectFunctions)
            Assert.Equal(function.Name, await ScalarAsync(direct, $"SELECT proname::text FROM pg_proc WHERE oid = {oid}"));
    }

    [Fact]
    public async Task Node_postgres_hears_the_refusal_and_carries_on()
    {
        var script = Path.Combine(Path.GetTempPath(), $"airlock-guardrails-{Guid.NewGuid():N}.mjs");
        var pg = Path.Combine(Binaries.RepositoryRoot, "tests", "node", "node_modules", "pg", "lib", "index.js");
        await File.WriteAllTextAsync(script, $$"""
            import pg from '{{pg}}';
            const client = new pg.Client({ host: '127.0.0.1', port: {{H.Port}}, database: '{{H.Database}}', user: 'reader', password: process.env.TOKEN, ssl: { rejectUnauthorized: false } });
            await client.connect();
            for (const sql of ['DELETE FROM customers WHERE id = $1', 'DROP TABLE customers']) {
              try { await client.query(sql, sql.includes('$1') ? [1] : undefined); console.log('ran: ' + sql); }
              catch (e) { console.log('refused ' + e.code + ': ' + sql); }
            }
            const { rows } = await client.query('SELECT count(*)::int AS n FROM customers WHERE id <= $1', [5]);
            console.log('count ' + rows[0].n);
            await client.end();
            """);
        try
        {
            var result = await Cli.RunAsync("node", [script], new Dictionary<string, string> { ["TOKEN"] = fixture.ReaderToken }, workingDirectory: Path.GetTempPath());
            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.Contains("refused 42501: DELETE FROM customers WHERE id = $1", result.Output, StringComparison.Ordinal);
            Assert.Contains("refused 42501: DROP TABLE customers", result.Output, StringComparison.Ordinal);
            Assert.Contains("count 5", result.Output, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(script);
        }
    }

    [Fact]
    public async Task The_recording_carries_class_decision_and_rule_and_no_password()
    {
        var marker = Guid.NewGuid().ToString("N")[..12];
        await using (var reader = await OpenAsync(Reader))
        {
            await ScalarAsync(reader, $"SELECT '{marker}'");
            await RefusedAsync(reader, "CREATE ROLE evil2 PASSWORD 'hunter2-secret'");
            await RefusedAsync(reader, "SELECT * FROM dblink('host=x password=s3cr3t-pw', 'select 1') AS t(a int)");
        }
        List<JsonElement> statements = [];
        await PolicySyncTests.Eventually(async () =>
        {
            var list = JsonDocument.Parse(await H.ControlPlane.Api.GetStringAsync("/api/v1/sessions?agent=reader&take=50")).RootElement;
            foreach (var item in (list.ValueKind == JsonValueKind.Array ? list : list.GetProperty("items")).EnumerateArray())
            {
                var id = item.GetProperty("id").GetString();
                var events = JsonDocument.Parse(await H.ControlPlane.Api.GetStringAsync($"/api/v1/sessions/{id}/events?take=50")).RootElement;
                if (!events.GetRawText().Contains(marker, StringComparison.Ordinal) || item.GetProperty("status").GetString() == "live")
                    continue;
                statements = events.EnumerateArray().Where(e => e.GetProperty("type").GetString() == RecordingEventTypes.Statement)
                    .Select(e => e.GetProperty("payload").Clone()).ToList();
                return true;
            }
            return false;
        }, seconds: 60);
        JsonElement Statement(string text) => Assert.Single(statements, s => s.GetProperty("text").GetString()!.Contains(text, StringComparison.Ordinal));
        var select = Statement(marker);
        Assert.Equal("read", select.GetProperty("classification").GetString());
        Assert.Equal("allow", select.GetProperty("decision").GetString());
        Assert.Equal("agent-safe/reads", select.GetProperty("rule").GetString());
        var role = Statement("CREATE ROLE evil2");
        Assert.Equal("dcl", role.GetProperty("classification").GetString());
        Assert.Equal("block", role.GetProperty("decision").GetString());
        Assert.Equal("agent-safe/no-administration", role.GetProperty("rule").GetString());
        Assert.StartsWith("42501", role.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Equal("admin", Statement("dblink").GetProperty("classification").GetString());
        var all = string.Join("\n", statements.Select(s => s.GetRawText()));
        Assert.DoesNotContain("hunter2-secret", all, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cr3t-pw", all, StringComparison.Ordinal);
        Assert.Contains("[redacted]", all, StringComparison.Ordinal);
    }
}
