using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Airlock.Testing;
using Npgsql;

namespace Airlock.Benchmarks;

/// <summary>
/// Approval round trip: a statement held at a real sidecar, approved through the REST API (what the
/// console's button calls), measured from the decision being stored (its <c>decidedAt</c>) to the
/// statement running at the target (its <c>clock_timestamp()</c>; one host, one clock). With one
/// control plane, and with two replicas on one PostgreSQL store and Redis, the vote going to the
/// replica the sidecar is not connected to.
/// </summary>
internal static partial class ApprovalRoundTrip
{
    public static async Task<int> RunAsync(string[] args)
    {
        var runs = Args.Int(args, "--runs", 200);
        var warmup = Args.Int(args, "--warmup", 20);
        var redis = ControlPlaneProcess.TestRedis;
        Console.WriteLine($"approval round trip: {runs} runs (+{warmup} warm-up) per setup, {Environment.ProcessorCount} cores");
        var store = await TestPostgres.CreateDatabaseAsync("airlock_bench_approvals");
        try
        {
            await using var harness = await GatewayHarness.StartAsync(storeConnectionString: store, controlPlaneArgs: [$"--Airlock:Redis={redis}"]);
            var a = harness.ControlPlane;
            var (b, replicaApi) = await a.StartReplicaAsync(store, redis);
            await using var replica = b;
            replicaApi.Dispose();
            var token = await SetUpAsync(harness);
            var one = await MeasureAsync(harness, token, a.Url, runs, warmup);
            var two = await MeasureAsync(harness, token, b.Url, runs, warmup);
            Console.WriteLine();
            Console.WriteLine("setup                                   p50 ms   p90 ms   p99 ms   max ms");
            Print("one control plane", one);
            Print("two replicas, vote on the other one", two);
            Console.WriteLine($"target p99 < 200 ms: {(Percentile(one, 99) < 200 && Percentile(two, 99) < 200 ? "met" : "NOT met")}");
            return 0;
        }
        finally
        {
            await TestPostgres.DropDatabaseAsync(store);
        }
    }

    private static async Task<string> SetUpAsync(GatewayHarness harness)
    {
        var cp = harness.ControlPlane;
        await using (var direct = new NpgsqlConnection(harness.DirectConnectionString))
        {
            await direct.OpenAsync();
            await using var setup = new NpgsqlCommand("CREATE TABLE bench (id int PRIMARY KEY, n int NOT NULL); INSERT INTO bench VALUES (1, 0);", direct);
            await setup.ExecuteNonQueryAsync();
        }
        (await cp.Api.PostAsJsonAsync("/api/v1/users", new { userName = "approver", password = "approver-long-password", role = "Approver" })).EnsureSuccessStatusCode();
        var (_, ready) = await harness.Sidecar.ReadyAsync();
        var version = ready.GetProperty("version").GetInt64();
        (await cp.Api.PutAsJsonAsync("/api/v1/roles/bench", new
        {
            grants = new[] { new { target = "pg" } },
            rules = new object[]
            {
                new { name = "reads", action = "allow", match = new { classes = new[] { "read" } } },
                new { name = "updates-need-approval", action = "require_approval", match = new { commands = new[] { "UPDATE" } }, approval = new { mode = "hold", timeoutSeconds = 300 } },
            },
        })).EnsureSuccessStatusCode();
        (await cp.Api.PutAsJsonAsync("/api/v1/agents/bench-agent", new { role = "bench", owner = "admin" })).EnsureSuccessStatusCode();
        await harness.Sidecar.WaitForVersionAsync(version + 1);
        return await GatewayHarness.TokenAsync(cp, "bench-agent");
    }

    /// <summary>Milliseconds from the decision stored (<c>decidedAt</c>) to the statement running upstream, per run.</summary>
    private static async Task<List<double>> MeasureAsync(GatewayHarness harness, string token, string voteAt, int runs, int warmup)
    {
        var (approver, _) = await ConsoleSignIn.SignInAsync(voteAt, "approver", "approver-long-password");
        using var api = new HttpClient { BaseAddress = new Uri(harness.ControlPlane.Url) };
        api.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", harness.ControlPlane.ApiKey);
        await using var connection = new NpgsqlConnection(harness.SidecarConnectionStringFor(token, "bench-agent"));
        var held = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        connection.Notice += (_, e) =>
        {
            if (WaitingFor().Match(e.Notice.MessageText) is { Success: true } m)
                held.TrySetResult(long.Parse(m.Groups[1].Value));
        };
        await connection.OpenAsync();
        var samples = new List<double>(runs);
        for (var i = 0; i < warmup + runs; i++)
        {
            held = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
            await using var update = new NpgsqlCommand("UPDATE bench SET n = n + $1 WHERE id = 1 RETURNING clock_timestamp()", connection) { Parameters = { new() { Value = i } } };
            var running = update.ExecuteScalarAsync();
            var id = await held.Task.WaitAsync(TimeSpan.FromSeconds(30));
            (await approver.PostAsJsonAsync($"/api/v1/approvals/{id}/approve", new { })).EnsureSuccessStatusCode();
            var ranAt = new DateTimeOffset(DateTime.SpecifyKind((DateTime)(await running.WaitAsync(TimeSpan.FromSeconds(30)))!, DateTimeKind.Utc));
            var decidedAt = JsonDocument.Parse(await api.GetStringAsync($"/api/v1/approvals/{id}")).RootElement.GetProperty("decidedAt").GetDateTimeOffset();
            if (i >= warmup)
                samples.Add((ranAt - decidedAt).TotalMilliseconds);
            if ((i + 1) % 50 == 0)
                Console.WriteLine($"  {voteAt}: {i + 1 - Math.Min(i + 1, warmup)}/{runs}");
        }
        approver.Dispose();
        return samples;
    }

    private static void Print(string name, List<double> samples) =>
        Console.WriteLine($"{name,-38} {Percentile(samples, 50),7:F1}  {Percentile(samples, 90),7:F1}  {Percentile(samples, 99),7:F1}  {samples.Max(),7:F1}");

    internal static double Percentile(List<double> samples, double p)
    {
        var sorted = samples.Order().ToList();
        return sorted[Math.Clamp((int)Math.Ceiling(p / 100 * sorted.Count) - 1, 0, sorted.Count - 1)];
    }

    [GeneratedRegex("waiting for approval request #([0-9]+)")]
    private static partial Regex WaitingFor();
}
