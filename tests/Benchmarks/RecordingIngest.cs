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
        var sqlite = args.Contains("--sqlite");
        var connection = sqlite ? null : await TestPostgres.CreateDatabaseAsync("airlock_bench");
        Console.WriteLine($"recording ingest: {sessions} sessions, target {rate:N0} events/s for {seconds} s, store {(sqlite ? "SQLite" : "PostgreSQL")}, {Environment.ProcessorCount} cores");

        await using var cp = await ControlPlaneProcess.StartAsync(connection);
        var state = Path.Combine(Directory.CreateTempSubdirectory("airlock-bench-rec-").FullName, "state");
        var options = new SidecarOptions { ControlPlane = cp.Url, EnrollmentToken = await cp.CreateSidecarAsync("bench"), StateDirectory = state, HeartbeatSeconds = 5 };
        var identity = await Enrollment.EnsureEnrolledAsync(options, null, NullLogger.Instance, default);
        var snapshots = new SnapshotStore(identity, new SidecarOptionsSnapshot(state), TimeProvider.System, NullLogger<SnapshotStore>.Instance);
        var live = new LiveSessions();
        var hub = new HubClient(identity, snapshots, new AgentAuthenticator(snapshots, TimeProvider.System), live, Options.Create(options), TimeProvider.System, NullLogger<HubClient>.Instance);
        var recorder = new SessionRecorder(identity, new SidecarOptionsSnapshot(state), TimeProvider.System, NullLogger<SessionRecorder>.Instance);
        var uploader = new RecordingUploader(recorder, hub, NullLogger<RecordingUploader>.Instance);

        // Per session, when each event was handed to the recorder (seq = index + 1).
        var created = Enumerable.Range(0, sessions).Select(_ => new ConcurrentQueue<long>()).ToArray();
        var ids = Enumerable.Range(0, sessions).Select(_ => Guid.NewGuid()).ToArray();
        var index = ids.Select((id, i) => (id, i)).ToDictionary(x => x.id, x => x.i);
        var acked = new long[sessions];
        var lags = new ConcurrentBag<double>();
        var lagBySecond = new ConcurrentDictionary<int, ConcurrentBag<double>>();
        long stored = 0;
        var clock = Stopwatch.StartNew();
        uploader.Acknowledged += (session, through) =>
        {
            var i = index[session];
            var now = clock.ElapsedTicks;
            var times = created[i].ToArray();
            for (var seq = acked[i] + 1; seq <= through && seq <= times.Length; seq++)
            {
                var lag = (now - times[seq - 1]) * 1000.0 / Stopwatch.Frequency;
                lags.Add(lag);
                lagBySecond.GetOrAdd((int)(times[seq - 1] / Stopwatch.Frequency), _ => []).Add(lag);
            }
            Interlocked.Add(ref stored, through - acked[i]);
            acked[i] = through;
        };

        using var stop = new CancellationTokenSource();
        await hub.StartAsync(stop.Token);
        await recorder.StartAsync(stop.Token);
        await uploader.StartAsync(stop.Token);
        while (!hub.IsConnected)
            await Task.Delay(50);

        var payload = RecordingJson.Encode(new StatementPayload("SELECT id, email FROM users WHERE id = $1", ["42"], "read", "allow", null, 0.4, 1, null));
        var perTick = Math.Max(1, rate / sessions / 100); // 10 ms ticks
        var refused = 0L;
        var started = clock.Elapsed;
        var generators = Enumerable.Range(0, sessions).Select(i => Task.Run(async () =>
        {
            void Record(string type, byte[] bytes)
            {
                created[i].Enqueue(clock.ElapsedTicks);
                while (!recorder.TryRecord(ids[i], type, bytes))
                {
                    Interlocked.Increment(ref refused);
                    Thread.Sleep(1);
                }
            }
            Record(RecordingEventTypes.SessionStart, RecordingJson.Encode(new SessionStartPayload("bench", "bench", "bench", "bench", "127.0.0.1:1", false)));
            var next = clock.Elapsed;
            while (clock.Elapsed - started < TimeSpan.FromSeconds(seconds))
            {
                for (var k = 0; k < perTick; k++)
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
        var total = created.Sum(q => q.Count);
        while (Interlocked.Read(ref stored) < total && clock.Elapsed - generatedAt < TimeSpan.FromSeconds(120))
            await Task.Delay(20);
        var finished = clock.Elapsed;

        await stop.CancelAsync();
        await uploader.StopAsync(default);
        await recorder.StopAsync(default);
        await hub.StopAsync(default);
        if (connection is not null)
            await TestPostgres.DropDatabaseAsync(connection);

        var sorted = lags.Order().ToList();
        double P(double p) => sorted.Count == 0 ? double.NaN : sorted[Math.Clamp((int)Math.Ceiling(p / 100 * sorted.Count) - 1, 0, sorted.Count - 1)];
        Console.WriteLine($"events recorded: {total:N0} in {(generatedAt - started).TotalSeconds:F1} s ({total / (generatedAt - started).TotalSeconds:N0}/s offered); stored and acknowledged: {stored:N0}");
        Console.WriteLine($"sustained ingest: {stored / (finished - started).TotalSeconds:N0} events/s (first event → last acknowledgement, {(finished - started).TotalSeconds:F1} s)");
        Console.WriteLine($"lag recorded → acknowledged: p50 {P(50):F0} ms   p99 {P(99):F0} ms   max {P(100):F0} ms");
        Console.WriteLine($"recorder full (statement would be refused): {refused:N0} times");
        Console.WriteLine("lag by second of recording (p50 / max ms): " + string.Join("  ", lagBySecond.OrderBy(kv => kv.Key)
            .Select(kv => { var l = kv.Value.Order().ToList(); return $"{kv.Key}s:{l[l.Count / 2]:F0}/{l[^1]:F0}"; })));
        Console.WriteLine($"targets: ≥ 20,000 events/s {(stored / (finished - started).TotalSeconds >= 20_000 ? "met" : "NOT met")}; p99 lag < 1 s {(P(99) < 1000 ? "met" : "NOT met")}");
        return 0;
    }

}
