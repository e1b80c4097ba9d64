using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text;
using Airlock.Sidecar.ControlPlane;
using Airlock.Sidecar.Hosting;
using Airlock.Sidecar.Snapshots;
using Airlock.Testing;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Airlock.Benchmarks;

/// <summary>
/// A real control-plane process and N in-process sidecars, each running the sidecar's own
/// enrollment, PolicySync client and snapshot store (signature check, atomic fsynced write, swap)
/// over its own gRPC stream. Each round changes a rule that every sidecar's snapshot contains,
/// and measures PUT-returned → applied per sidecar.
/// </summary>
internal static class PolicyPropagation
{
    public static async Task<int> RunAsync(string[] args)
    {
        var sidecars = Args.Int(args, "--sidecars", 50);
        var rounds = Args.Int(args, "--rounds", 20);
        var postgres = args.Contains("--postgres");
        string? connection = postgres ? await TestPostgres.CreateDatabaseAsync("airlock_bench") : null;
        Console.WriteLine($"policy propagation: {sidecars} sidecars, {rounds} rounds, store {(postgres ? "PostgreSQL" : "SQLite")}, {Environment.ProcessorCount} cores");

        await using var cp = await ControlPlaneProcess.StartAsync(connection);
        var root = Directory.CreateTempSubdirectory("airlock-bench-").FullName;
        var lifetime = new NullLifetime();
        var applied = new ConcurrentDictionary<(int Sidecar, long Version), DateTime>();
        var clients = new List<PolicySyncClient>();
        var stores = new List<SnapshotStore>();
        using var stopping = new CancellationTokenSource();

        // Sidecars, each with a target labelled for the one role that reaches them all.
        var doc = new StringBuilder("targets:\n");
        for (var i = 0; i < sidecars; i++)
        {
            var token = await cp.CreateSidecarAsync($"bench-{i}");
            var options = new SidecarOptions { ControlPlane = cp.Url, EnrollmentToken = token, StateDirectory = Path.Combine(root, $"sc{i}") };
            var identity = await Enrollment.EnsureEnrolledAsync(options, null, NullLogger.Instance, default);
            var store = new SnapshotStore(identity, new SidecarOptionsSnapshot(options.StateDirectory), TimeProvider.System, NullLogger<SnapshotStore>.Instance);
            var index = i;
            store.Applied += active => applied[(index, active.Signed.Version)] = DateTime.UtcNow;
            var client = new PolicySyncClient(identity, store, Options.Create(options), lifetime, NullLogger<PolicySyncClient>.Instance);
            await client.StartAsync(stopping.Token);
            clients.Add(client);
            stores.Add(store);
            doc.Append($"- {{name: db-{i}, sidecar: bench-{i}, listenPort: {20000 + i}, labels: {{bench: 'yes'}}, upstream: {{host: 127.0.0.1, credential: 'env:PG'}}}}\n");
        }
        await WaitAsync(() => stores.All(s => s.Current?.Signed.Version >= 1), "first snapshots");

        string Document(int round) => doc + $$$"""
            roles:
            - name: bench-role
              grants: [{selector: {bench: 'yes'}}]
              rules:
              - {name: no-ddl, action: block, match: {classes: [ddl]}, message: 'round {{{round}}}'}
            agents:
            - {name: bench-agent, owner: admin, role: bench-role}
            """;

        var samples = new List<double>();
        var roundMax = new List<double>();
        for (var round = 0; round <= rounds; round++)
        {
            var before = stores.Select(s => s.Current!.Signed.Version).ToArray();
            var response = await cp.PutPolicyAsync(Document(round));
            var returned = DateTime.UtcNow;
            response.EnsureSuccessStatusCode();
            await WaitAsync(() => Enumerable.Range(0, sidecars).All(i => applied.ContainsKey((i, before[i] + 1))), $"round {round}");
            if (round == 0)
                continue; // warm-up: JIT, connection pools
            var latencies = Enumerable.Range(0, sidecars).Select(i => (applied[(i, before[i] + 1)] - returned).TotalMilliseconds).ToList();
            samples.AddRange(latencies);
            roundMax.Add(latencies.Max());
        }

        await stopping.CancelAsync();
        foreach (var client in clients)
            await client.StopAsync(default);
        if (connection is not null)
            await TestPostgres.DropDatabaseAsync(connection);
        Directory.Delete(root, recursive: true);

        samples.Sort();
        roundMax.Sort();
        Console.WriteLine($"samples: {samples.Count} (sidecar × round)");
        Console.WriteLine($"PUT returned → applied, per sidecar:  p50 {Percentile(samples, 50):F1} ms   p99 {Percentile(samples, 99):F1} ms   max {samples[^1]:F1} ms");
        Console.WriteLine($"PUT returned → all {sidecars} applied, per round: p50 {Percentile(roundMax, 50):F1} ms   p99 {Percentile(roundMax, 99):F1} ms");
        var target = Percentile(samples, 99) < 1000;
        Console.WriteLine($"target p99 < 1000 ms: {(target ? "met" : "NOT met")}");
        return 0;
    }

    private static double Percentile(List<double> sorted, double p) =>
        sorted[Math.Clamp((int)Math.Ceiling(p / 100 * sorted.Count) - 1, 0, sorted.Count - 1)];

    private static async Task WaitAsync(Func<bool> condition, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(60))
                throw new TimeoutException($"timed out waiting for {what}");
            await Task.Delay(1);
        }
    }


    private sealed class NullLifetime : IHostApplicationLifetime
    {
        public CancellationToken ApplicationStarted => CancellationToken.None;
        public CancellationToken ApplicationStopping => CancellationToken.None;
        public CancellationToken ApplicationStopped => CancellationToken.None;
        public void StopApplication() => throw new InvalidOperationException("a benchmark sidecar was refused by the control plane");
    }
}
