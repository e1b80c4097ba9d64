using System.Text;
using Npgsql;
using NpgsqlTypes;

namespace Airlock.EndToEnd.Tests.Gateway;

/// <summary>
/// Npgsql scenarios written once and run twice — directly against PostgreSQL and through the
/// sidecar — and the transcripts must be identical. Each scenario also asserts what it expects, so
/// two identical wrong answers fail too.
/// </summary>
public sealed class NpgsqlScenarioTests(GatewayFixture fixture) : IClassFixture<GatewayFixture>
{
    private async Task SameBothWays(Func<string, Task<string>> scenario)
    {
        var direct = await scenario(fixture.Harness.DirectConnectionString);
        var proxied = await scenario(fixture.Harness.SidecarConnectionString);
        Assert.Equal(direct, proxied);
    }

    private static async Task<NpgsqlConnection> OpenAsync(string connectionString, Action<NpgsqlConnectionStringBuilder>? configure = null)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        configure?.Invoke(builder);
        var connection = new NpgsqlConnection(builder.ConnectionString);
        await connection.OpenAsync();
        return connection;
    }

    private static async Task<string> ReadAllAsync(NpgsqlDataReader reader)
    {
        var text = new StringBuilder();
        do
        {
            text.Append("| ").AppendJoin(',', Enumerable.Range(0, reader.FieldCount).Select(reader.GetName)).AppendLine();
            while (await reader.ReadAsync())
                text.AppendJoin(',', Enumerable.Range(0, reader.FieldCount).Select(i => reader.IsDBNull(i) ? "NULL" : Format(reader.GetValue(i)))).AppendLine();
        }
        while (await reader.NextResultAsync());
        return text.ToString();
    }

    private static string Format(object value) => value switch
    {
        byte[] bytes => Convert.ToHexString(bytes),
        Array array => "[" + string.Join(';', array.Cast<object>().Select(Format)) + "]",
        DateTime d => d.ToString("O"),
        _ => Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? "",
    };

    [Fact]
    public Task Simple_and_extended_protocol_and_multiple_result_sets() => SameBothWays(async cs =>
    {
        await using var connection = await OpenAsync(cs);
        var text = new StringBuilder();
        // No parameters: Npgsql uses the extended protocol anyway; a multi-statement string gives several result sets.
        await using (var command = new NpgsqlCommand("SELECT 1 AS one; SELECT 'two' AS two, NULL::int AS nothing; VALUES (3), (4)", connection))
        await using (var reader = await command.ExecuteReaderAsync())
            text.Append(await ReadAllAsync(reader));
        await using (var command = new NpgsqlCommand("SELECT $1::int + $2::int AS sum, $3::text AS t", connection))
        {
            command.Parameters.Add(new() { Value = 40 });
            command.Parameters.Add(new() { Value = 2 });
            command.Parameters.Add(new() { Value = "héllo ✓" });
            await using var reader = await command.ExecuteReaderAsync();
            text.Append(await ReadAllAsync(reader));
        }
        Assert.Contains("42,héllo ✓", text.ToString(), StringComparison.Ordinal);
        Assert.Contains("two,NULL", text.ToString(), StringComparison.Ordinal);
        return text.ToString();
    });

    [Fact]
    public Task Prepared_and_auto_prepared_statements() => SameBothWays(async cs =>
    {
        await using var connection = await OpenAsync(cs, b => { b.MaxAutoPrepare = 10; b.AutoPrepareMinUsages = 2; });
        var results = new List<int>();
        for (var i = 0; i < 5; i++)
        {
            await using var auto = new NpgsqlCommand("SELECT $1::int * 2", connection);
            auto.Parameters.Add(new() { Value = i });
            results.Add((int)(await auto.ExecuteScalarAsync())!);
        }
        await using var explicitly = new NpgsqlCommand("SELECT $1::int * 3", connection);
        explicitly.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Integer });
        await explicitly.PrepareAsync();
        for (var i = 0; i < 3; i++)
        {
            explicitly.Parameters[0].Value = i;
            results.Add((int)(await explicitly.ExecuteScalarAsync())!);
        }
        Assert.Equal([0, 2, 4, 6, 8, 0, 3, 6], results);
        return string.Join(',', results);
    });

    [Fact]
    public Task Binary_results_of_many_types() => SameBothWays(async cs =>
    {
        await using var connection = await OpenAsync(cs);
        await using var command = new NpgsqlCommand("""
            SELECT 1::smallint, 2::int, 3::bigint, 4.5::numeric(10,2), 6.25::float8, true, 'text'::text, '\xdeadbeef'::bytea,
                   '2026-11-25 12:34:56+00'::timestamptz, '2026-11-25'::date, '1 day 2 hours'::interval,
                   'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, '{"k": [1, 2]}'::jsonb, ARRAY[1, 2, 3], ARRAY['x', NULL],
                   '192.168.0.1/24'::inet, NULL::text
            """, connection);
        await using var reader = await command.ExecuteReaderAsync();
        var text = await ReadAllAsync(reader);
        Assert.Contains("DEADBEEF", text, StringComparison.Ordinal);
        Assert.Contains("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", text, StringComparison.Ordinal);
        return text;
    });

    [Fact]
    public Task Batching() => SameBothWays(async cs =>
    {
        await using var connection = await OpenAsync(cs);
        await using var batch = new NpgsqlBatch(connection)
        {
            BatchCommands = { new("CREATE TEMP TABLE b (n int)"), new("INSERT INTO b SELECT generate_series(1, 5)"), new("SELECT sum(n) FROM b"), new("SELECT count(*) FROM b") },
        };
        await using var reader = await batch.ExecuteReaderAsync();
        var text = await ReadAllAsync(reader);
        Assert.Contains("15", text, StringComparison.Ordinal);
        return text + batch.BatchCommands[1].RecordsAffected;
    });

    [Fact]
    public Task Binary_copy_import_and_export() => SameBothWays(async cs =>
    {
        await using var connection = await OpenAsync(cs);
        await using (var create = new NpgsqlCommand("CREATE TEMP TABLE c (id int, name text, data bytea)", connection))
            await create.ExecuteNonQueryAsync();
        await using (var import = await connection.BeginBinaryImportAsync("COPY c FROM STDIN (FORMAT BINARY)"))
        {
            for (var i = 0; i < 2000; i++)
            {
                await import.StartRowAsync();
                await import.WriteAsync(i, NpgsqlDbType.Integer);
                await import.WriteAsync($"row {i}", NpgsqlDbType.Text);
                await import.WriteAsync(new byte[] { (byte)i, (byte)(i >> 8) }, NpgsqlDbType.Bytea);
            }
            Assert.Equal(2000UL, await import.CompleteAsync());
        }
        var sum = 0L;
        var names = new StringBuilder();
        await using (var export = await connection.BeginBinaryExportAsync("COPY (SELECT id, name FROM c ORDER BY id) TO STDOUT (FORMAT BINARY)"))
        {
            while (await export.StartRowAsync() != -1)
            {
                sum += await export.ReadAsync<int>();
                var name = await export.ReadAsync<string>();
                if (sum % 500 == 0)
                    names.Append(name);
            }
        }
        Assert.Equal(1999L * 2000 / 2, sum);
        return $"{sum} {names}";
    });

    [Fact]
    public Task Transactions_with_errors_and_savepoints() => SameBothWays(async cs =>
    {
        await using var connection = await OpenAsync(cs);
        var text = new StringBuilder();
        await using (var create = new NpgsqlCommand("CREATE TEMP TABLE t (n int PRIMARY KEY)", connection))
            await create.ExecuteNonQueryAsync();
        await using (var transaction = await connection.BeginTransactionAsync())
        {
            await new NpgsqlCommand("INSERT INTO t VALUES (1)", connection, transaction).ExecuteNonQueryAsync();
            var failed = await Assert.ThrowsAsync<PostgresException>(() => new NpgsqlCommand("INSERT INTO t VALUES (1)", connection, transaction).ExecuteNonQueryAsync());
            text.Append(failed.SqlState).Append(' ');
            var aborted = await Assert.ThrowsAsync<PostgresException>(() => new NpgsqlCommand("SELECT 1", connection, transaction).ExecuteNonQueryAsync());
            text.Append(aborted.SqlState).Append(' ');
            Assert.Equal("25P02", aborted.SqlState);
            await transaction.RollbackAsync();
        }
        await using (var transaction = await connection.BeginTransactionAsync())
        {
            await new NpgsqlCommand("INSERT INTO t VALUES (2)", connection, transaction).ExecuteNonQueryAsync();
            await transaction.SaveAsync("before");
            await Assert.ThrowsAsync<PostgresException>(() => new NpgsqlCommand("INSERT INTO t VALUES (2)", connection, transaction).ExecuteNonQueryAsync());
            await transaction.RollbackAsync("before");
            await new NpgsqlCommand("INSERT INTO t VALUES (3)", connection, transaction).ExecuteNonQueryAsync();
            await transaction.CommitAsync();
        }
        var rows = await new NpgsqlCommand("SELECT string_agg(n::text, ',' ORDER BY n) FROM t", connection).ExecuteScalarAsync();
        Assert.Equal("2,3", rows);
        return text.Append(rows).ToString();
    });

    [Fact]
    public Task Cancellation_and_command_timeout() => SameBothWays(async cs =>
    {
        await using var connection = await OpenAsync(cs);
        await using var sleep = new NpgsqlCommand("SELECT pg_sleep(30)", connection);
        var running = sleep.ExecuteNonQueryAsync();
        await Task.Delay(500);
        sleep.Cancel();
        var cancelled = await Assert.ThrowsAnyAsync<Exception>(() => running);
        var state = (cancelled as PostgresException ?? cancelled.InnerException as PostgresException)?.SqlState;
        Assert.Equal("57014", state);
        // The connection survives a cancel.
        Assert.Equal(1, await new NpgsqlCommand("SELECT 1", connection).ExecuteScalarAsync());

        await using var slow = new NpgsqlCommand("SELECT pg_sleep(30)", connection) { CommandTimeout = 1 };
        var timedOut = await Assert.ThrowsAnyAsync<Exception>(() => slow.ExecuteNonQueryAsync());
        Assert.True(timedOut is NpgsqlException { InnerException: TimeoutException } or NpgsqlException { IsTransient: true } or PostgresException { SqlState: "57014" }, timedOut.ToString());
        return $"{state} {timedOut.GetType().Name}";
    });

    [Fact]
    public Task Terminating_ones_own_backend_by_process_id() => SameBothWays(async cs =>
    {
        await using var victim = await OpenAsync(cs);
        await using var killer = await OpenAsync(cs);
        var pid = victim.ProcessID;
        Assert.Equal(pid, await new NpgsqlCommand("SELECT pg_backend_pid()", victim).ExecuteScalarAsync());
        Assert.Equal(true, await new NpgsqlCommand($"SELECT pg_terminate_backend({pid})", killer).ExecuteScalarAsync());
        var broken = await Assert.ThrowsAnyAsync<Exception>(() => new NpgsqlCommand("SELECT 1", victim).ExecuteScalarAsync());
        var state = (broken as PostgresException ?? broken.InnerException as PostgresException)?.SqlState ?? broken.GetType().Name;
        Assert.Equal(1, await new NpgsqlCommand("SELECT 1", killer).ExecuteScalarAsync());
        return state;
    });
}
