using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using Airlock.Sidecar.Policy.Guardrails;
using Airlock.Sidecar.Protocols.Sql;
using Airlock.Testing;

namespace Airlock.Benchmarks;

/// <summary>
/// What guardrails cost:
/// <list type="number">
/// <item>the classifier and evaluator per statement, in nanoseconds and bytes allocated, cold
/// (classify and decide a text never seen) and warm (the per-text cache a repeated statement hits),
/// for short, long and pathological statements; and the cold cost at 10× the length, to show it
/// grows linearly;</item>
/// <item>pgbench through one sidecar, in interleaved rounds: -S with the agent-safe baseline (a
/// read-only session) and the default TPC-B-like script with the baseline plus an allow rule for
/// writes, each as a ratio to the same sidecar with a single allow-everything rule.</item>
/// </list>
/// </summary>
internal static class GuardrailCost
{
    public static async Task<int> RunAsync(string[] args)
    {
        Micro(args.Contains("--quick") ? 0.2 : 1.0);
        if (args.Contains("--micro-only"))
            return 0;
        await ThroughputAsync(Args.Int(args, "--seconds", 8), Args.Int(args, "--rounds", 3), Args.Int(args, "--scale", 10));
        return 0;
    }

    private static readonly (string Name, Func<int, string> Make)[] Shapes =
    [
        ("short: pgbench -S", _ => "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;"),
        ("short: TPC-B update", _ => "UPDATE pgbench_accounts SET abalance = abalance + -2341 WHERE aid = 77;"),
        ("long: 40-line report", _ => string.Join("\n", Enumerable.Range(0, 40).Select(i =>
            $"SELECT c.id, sum(o.total) AS t{i}, date_trunc('day', o.at) FROM customers c JOIN orders o ON o.customer_id = c.id WHERE o.state = 'open' GROUP BY 1, 3 UNION ALL"))
            + " SELECT 1, 2, now()"),
        ("deep nesting", n => "SELECT " + new string('(', n) + "1" + new string(')', n)),
        ("nested subqueries", n => string.Concat(Enumerable.Repeat("SELECT * FROM t WHERE a IN (", n)) + "SELECT 1" + new string(')', n)),
        ("string literal", n => "SELECT '" + new string('x', n * 1000) + "'"),
        ("many statements", n => string.Concat(Enumerable.Repeat("SELECT 1;", n))),
    ];

    private static void Micro(double budgetSeconds)
    {
        var rules = RuleSet.Compile("bench", Baselines.AgentSafeRules);
        Console.WriteLine("classifier + evaluator per statement (agent-safe baseline)");
        Console.WriteLine("| statement | length | cold µs | cold KB allocated | warm ns | warm bytes |");
        Console.WriteLine("|---|---|---|---|---|---|");
        foreach (var (name, make) in Shapes)
        foreach (var n in name.StartsWith("short", StringComparison.Ordinal) || name.StartsWith("long", StringComparison.Ordinal) ? new[] { 1 } : [100, 1000])
        {
            var text = make(n);
            // Cold: what a text never seen costs (the judge does exactly this on a cache miss; the
            // normalized text is made only for rules with a pattern, which the baseline has none of).
            var cold = Measure(budgetSeconds, _ =>
            {
                foreach (var statement in SqlClassifier.Analyze(text, bothReadings: false).Statements)
                    rules.Decide(statement, new NormalizedText(text, statement.Start, statement.Length, true));
            });
            var warmJudge = new SqlSessionJudge(false);
            warmJudge.Judge(rules, text);
            warmJudge.Judge(rules, text); // cached from the second sight
            var warm = Measure(budgetSeconds, _ => warmJudge.Judge(rules, text));
            Console.WriteLine($"| {name} | {text.Length:N0} | {cold.Nanoseconds / 1000:N1} | {cold.Bytes / 1024.0:N1} | {warm.Nanoseconds:N0} | {warm.Bytes:N0} |");
        }
    }

    /// <summary>Mean time and allocation per call.</summary>
    internal static (double Nanoseconds, double Bytes) Measure(double seconds, Action<int> call)
    {
        for (var i = 0; i < 20; i++)
            call(i);
        var calls = 0;
        var allocated = GC.GetAllocatedBytesForCurrentThread();
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed.TotalSeconds < seconds || calls < 5)
        {
            call(calls);
            calls++;
        }
        var elapsed = watch.Elapsed;
        return (elapsed.TotalNanoseconds / calls, (GC.GetAllocatedBytesForCurrentThread() - allocated) / (double)calls);
    }

    private static async Task ThroughputAsync(int seconds, int rounds, int scale)
    {
        Console.WriteLine($"pgbench through one sidecar: agent-safe baseline vs a single allow-everything rule, {seconds} s per run, {rounds} interleaved rounds, -c 8 -j 2");
        await using var harness = await GatewayHarness.StartAsync(sidecarArgs: ["--Logging:LogLevel:Default=Warning"]);
        var cp = harness.ControlPlane;
        var init = await Cli.RunAsync("pgbench", ["-i", "-q", "-s", scale.ToString(CultureInfo.InvariantCulture), harness.DirectLibpq],
            new Dictionary<string, string> { ["PGPASSWORD"] = GatewayHarness.ScramPassword }, timeout: TimeSpan.FromMinutes(10));
        if (init.ExitCode != 0)
            throw new InvalidOperationException(init.ToString());
        var (_, ready) = await harness.Sidecar.ReadyAsync();
        var version = ready.GetProperty("version").GetInt64();
        (await cp.Api.PutAsJsonAsync("/api/v1/roles/bench-reader", new { baseline = "agent-safe", grants = new[] { new { target = "pg-loopback" } } })).EnsureSuccessStatusCode();
        (await cp.Api.PutAsJsonAsync("/api/v1/roles/bench-writer", new
        {
            baseline = "agent-safe",
            grants = new[] { new { target = "pg-loopback" } },
            rules = new[] { new { name = "writes", action = "allow", match = new { classes = new[] { "write" } } } },
        })).EnsureSuccessStatusCode();
        (await cp.Api.PutAsJsonAsync("/api/v1/agents/reader", new { role = "bench-reader", owner = "admin" })).EnsureSuccessStatusCode();
        (await cp.Api.PutAsJsonAsync("/api/v1/agents/writer", new { role = "bench-writer", owner = "admin" })).EnsureSuccessStatusCode();
        var tokens = new Dictionary<string, string>
        {
            ["ci"] = harness.Token,
            ["reader"] = await GatewayHarness.TokenAsync(cp, "reader"),
            ["writer"] = await GatewayHarness.TokenAsync(cp, "writer"),
        };
        await harness.Sidecar.WaitForVersionAsync(version + 1);
        await Task.Delay(2000); // the last of the coalesced snapshots

        string Libpq(string agent) => $"host=127.0.0.1 port={harness.Ports["pg-loopback"]} dbname={harness.Database} user={agent} sslmode=disable";
        var workloads = new (string Name, string[] Script, string Guarded)[]
        {
            ("-S -M simple", ["-S", "-M", "simple"], "reader"),
            ("-S -M prepared", ["-S", "-M", "prepared"], "reader"),
            ("TPC-B -M simple", ["-M", "simple"], "writer"),
            ("TPC-B -M prepared", ["-M", "prepared"], "writer"),
        };
        foreach (var (name, script, guarded) in workloads) // warm-up, unmeasured
        foreach (var agent in new[] { "ci", guarded })
            await PgbenchAsync(script, Libpq(agent), tokens[agent], 3);
        var tps = new Dictionary<(string, string), List<double>>();
        for (var round = 0; round < rounds; round++)
        foreach (var (name, script, guarded) in workloads)
        foreach (var agent in new[] { "ci", guarded })
        {
            tps.TryAdd((name, agent == "ci" ? "allow-everything" : "agent-safe"), []);
            tps[(name, agent == "ci" ? "allow-everything" : "agent-safe")].Add(await PgbenchAsync(script, Libpq(agent), tokens[agent], seconds));
        }
        Console.WriteLine("| workload | allow-everything TPS | agent-safe TPS | ratio |");
        Console.WriteLine("|---|---|---|---|");
        foreach (var (name, _, _) in workloads)
        {
            var open = GatewayThroughput.Median(tps[(name, "allow-everything")]);
            var safe = GatewayThroughput.Median(tps[(name, "agent-safe")]);
            Console.WriteLine($"| {name} | {open:N0} | {safe:N0} | {safe / open:N3} |");
        }
    }

    private static async Task<double> PgbenchAsync(string[] script, string libpq, string token, int seconds)
    {
        var run = await Cli.RunAsync("pgbench", ["-n", .. script, "-c", "8", "-j", "2", "-T", seconds.ToString(CultureInfo.InvariantCulture), libpq],
            new Dictionary<string, string> { ["PGPASSWORD"] = token }, timeout: TimeSpan.FromSeconds(seconds + 60));
        if (run.ExitCode != 0)
            throw new InvalidOperationException(run.ToString());
        return double.Parse(GatewayThroughput.TpsPattern().Match(run.Output).Groups[1].Value, CultureInfo.InvariantCulture);
    }
}
