using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Airlock.Testing;

namespace Airlock.Benchmarks;

/// <summary>
/// pgbench -S through three paths to the same PostgreSQL server in one run: direct, pgbouncer
/// (session mode) and the Airlock sidecar (with recording on, control plane running), at -c 1 and
/// -c 8, -M simple and -M prepared, in interleaved rounds; medians, ratios, added latency at -c 1 and
/// CPU per transaction of the sidecar vs pgbouncer. Then large results (rows and COPY TO STDOUT) in
/// MB/s with the sidecar's peak RSS. All clients connect without TLS on loopback, so the paths are
/// compared like with like (the sidecar's target allows cleartext on loopback).
/// </summary>
internal static partial class GatewayThroughput
{
    public static async Task<int> RunAsync(string[] args)
    {
        var seconds = Args.Int(args, "--seconds", 8);
        var rounds = Args.Int(args, "--rounds", 3);
        var scale = Args.Int(args, "--scale", 10);
        // Diagnosis: with the control plane stopped after setup the sidecar still records (to its spool),
        // but no upload or ingest competes for the cores — separates proxy cost from evidence cost.
        var withoutControlPlane = args.Contains("--stop-control-plane");
        var modes = args.Contains("--prepared-only") ? new[] { "prepared" } : ["simple", "prepared"];
        // Diagnosis: a fixed rate (pgbench -R) through the sidecar only gives steadier CPU µs/tx for A/B
        // comparisons than a saturated run, whose figures swing with the scheduler.
        var rate = Args.Int(args, "--rate", 0);
        var clientCounts = args.Contains("--c8-only") ? new[] { 8 } : args.Contains("--c1-only") ? [1] : [1, 8];
        if (!File.Exists("/usr/sbin/pgbouncer"))
        {
            Console.Error.WriteLine("pgbouncer is not installed: apt-get install pgbouncer");
            return 2;
        }
        Console.WriteLine($"gateway throughput: pgbench -S -s {scale}, {seconds} s per run, {rounds} interleaved rounds, {Environment.ProcessorCount} cores");
        // The group commit of the sidecar's spool (Sidecar:RecordingFlushMilliseconds); 0 = the sidecar's default.
        var flushMilliseconds = Args.Int(args, "--flush-ms", 0);
        // How often the sidecar starts an upload (Sidecar:RecordingUploadMilliseconds); -1 = the sidecar's default.
        var uploadMilliseconds = Args.Int(args, "--upload-ms", -1);
        // The control plane is a central service; on this one machine it can stand in for a separate host
        // by running at a lower CPU priority (nice 19: it gets the cycles the data path leaves idle).
        // Its CPU per transaction is measured and printed either way.
        var controlPlaneNice = Args.Int(args, "--control-plane-nice", 0);
        await using var harness = await GatewayHarness.StartAsync(sidecarArgs: ["--Logging:LogLevel:Default=Warning",
            .. flushMilliseconds > 0 ? [$"--Sidecar:RecordingFlushMilliseconds={flushMilliseconds}"] : Array.Empty<string>(),
            .. uploadMilliseconds >= 0 ? [$"--Sidecar:RecordingUploadMilliseconds={uploadMilliseconds}"] : Array.Empty<string>()]);
        var password = new Dictionary<string, string> { ["PGPASSWORD"] = GatewayHarness.ScramPassword };
        var token = new Dictionary<string, string> { ["PGPASSWORD"] = harness.Token };
        var server = GatewayHarness.Server;
        var init = await Cli.RunAsync("pgbench", ["-i", "-q", "-s", scale.ToString(CultureInfo.InvariantCulture), harness.DirectLibpq], password, timeout: TimeSpan.FromMinutes(10));
        if (init.ExitCode != 0)
            throw new InvalidOperationException(init.ToString());
        await using var bouncer = await Pgbouncer.StartAsync(server.Host!, server.Port, harness.Database);
        if (withoutControlPlane)
        {
            await harness.ControlPlane.StopAsync();
            Console.WriteLine("control plane stopped: the sidecar records to its spool only");
        }

        var paths = new (string Name, string Libpq, Dictionary<string, string> Env, Func<int>? Pid)[]
        {
            ("direct", harness.DirectLibpq, password, null),
            ("pgbouncer", $"host=127.0.0.1 port={bouncer.Port} dbname={harness.Database} user={GatewayHarness.ScramUser} sslmode=disable", password, () => bouncer.Pid),
            ("sidecar", $"host=127.0.0.1 port={harness.Ports["pg-loopback"]} dbname={harness.Database} user=ci sslmode=disable", token, () => harness.Sidecar.Process.Id),
        };
        // The sidecar and control plane are JIT-compiled: their hot paths are re-compiled at tier 1 during
        // the first seconds of load (the JIT took a fifth of the sidecar's CPU then). Steady state is what
        // an always-on gateway runs at, so every mode runs once unmeasured through the sidecar first.
        var warmup = Args.Int(args, "--warmup", 10);
        foreach (var mode in modes)
        {
            if (warmup <= 0)
                break;
            var run = await Cli.RunAsync("pgbench", ["-n", "-S", "-M", mode, "-c", "8", "-j", "2", "-T", warmup.ToString(CultureInfo.InvariantCulture), paths[2].Libpq], token, timeout: TimeSpan.FromSeconds(warmup + 60));
            if (run.ExitCode != 0)
                throw new InvalidOperationException($"warm-up: {run}");
        }
        if (warmup > 0)
            Console.WriteLine($"warm-up: {warmup} s per mode through the sidecar, not measured");

        if (controlPlaneNice != 0 && !withoutControlPlane)
        {
            await Renice(harness.ControlPlane.Process.Id, controlPlaneNice);
            Console.WriteLine($"control plane at nice {controlPlaneNice} (every thread; threads it starts later inherit it)");
        }
        if (flushMilliseconds > 0)
            Console.WriteLine($"sidecar recording flush interval: {flushMilliseconds} ms");
        var tps = new Dictionary<(string Path, string Mode, int Clients), List<double>>();
        var cpu = new Dictionary<(string Path, string Mode, int Clients), List<double>>();
        var byThread = new Dictionary<(string Group, string Mode, int Clients), List<double>>();
        foreach (var mode in modes)
        foreach (var clients in clientCounts)
        for (var round = 0; round < rounds; round++)
        foreach (var path in rate > 0 ? paths[1..] : paths)
        {
            var before = path.Pid is null ? 0 : ProcessCpu.Microseconds(path.Pid());
            var threadsBefore = path.Name == "sidecar" ? ProcessCpu.MicrosecondsByThread(path.Pid!(), SidecarThreadGroup) : null;
            var controlPlaneBefore = withoutControlPlane ? 0 : ProcessCpu.Microseconds(harness.ControlPlane.Process.Id);
            var systemBefore = SystemTicks();
            var run = await Cli.RunAsync("pgbench", ["-n", "-S", "-M", mode, "-c", clients.ToString(CultureInfo.InvariantCulture), "-j", Math.Min(clients, 2).ToString(CultureInfo.InvariantCulture),
                "-T", seconds.ToString(CultureInfo.InvariantCulture), .. rate > 0 ? ["-R", rate.ToString(CultureInfo.InvariantCulture)] : Array.Empty<string>(), path.Libpq], path.Env, timeout: TimeSpan.FromSeconds(seconds + 60));
            if (run.ExitCode != 0)
                throw new InvalidOperationException($"{path.Name}: {run}");
            var systemAfter = SystemTicks();
            var idle = 100.0 * (systemAfter.Idle - systemBefore.Idle) / Math.Max(1, systemAfter.Total - systemBefore.Total);
            var value = double.Parse(TpsPattern().Match(run.Output).Groups[1].Value, CultureInfo.InvariantCulture);
            var transactions = long.Parse(TransactionsPattern().Match(run.Output).Groups[1].Value, CultureInfo.InvariantCulture);
            tps.TryAdd((path.Name, mode, clients), []);
            tps[(path.Name, mode, clients)].Add(value);
            if (path.Pid is not null)
            {
                cpu.TryAdd((path.Name, mode, clients), []);
                cpu[(path.Name, mode, clients)].Add((ProcessCpu.Microseconds(path.Pid()) - before) / transactions);
            }
            if (threadsBefore is not null)
            {
                // Where the sidecar's CPU goes: the relay's loop thread, the recorder (both live as long as
                // the process), everything else — the process's total minus those two, because a
                // thread-pool worker that retired during the run takes its time out of a per-thread sum.
                var threadsAfter = ProcessCpu.MicrosecondsByThread(path.Pid!(), SidecarThreadGroup);
                var named = 0.0;
                foreach (var group in SidecarThreadGroups[..^1])
                {
                    var used = threadsAfter.GetValueOrDefault(group) - threadsBefore.GetValueOrDefault(group);
                    named += used;
                    byThread.TryAdd((group, mode, clients), []);
                    byThread[(group, mode, clients)].Add(used / transactions);
                }
                byThread.TryAdd(("other", mode, clients), []);
                byThread[("other", mode, clients)].Add((ProcessCpu.Microseconds(path.Pid!()) - before - named) / transactions);
            }
            if (path.Name == "sidecar" && !withoutControlPlane)
            {
                // The control plane ingests the recording on the same cores: its share is part of the evidence's cost.
                cpu.TryAdd(("control plane", mode, clients), []);
                cpu[("control plane", mode, clients)].Add((ProcessCpu.Microseconds(harness.ControlPlane.Process.Id) - controlPlaneBefore) / transactions);
            }
            // Idle CPU during a saturated run means a path is latency-bound rather than CPU-bound.
            Console.WriteLine($"  {mode,-8} -c {clients}  round {round + 1}  {path.Name,-9} {value,10:N0} tps  idle {idle,4:F1}%" + (rate > 0 ? $"  CPU {cpu[(path.Name, mode, clients)][^1]:F1} µs/tx" + (withoutControlPlane || path.Name != "sidecar" ? "" : $", control plane {cpu[("control plane", mode, clients)][^1]:F1}") : ""));
        }
        foreach (var mode in modes)
        foreach (var clients in clientCounts)
            Console.WriteLine($"sidecar CPU µs/tx by thread, {mode} -c {clients} (medians): "
                + string.Join(", ", SidecarThreadGroups.Select(g => $"{g} {(byThread.TryGetValue((g, mode, clients), out var v) ? Median(v) : 0):F1}")));
        if (rate > 0)
        {
            foreach (var mode in modes)
            foreach (var clients in clientCounts)
                Console.WriteLine($"{mode} -c {clients} at {rate} tps: CPU median sidecar {Median(cpu[("sidecar", mode, clients)]):F1} µs/tx, pgbouncer {Median(cpu[("pgbouncer", mode, clients)]):F1}"
                    + (withoutControlPlane ? "" : $", control plane {Median(cpu[("control plane", mode, clients)]):F1}"));
            return 0;
        }

        Console.WriteLine();
        Console.WriteLine("| mode | clients | direct TPS | pgbouncer TPS | sidecar TPS | sidecar/direct | sidecar/pgbouncer | added µs/tx (sidecar, pgbouncer) | CPU µs/tx (sidecar, pgbouncer) | control plane CPU µs/tx |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|");
        foreach (var mode in modes)
        foreach (var clients in clientCounts)
        {
            double M(string p) => Median(tps[(p, mode, clients)]);
            double C(string p) => Median(cpu[(p, mode, clients)]);
            var added = clients == 1 && tps.ContainsKey(("direct", mode, 1)) ? $"{(1 / M("sidecar") - 1 / M("direct")) * 1e6:F0}, {(1 / M("pgbouncer") - 1 / M("direct")) * 1e6:F0}" : "";
            Console.WriteLine($"| {mode} | {clients} | {M("direct"):N0} | {M("pgbouncer"):N0} | {M("sidecar"):N0} | {M("sidecar") / M("direct"):F2}× | {M("sidecar") / M("pgbouncer"):F2}× | {added} | {C("sidecar"):F0}, {C("pgbouncer"):F0} | {(cpu.ContainsKey(("control plane", mode, clients)) ? C("control plane").ToString("F0", CultureInfo.InvariantCulture) : "stopped")} |");
        }

        if (args.Contains("--skip-large"))
            return 0;
        Console.WriteLine();
        Console.WriteLine("| large result | rows | direct MB/s | sidecar MB/s | sidecar/direct | sidecar peak RSS |");
        Console.WriteLine("|---|---|---|---|---|---|");
        foreach (var rows in new[] { 100_000, 1_000_000 })
        foreach (var (kind, sql) in new[] { ("SELECT", $"SELECT g, repeat('x', 100) AS filler FROM generate_series(1, {rows}) g"), ("COPY TO STDOUT", $"COPY (SELECT g, repeat('x', 100) FROM generate_series(1, {rows}) g) TO STDOUT") })
        {
            var direct = await TransferAsync(harness.DirectLibpq, password, sql, null);
            var proxied = await TransferAsync(paths[2].Libpq, token, sql, harness.Sidecar.Process.Id);
            Console.WriteLine($"| {kind} | {rows:N0} | {direct.MBps:F1} | {proxied.MBps:F1} | {proxied.MBps / direct.MBps:F2}× | {proxied.PeakRssMb:F0} MB |");
        }
        return 0;
    }

    internal static async Task<(double MBps, double PeakRssMb, double Seconds)> TransferAsync(string libpq, Dictionary<string, string> env, string sql, int? pid)
    {
        var output = Path.GetTempFileName();
        long peak = 0;
        using var sampling = new CancellationTokenSource();
        var sampler = pid is null ? Task.CompletedTask : Task.Run(async () =>
        {
            while (!sampling.IsCancellationRequested)
            {
                peak = Math.Max(peak, RssBytes(pid.Value));
                await Task.Delay(20);
            }
        });
        var clock = Stopwatch.StartNew();
        var run = await Cli.RunAsync("psql", [libpq, "-X", "-q", "-At", "-o", output, "-c", sql], env, timeout: TimeSpan.FromMinutes(5));
        clock.Stop();
        await sampling.CancelAsync();
        await sampler;
        if (run.ExitCode != 0)
            throw new InvalidOperationException(run.ToString());
        var bytes = new FileInfo(output).Length;
        File.Delete(output);
        return (bytes / 1e6 / clock.Elapsed.TotalSeconds, peak / 1e6, clock.Elapsed.TotalSeconds);
    }

    /// <summary>All CPUs' jiffies since boot: idle (idle + iowait) and total, from the first line of /proc/stat.</summary>
    private static (long Idle, long Total) SystemTicks()
    {
        var fields = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries)[1..].Select(f => long.Parse(f, CultureInfo.InvariantCulture)).ToArray();
        return (fields[3] + fields[4], fields.Take(8).Sum());
    }

    private static long RssBytes(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        return 0;
    }

    private static readonly string[] SidecarThreadGroups = ["epoll loop", "recorder", "other"];

    /// <summary>The sidecar's threads by name: the gateway's epoll loop(s), the recorder, the rest (thread pool: uploader, hub, start-up).</summary>
    private static string SidecarThreadGroup(string thread) =>
        thread.StartsWith("airlock-epoll", StringComparison.Ordinal) ? "epoll loop" : thread.StartsWith("airlock-recorde", StringComparison.Ordinal) ? "recorder" : "other";

    /// <summary>Sets the nice value of every thread of a process (Linux priorities are per thread).</summary>
    private static async Task Renice(int pid, int nice)
    {
        foreach (var thread in Directory.GetDirectories($"/proc/{pid}/task"))
        {
            var result = await Cli.RunAsync("renice", ["-n", nice.ToString(CultureInfo.InvariantCulture), "-p", Path.GetFileName(thread)]);
            if (result.ExitCode != 0 && Directory.Exists(thread))
                throw new InvalidOperationException($"renice: {result}");
        }
    }

    internal static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    [GeneratedRegex(@"tps = ([0-9.]+) \(without initial connection time\)")]
    internal static partial Regex TpsPattern();

    [GeneratedRegex(@"number of transactions actually processed: ([0-9]+)")]
    private static partial Regex TransactionsPattern();

    /// <summary>pgbouncer in session mode as the 'postgres' OS user (it refuses root), in a temporary directory.</summary>
    private sealed class Pgbouncer : IAsyncDisposable
    {
        private readonly string _directory;

        private Pgbouncer(string directory, int port)
        {
            _directory = directory;
            Port = port;
        }

        public int Port { get; }

        public int Pid => int.Parse(File.ReadAllText(Path.Combine(_directory, "pgbouncer.pid")).Trim(), CultureInfo.InvariantCulture);

        public static async Task<Pgbouncer> StartAsync(string host, int serverPort, string database)
        {
            var directory = Path.Combine("/tmp", $"airlock-pgbouncer-{Guid.NewGuid():N}");
            Directory.CreateDirectory(directory);
            var port = FreePort.Next();
            await File.WriteAllTextAsync(Path.Combine(directory, "userlist.txt"), $"\"{GatewayHarness.ScramUser}\" \"{GatewayHarness.ScramPassword}\"\n");
            await File.WriteAllTextAsync(Path.Combine(directory, "pgbouncer.ini"), $"""
                [databases]
                {database} = host={host} port={serverPort} dbname={database}
                [pgbouncer]
                listen_addr = 127.0.0.1
                listen_port = {port}
                unix_socket_dir =
                auth_type = plain
                auth_file = {directory}/userlist.txt
                pool_mode = session
                max_client_conn = 200
                default_pool_size = 50
                pidfile = {directory}/pgbouncer.pid
                logfile = {directory}/pgbouncer.log
                """);
            var chown = await Cli.RunAsync("chown", ["-R", "postgres:postgres", directory]);
            if (chown.ExitCode != 0)
                throw new InvalidOperationException(chown.ToString());
            var start = await Cli.RunAsync("runuser", ["-u", "postgres", "--", "/usr/sbin/pgbouncer", "-d", Path.Combine(directory, "pgbouncer.ini")]);
            if (start.ExitCode != 0)
                throw new InvalidOperationException(start.ToString());
            for (var i = 0; i < 50 && !File.Exists(Path.Combine(directory, "pgbouncer.pid")); i++)
                await Task.Delay(100);
            return new Pgbouncer(directory, port);
        }

        public async ValueTask DisposeAsync()
        {
            try
            {
                Process.GetProcessById(Pid).Kill();
            }
            catch (Exception e) when (e is ArgumentException or IOException or InvalidOperationException)
            {
                // already gone
            }
            await Task.Delay(200);
            Directory.Delete(_directory, recursive: true);
        }
    }
}
