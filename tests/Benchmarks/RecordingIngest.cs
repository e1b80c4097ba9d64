using System.Collections.Concurrent;
using System.Diagnostics;
using Airlock.Contracts.Recording;
using Airlock.Sidecar.ControlPlane;
using Airlock.Sidecar.Hosting;
using Airlock.Sidecar.Identity;
using Airlock.Sidecar.Recording;
using Airlock.Sidecar.Snapshots;
using Airlock.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Airlock.Benchmarks;

/// <summary>
/// Sustained recording ingest: a real control-plane process (PostgreSQL by default) and the
/// sidecar's own recorder, spool and uploader in this process, fed by N concurrent generated
/// sessions at a target total rate. Reports events stored per second and the lag from an event
/// being recorded to the control plane acknowledging it.
/// </summary>
internal static class RecordingIngest
{
    public static async Task<int> RunAsync(string[] args)
    {
        var sessions = Args.Int(args, "--sessions", 50);
        var rate = Args.Int(args, "--rate", 20_000);
        var seconds = Args.Int(args, "--seconds", 20);
        // The first seconds run the same load but are not measured: JIT tiering, connection pools and
        // PostgreSQL's caches warm up there, and the figures are about the sustained state.
        var warmup = Args.Int(args, "--warmup", 10);
        var sqlite = args.Contains("--sqlite");
        var connection = sqlite ? null : await TestPostgres.CreateDatabaseAsync("airlock_bench");
        Console.WriteLine($"recording ingest: {sessions} sessions, target {rate:N0} events/s for {seconds} s after {warmup} s of warm-up, store {(sqlite ? "SQLite" : "PostgreSQL")}, {Environment.ProcessorCount} cores");

        await using var cp = await ControlPlaneProcess.StartAsync(connection);
        var state = Path.Combine(Directory.CreateTempSubdirectory("airlock-bench-rec-").FullName, "state");
        var options = new SidecarOptions { ControlPlane = cp.Url, EnrollmentToken = await cp.CreateSidecarAsync("bench"), StateDirectory = state, HeartbeatSeconds = 5 };
        var identity = await Enrollment.EnsureEnrolledAsync(options, null, NullLogger.Instance, default);
        var snapshots = new SnapshotStore(identity, new SidecarOptionsSnapshot(state), TimeProvider.System, NullLogger<SnapshotStore>.Instance);
        var live = new LiveSessions();
        var recorder = new SessionRecorder(identity, new SidecarOptionsSnapshot(state), TimeProvider.System, NullLogger<SessionRecorder>.Instance);
        var hub = new HubClient(identity, snapshots, new AgentAuthenticator(snapshots, TimeProvider.System), live, new Airlock.Sidecar.Approvals.ApprovalGate(TimeProvider.System),
            new Airlock.Sidecar.Gateway.RefusalReports(TimeProvider.System), new Airlock.Sidecar.Postgres.UpstreamConnector(identity, Options.Create(options)), recorder,
            Options.Create(options), TimeProvider.System, NullLogger<HubClient>.Instance);
        using var metrics = new Airlock.Sidecar.Hosting.SidecarMetrics(live, recorder, hub, new Airlock.Sidecar.Gateway.ConnectionLimits(new Airlock.Sidecar.Gateway.ConnectionLimitOptions()));
        var uploader = new RecordingUploader(recorder, hub, metrics, new SidecarOptionsSnapshot(state, RecordingUploadMilliseconds: Args.Int(args, "--upload-ms", 250)), NullLogger<RecordingUploader>.Instance);

        // Per session, when each event was handed to the recorder (seq = index + 1).
        // Preallocated so the acknowledgement handler reads without copying (a copy per
        // acknowledgement would steal the CPU the pipeline under test needs).
        var capacity = (rate / sessions + 10) * (seconds + warmup + 10);
        var created = Enumerable.Range(0, sessions).Select(_ => new long[capacity]).ToArray();
        var createdCount = new int[sessions];
        var ids = Enumerable.Range(0, sessions).Select(_ => Guid.NewGuid()).ToArray();
        var index = ids.Select((id, i) => (id, i)).ToDictionary(x => x.id, x => x.i);
        var acked = new long[sessions];
        var lags = new ConcurrentBag<double>();
        var lagBySecond = new ConcurrentDictionary<int, ConcurrentBag<double>>();
        long stored = 0;
        long measuredFrom = long.MaxValue; // ticks: events created before are warm-up
        var clock = Stopwatch.StartNew();
        uploader.Acknowledged += (session, through) =>
        {
            var i = index[session];
            var now = clock.ElapsedTicks;
            var times = created[i];
            for (var seq = acked[i] + 1; seq <= through && seq <= Volatile.Read(ref createdCount[i]); seq++)
            {
                if (times[seq - 1] < Interlocked.Read(ref measuredFrom))
                    continue;
                Interlocked.Increment(ref stored);
                var lag = (now - times[seq - 1]) * 1000.0 / Stopwatch.Frequency;
                lags.Add(lag);
                lagBySecond.GetOrAdd((int)((times[seq - 1] - measuredFrom) / Stopwatch.Frequency), _ => []).Add(lag);
            }
            acked[i] = through;
        };

        using var stop = new CancellationTokenSource();
        await hub.StartAsync(stop.Token);
        await recorder.StartAsync(stop.Token);
        await uploader.StartAsync(stop.Token);
        while (!hub.IsConnected)
            await Task.Delay(50);

        var payload = RecordingJson.Encode(new StatementPayload("SELECT id, email FROM users WHERE id = $1", ["42"], "read", "allow", null, 0.4, 1, null));
        var perSessionPerSecond = (double)rate / sessions;
        var refused = 0L;
        var warmupStarted = clock.Elapsed;
        var started = warmupStarted + TimeSpan.FromSeconds(warmup);
        Interlocked.Exchange(ref measuredFrom, (long)(started.TotalSeconds * Stopwatch.Frequency));
        // CPU of the control plane (ingest) and of this process (recorder, spool, uploader and the
        // generators) over the measured window, per stored event.
        var cpuAtStart = Task.Run(async () =>
        {
            await Task.Delay(started - clock.Elapsed);
            return (ControlPlane: ProcessCpu.Microseconds(cp.Process.Id), Sidecar: ProcessCpu.Microseconds(Environment.ProcessId));
        });
        var generators = Enumerable.Range(0, sessions).Select(i => Task.Run(async () =>
        {
            void Record(string type, byte[] bytes)
            {
                created[i][createdCount[i]] = clock.ElapsedTicks;
                Volatile.Write(ref createdCount[i], createdCount[i] + 1);
                while (!recorder.TryRecord(ids[i], type, bytes))
                {
                    Interlocked.Increment(ref refused);
                    Thread.Sleep(1);
                }
            }
            Record(RecordingEventTypes.SessionStart, RecordingJson.Encode(new SessionStartPayload("bench", "bench", "bench", "bench", "127.0.0.1:1", false)));
            var begun = clock.Elapsed;
            var next = begun;
            long sent = 0;
            while (clock.Elapsed - started < TimeSpan.FromSeconds(seconds))
            {
                // 10 ms ticks; each sends what the rate owes by now, so fractional rates come out right.
                var owed = (long)((clock.Elapsed - begun).TotalSeconds * perSessionPerSecond) - sent;
                for (var k = 0; k < owed; k++, sent++)
                    Record(RecordingEventTypes.Statement, payload);
                next += TimeSpan.FromMilliseconds(10);
                var wait = next - clock.Elapsed;
                if (wait > TimeSpan.Zero)
                    await Task.Delay(wait);
            }
            Record(RecordingEventTypes.SessionEnd, RecordingJson.Encode(new SessionEndPayload("client")));
        })).ToArray();
        await Task.WhenAll(generators);
        var generatedAt = clock.Elapsed;
        var total = created.Select((times, i) => times.Take(createdCount[i]).Count(t => t >= measuredFrom)).Sum();
        var all = createdCount.Sum();
        while (Interlocked.Read(ref stored) < total && clock.Elapsed - generatedAt < TimeSpan.FromSeconds(120))
            await Task.Delay(20);
        var finished = clock.Elapsed;
        var cpuBefore = await cpuAtStart;
        var (controlPlaneCpu, sidecarCpu) = (ProcessCpu.Microseconds(cp.Process.Id) - cpuBefore.ControlPlane, ProcessCpu.Microseconds(Environment.ProcessId) - cpuBefore.Sidecar);

        await stop.CancelAsync();
        await uploader.StopAsync(default);
        await recorder.StopAsync(default);
        await hub.StopAsync(default);
        if (connection is not null)
            await TestPostgres.DropDatabaseAsync(connection);

        var sorted = lags.Order().ToList();
        double P(double p) => sorted.Count == 0 ? double.NaN : sorted[Math.Clamp((int)Math.Ceiling(p / 100 * sorted.Count) - 1, 0, sorted.Count - 1)];
        Console.WriteLine($"events recorded after warm-up: {total:N0} in {(generatedAt - started).TotalSeconds:F1} s ({total / (generatedAt - started).TotalSeconds:N0}/s offered; {all:N0} with warm-up); stored and acknowledged: {stored:N0}");
        Console.WriteLine($"sustained ingest: {stored / (finished - started).TotalSeconds:N0} events/s (first event → last acknowledgement, {(finished - started).TotalSeconds:F1} s)");
        Console.WriteLine($"lag recorded → acknowledged: p50 {P(50):F0} ms   p99 {P(99):F0} ms   max {P(100):F0} ms");
        Console.WriteLine($"CPU per stored event: control plane {controlPlaneCpu / Math.Max(1, stored):F1} µs, recorder + uploader + generators {sidecarCpu / Math.Max(1, stored):F1} µs");
        Console.WriteLine($"recorder full (statement would be refused): {refused:N0} times");
        Console.WriteLine("lag by second of recording (p50 / max ms): " + string.Join("  ", lagBySecond.OrderBy(kv => kv.Key)
            .Select(kv => { var l = kv.Value.Order().ToList(); return $"{kv.Key}s:{l[l.Count / 2]:F0}/{l[^1]:F0}"; })));
        Console.WriteLine($"targets: ≥ 20,000 events/s {(stored / (finished - started).TotalSeconds >= 20_000 ? "met" : "NOT met")}; p99 lag < 1 s {(P(99) < 1000 ? "met" : "NOT met")}");
        return 0;
    }

}
