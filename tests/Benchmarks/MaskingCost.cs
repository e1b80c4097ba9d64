using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using Airlock.Sidecar.Policy.Masking;
using Airlock.Sidecar.Protocols.Sql;
using Airlock.Testing;

namespace Airlock.Benchmarks;

/// <summary>
/// What masking costs: per value (DataRow rewriting, each strategy, the content detectors) on one core;
/// then through one sidecar, the same reads by two agents — one whose role masks a column of the rows
/// read, one whose role masks nothing — as pgbench TPS, a 1,000,000-row result and a COPY of the same
/// table in MB/s, with the sidecar's peak RSS, all as ratios to the unmasked run.
/// </summary>
internal static class MaskingCost
{
    public static async Task<int> RunAsync(string[] args)
    {
        var seconds = Args.Int(args, "--seconds", 8);
        var rounds = Args.Int(args, "--rounds", 3);
        var scale = Args.Int(args, "--scale", 10);
        Micro(args.Contains("--quick") ? 0.2 : 1.0);
        if (args.Contains("--micro-only"))
            return 0;
        Console.WriteLine();
        await ThroughputAsync(seconds, rounds, scale, largeOnly: args.Contains("--large-only"));
        return 0;
    }

    private static void Micro(double budgetSeconds)
    {
        Console.WriteLine("masking per row and per value, one core (mean):");
        Console.WriteLine("| what | ns | bytes allocated |");
        Console.WriteLine("|---|---|---|");
        var masker = new ValueMasker(new byte[32]);
        var row = DataRow("12345"u8.ToArray(), "alice.secret@example.com"u8.ToArray(), Encoding.ASCII.GetBytes(new string('x', 84)));
        var output = new ArrayBufferWriter<byte>(1024);
        foreach (var strategy in Enum.GetValues<MaskStrategy>())
        {
            var plan = new ResultMaskPlan([null, new ColumnPlan("t.email", ValueMasker.Text, 0, new ColumnMask("r", strategy, 4, MaskUse.Default)), null], masker);
            var cost = Measure(budgetSeconds, () =>
            {
                output.ResetWrittenCount();
                plan.Rewrite(row, output);
            });
            Console.WriteLine($"| DataRow of 3 values, 1 masked, {strategy.ToString().ToLowerInvariant()} | {cost.Nanoseconds:N0} | {cost.Bytes:N0} |");
        }
        var detectors = new[] { ContentDetector.Email, ContentDetector.Card, ContentDetector.Phone, ContentDetector.Iban, ContentDetector.NationalId, ContentDetector.Jwt, ContentDetector.ApiKey, ContentDetector.PrivateKey };
        var clean = "order 12345 shipped to the warehouse on the third of the month, no further notes";
        var dirty = "contact carol@example.org or +1 650-253-0000, card 4242 4242 4242 4242";
        foreach (var detector in detectors)
        {
            var cost = Measure(budgetSeconds, () => ContentDetectors.Find(clean, [detector]));
            Console.WriteLine($"| detector {ContentDetectors.NameOf(detector)}, 80-character value with nothing to find | {cost.Nanoseconds:N0} | {cost.Bytes:N0} |");
        }
        var all = Measure(budgetSeconds, () => ContentDetectors.Find(clean, detectors));
        Console.WriteLine($"| all eight detectors, 80 characters, nothing found | {all.Nanoseconds:N0} | {all.Bytes:N0} |");
        var found = Measure(budgetSeconds, () => ContentDetectors.Find(dirty, detectors));
        Console.WriteLine($"| all eight detectors, 70 characters, three found | {found.Nanoseconds:N0} | {found.Bytes:N0} |");
    }

    private static byte[] DataRow(params byte[][] values)
    {
        var body = new List<byte>();
        var count = new byte[2];
        BinaryPrimitives.WriteInt16BigEndian(count, (short)values.Length);
        body.AddRange(count);
        foreach (var v in values)
        {
            var length = new byte[4];
            BinaryPrimitives.WriteInt32BigEndian(length, v.Length);
            body.AddRange(length);
            body.AddRange(v);
        }
        return [.. body];
    }

    private static (double Nanoseconds, double Bytes) Measure(double seconds, Action call) => GuardrailCost.Measure(seconds, _ => call());

    private static async Task ThroughputAsync(int seconds, int rounds, int scale, bool largeOnly)
    {
        Console.WriteLine($"through one sidecar: a role masking pgbench_accounts.filler (redact) vs a role masking nothing, {seconds} s per pgbench run, {rounds} interleaved rounds, -c 8 -j 2, scale {scale}");
        await using var harness = await GatewayHarness.StartAsync(sidecarArgs: ["--Logging:LogLevel:Default=Warning"]);
        var cp = harness.ControlPlane;
        var init = await Cli.RunAsync("pgbench", ["-i", "-q", "-s", scale.ToString(CultureInfo.InvariantCulture), harness.DirectLibpq],
            new Dictionary<string, string> { ["PGPASSWORD"] = GatewayHarness.ScramPassword }, timeout: TimeSpan.FromMinutes(10));
        if (init.ExitCode != 0)
            throw new InvalidOperationException(init.ToString());
        var (_, ready) = await harness.Sidecar.ReadyAsync();
        var version = ready.GetProperty("version").GetInt64();
        (await cp.Api.PutAsJsonAsync("/api/v1/roles/bench-plain", new { baseline = "agent-safe", grants = new[] { new { target = "pg-loopback" } } })).EnsureSuccessStatusCode();
        (await cp.Api.PutAsJsonAsync("/api/v1/roles/bench-masked", new
        {
            baseline = "agent-safe",
            grants = new[] { new { target = "pg-loopback" } },
            rules = new[] { new { name = "filler", action = "mask", mask = new { columns = new[] { "pgbench_accounts.filler" }, strategy = "redact" } } },
        })).EnsureSuccessStatusCode();
        (await cp.Api.PutAsJsonAsync("/api/v1/agents/plain", new { role = "bench-plain", owner = "admin" })).EnsureSuccessStatusCode();
        (await cp.Api.PutAsJsonAsync("/api/v1/agents/masked", new { role = "bench-masked", owner = "admin" })).EnsureSuccessStatusCode();
        var tokens = new Dictionary<string, string>
        {
            ["plain"] = await GatewayHarness.TokenAsync(cp, "plain"),
            ["masked"] = await GatewayHarness.TokenAsync(cp, "masked"),
        };
        await harness.Sidecar.WaitForVersionAsync(version + 1);
        await Task.Delay(2000); // the last of the coalesced snapshots

        string Libpq(string agent) => $"host=127.0.0.1 port={harness.Ports["pg-loopback"]} dbname={harness.Database} user={agent} sslmode=disable";
        if (!largeOnly)
            await PgbenchRoundsAsync(seconds, rounds, scale, Libpq, tokens);
        await LargeResultsAsync(rounds, scale, Libpq, tokens, harness.Sidecar.Process.Id);
    }

    private static async Task PgbenchRoundsAsync(int seconds, int rounds, int scale, Func<string, string> Libpq, Dictionary<string, string> tokens)
    {
        var script = Path.GetTempFileName();
        await File.WriteAllTextAsync(script, $"\\set aid random(1, {100000 * scale})\nSELECT aid, abalance, filler FROM pgbench_accounts WHERE aid = :aid;\n");
        try
        {
            var workloads = new (string Name, string[] Args)[]
            {
                ("one row, 3 columns (1 masked) -M simple", ["-f", script, "-M", "simple"]),
                ("one row, 3 columns (1 masked) -M prepared", ["-f", script, "-M", "prepared"]),
            };
            foreach (var (_, a) in workloads)
            foreach (var agent in tokens.Keys)
                await PgbenchAsync(a, Libpq(agent), tokens[agent], 3); // warm-up
            var tps = new Dictionary<(string, string), List<double>>();
            for (var round = 0; round < rounds; round++)
            foreach (var (name, a) in workloads)
            foreach (var agent in tokens.Keys)
            {
                tps.TryAdd((name, agent), []);
                tps[(name, agent)].Add(await PgbenchAsync(a, Libpq(agent), tokens[agent], seconds));
            }
            Console.WriteLine("| workload | unmasked TPS | masked TPS | masked/unmasked |");
            Console.WriteLine("|---|---|---|---|");
            foreach (var (name, _) in workloads)
            {
                var plain = GatewayThroughput.Median(tps[(name, "plain")]);
                var masked = GatewayThroughput.Median(tps[(name, "masked")]);
                Console.WriteLine($"| {name} | {plain:N0} | {masked:N0} | {masked / plain:F3} |");
            }
        }
        finally
        {
            File.Delete(script);
        }

    }

    private static async Task LargeResultsAsync(int rounds, int scale, Func<string, string> Libpq, Dictionary<string, string> tokens, int sidecarPid)
    {
        Console.WriteLine();
        // Rows per second, not MB/s: a masked column is shorter than the value it replaces, so the client
        // receives fewer bytes for the same rows.
        Console.WriteLine("| large result | rows | unmasked rows/s (MB/s) | masked rows/s (MB/s) | masked/unmasked rows/s | sidecar peak RSS unmasked, masked |");
        Console.WriteLine("|---|---|---|---|---|---|");
        var all = 100_000 * scale;
        foreach (var (kind, rows, sql) in new[]
                 {
                     ("SELECT aid, abalance, filler", 100_000, "SELECT aid, abalance, filler FROM pgbench_accounts WHERE aid <= 100000"),
                     ("SELECT aid, abalance, filler", all, "SELECT aid, abalance, filler FROM pgbench_accounts"),
                     ("COPY pgbench_accounts TO STDOUT", all, "COPY pgbench_accounts TO STDOUT"),
                 })
        {
            var plain = new List<(double MBps, double Rss, double Seconds)>();
            var masked = new List<(double MBps, double Rss, double Seconds)>();
            for (var round = 0; round < Math.Max(1, rounds); round++)
            {
                plain.Add(await GatewayThroughput.TransferAsync(Libpq("plain"), new Dictionary<string, string> { ["PGPASSWORD"] = tokens["plain"] }, sql, sidecarPid));
                masked.Add(await GatewayThroughput.TransferAsync(Libpq("masked"), new Dictionary<string, string> { ["PGPASSWORD"] = tokens["masked"] }, sql, sidecarPid));
            }
            var p = rows / GatewayThroughput.Median(plain.Select(x => x.Seconds).ToList());
            var m = rows / GatewayThroughput.Median(masked.Select(x => x.Seconds).ToList());
            Console.WriteLine($"| {kind} | {rows:N0} | {p:N0} ({GatewayThroughput.Median(plain.Select(x => x.MBps).ToList()):F1}) | {m:N0} ({GatewayThroughput.Median(masked.Select(x => x.MBps).ToList()):F1}) | {m / p:F2}× | {plain.Max(x => x.Rss):F0} MB, {masked.Max(x => x.Rss):F0} MB |");
        }
    }

    private static async Task<double> PgbenchAsync(string[] args, string libpq, string token, int seconds)
    {
        var run = await Cli.RunAsync("pgbench", ["-n", .. args, "-c", "8", "-j", "2", "-T", seconds.ToString(CultureInfo.InvariantCulture), libpq],
            new Dictionary<string, string> { ["PGPASSWORD"] = token }, timeout: TimeSpan.FromSeconds(seconds + 60));
        if (run.ExitCode != 0)
            throw new InvalidOperationException(run.ToString());
        return double.Parse(GatewayThroughput.TpsPattern().Match(run.Output).Groups[1].Value, CultureInfo.InvariantCulture);
    }
}
