using Airlock.Testing;
using Npgsql;

namespace Airlock.EndToEnd.Tests.Gateway;

/// <summary>psql, pgbench and node-postgres against the target directly and through the sidecar.</summary>
public sealed class ClientToolTests(GatewayFixture fixture) : IClassFixture<GatewayFixture>
{
    private GatewayHarness H => fixture.Harness;

    private Dictionary<string, string> DirectEnv => new() { ["PGPASSWORD"] = GatewayHarness.ScramPassword, ["PGCONNECT_TIMEOUT"] = "10" };

    private Dictionary<string, string> SidecarEnv => new() { ["PGPASSWORD"] = H.Token, ["PGCONNECT_TIMEOUT"] = "10" };

    private async Task<string> PsqlAsync(bool viaSidecar, params string[] args)
    {
        var result = await Cli.RunAsync("psql", [viaSidecar ? H.SidecarLibpq : H.DirectLibpq, "-X", "-v", "ON_ERROR_STOP=1", "-At", .. args],
            viaSidecar ? SidecarEnv : DirectEnv, workingDirectory: Path.GetTempPath());
        Assert.True(result.ExitCode == 0, result.ToString());
        return result.Output;
    }

    private async Task<string> SameBothWays(params string[] args)
    {
        var direct = await PsqlAsync(false, args);
        var proxied = await PsqlAsync(true, args);
        Assert.Equal(direct, proxied);
        return proxied;
    }

    [Fact]
    public async Task Psql_commands_and_multi_statement_strings()
    {
        var output = await SameBothWays("-c", "SELECT 1 AS a, 'x' AS b",
            "-c", "CREATE TEMP TABLE t (n int); INSERT INTO t VALUES (1), (2), (3); SELECT sum(n) FROM t; SELECT 'done'");
        Assert.Equal("1|x\nCREATE TABLE\nINSERT 0 3\n6\ndone\n", output);
    }

    [Fact]
    public async Task Psql_copy_in_and_out()
    {
        var directory = Directory.CreateTempSubdirectory("airlock-copy-").FullName;
        var input = Path.Combine(directory, "in.csv");
        await File.WriteAllLinesAsync(input, Enumerable.Range(1, 500).Select(i => $"{i},name {i}"));
        foreach (var viaSidecar in new[] { false, true })
        {
            var output = Path.Combine(directory, $"out-{viaSidecar}.csv");
            var script = Path.Combine(directory, "copy.sql");
            await File.WriteAllTextAsync(script, $"""
                CREATE TEMP TABLE c (id int, name text);
                \copy c FROM '{input}' csv
                \copy (SELECT * FROM c ORDER BY id) TO '{output}' csv
                SELECT count(*), sum(id) FROM c;
                """);
            Assert.Equal("CREATE TABLE\nCOPY 500\nCOPY 500\n500|125250\n", await PsqlAsync(viaSidecar, "-f", script));
            Assert.Equal(await File.ReadAllTextAsync(input), await File.ReadAllTextAsync(output));
        }
        Directory.Delete(directory, recursive: true);
    }

    [Fact]
    public async Task Psql_large_objects_use_fastpath_function_calls()
    {
        var directory = Directory.CreateTempSubdirectory("airlock-lo-").FullName;
        var source = Path.Combine(directory, "source.bin");
        await File.WriteAllBytesAsync(source, System.Security.Cryptography.RandomNumberGenerator.GetBytes(300_000));
        foreach (var viaSidecar in new[] { false, true })
        {
            var exported = Path.Combine(directory, $"exported-{viaSidecar}.bin");
            var script = Path.Combine(directory, "lo.sql");
            await File.WriteAllTextAsync(script, $"""
                BEGIN;
                \lo_import '{source}'
                \lo_export :LASTOID '{exported}'
                SELECT lo_unlink(:LASTOID);
                COMMIT;
                """);
            await PsqlAsync(viaSidecar, "-f", script);
            Assert.Equal(await File.ReadAllBytesAsync(source), await File.ReadAllBytesAsync(exported));
        }
        Directory.Delete(directory, recursive: true);
    }

    [Fact]
    public async Task Psql_verifies_the_sidecar_certificate_with_verify_full()
    {
        var result = await Cli.RunAsync("psql",
            [$"host=localhost hostaddr=127.0.0.1 port={H.Port} dbname={H.Database} user=ci sslmode=verify-full sslrootcert={H.CaPath}", "-X", "-At", "-c", "SELECT 'verified'"],
            SidecarEnv);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("verified\n", result.Output);

        // A name the certificate does not carry is refused by the client.
        var wrongName = await Cli.RunAsync("psql",
            [$"host=airlock.invalid hostaddr=127.0.0.1 port={H.Port} dbname={H.Database} user=ci sslmode=verify-full sslrootcert={H.CaPath}", "-X", "-At", "-c", "SELECT 1"],
            SidecarEnv);
        Assert.NotEqual(0, wrongName.ExitCode);
        Assert.Contains("does not match", wrongName.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Notifications_reach_an_idle_listener_through_the_sidecar()
    {
        await using var listener = new NpgsqlConnection(H.SidecarConnectionString);
        await listener.OpenAsync();
        var received = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        listener.Notification += (_, e) => received.TrySetResult($"{e.Channel}:{e.Payload}");
        await new NpgsqlCommand("LISTEN airlock_channel", listener).ExecuteNonQueryAsync();

        // The listener is idle (no query running) when another session — psql through the sidecar — notifies.
        var waiting = listener.WaitAsync(TimeSpan.FromSeconds(15));
        await PsqlAsync(true, "-c", "NOTIFY airlock_channel, 'hello from psql'");
        await waiting;
        Assert.Equal("airlock_channel:hello from psql", await received.Task.WaitAsync(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task Pgbench_runs_in_every_query_mode_through_the_sidecar()
    {
        var init = await Cli.RunAsync("pgbench", ["-i", "-s", "1", "-q", H.SidecarLibpq], SidecarEnv);
        Assert.True(init.ExitCode == 0, init + H.Sidecar.Process.Output);
        foreach (var mode in new[] { "simple", "extended", "prepared" })
        {
            foreach (var (libpq, env) in new[] { (H.DirectLibpq, DirectEnv), (H.SidecarLibpq, SidecarEnv) })
            {
                var run = await Cli.RunAsync("pgbench", ["-M", mode, "-c", "2", "-t", "50", "-n", libpq], env);
                Assert.True(run.ExitCode == 0, run.ToString());
                Assert.Contains("number of transactions actually processed: 100/100", run.Output, StringComparison.Ordinal);
                Assert.Contains("number of failed transactions: 0", run.Output, StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public async Task Node_postgres_query_and_copy()
    {
        var script = Path.Combine(Binaries.RepositoryRoot, "tests", "node", "check.mjs");
        Assert.True(Directory.Exists(Path.Combine(Binaries.RepositoryRoot, "tests", "node", "node_modules", "pg")),
            "node-postgres is not installed: scripts/test.sh runs 'npm ci' in tests/node");
        var server = GatewayHarness.Server;
        var direct = await Cli.RunAsync("node", [script], new Dictionary<string, string>
        {
            ["PGHOST"] = server.Host!, ["PGPORT"] = server.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), ["PGDATABASE"] = H.Database,
            ["PGUSER"] = GatewayHarness.ScramUser, ["PGPASSWORD"] = GatewayHarness.ScramPassword, ["PGSSLMODE"] = "disable",
        });
        var proxied = await Cli.RunAsync("node", [script], new Dictionary<string, string>
        {
            ["PGHOST"] = "127.0.0.1", ["PGPORT"] = H.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), ["PGDATABASE"] = H.Database,
            ["PGUSER"] = "ci", ["PGPASSWORD"] = H.Token, ["PGSSLMODE"] = "require",
        });
        Assert.True(direct.ExitCode == 0, direct.ToString());
        Assert.True(proxied.ExitCode == 0, proxied.ToString());
        Assert.Equal(direct.Output, proxied.Output);
        Assert.Contains("\"exported\":\"1\\tone\\n2\\ttwo\\n3\\tthree\\n\"", proxied.Output, StringComparison.Ordinal);
    }
}
