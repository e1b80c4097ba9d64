using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text.Json;
using Airlock.Contracts.PolicySync;
using Airlock.Sidecar.Policy;
using Airlock.Testing;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using PolicySnapshot = Airlock.Sidecar.Policy.PolicySnapshot;
using WireSnapshot = Airlock.Contracts.PolicySync.SignedSnapshot;

namespace Airlock.EndToEnd.Tests;

/// <summary>
/// A real sidecar against a fake control plane that speaks the real PolicySync wire and sends
/// what a real one never would: replays, tampered payloads, foreign signatures.
/// </summary>
public sealed class FakeControlPlaneTests
{
    private const string SidecarId = "5c0ffee0-0000-4000-8000-000000000001";

    [Fact]
    public async Task Replayed_tampered_and_foreign_snapshots_are_rejected_and_the_current_one_kept()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var foreignKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var now = DateTimeOffset.UtcNow;
        WireSnapshot Sign(long version, string target, ECDsa? by = null) =>
            ToWire(SnapshotCodec.Sign(Content(target), version, now, 3600, "cp-key", by ?? key));

        var v2 = Sign(2, "orders");
        var replayedV1 = Sign(1, "rolled-back");
        var tamperedV3 = Sign(3, "orders-v3");
        tamperedV3.Payload = ByteString.CopyFromUtf8(tamperedV3.Payload.ToStringUtf8().Replace("orders-v3", "evil-db", StringComparison.Ordinal));
        var foreignV3 = Sign(3, "foreign", foreignKey);
        var v3 = Sign(3, "orders-v3");
        var script = new Script([v2, replayedV1, tamperedV3, foreignV3, v3]);

        var port = FreePort.Next();
        await using var fake = await StartFakeAsync(port, script);
        var state = Path.Combine(Directory.CreateTempSubdirectory("airlock-sc-fake-").FullName, "state");
        WriteIdentity(state, $"http://127.0.0.1:{port}", key);

        await using var sidecar = SidecarProcess.Start(controlPlane: null, enrollmentToken: null, stateDirectory: state);
        await sidecar.WaitForVersionAsync(3);
        var output = sidecar.Process.Output;
        Assert.Contains("Applied snapshot version 2", output, StringComparison.Ordinal);
        Assert.Contains("Rejected snapshot version 1: snapshot version 1 is not newer than the applied version 2 (replay or rollback)", output, StringComparison.Ordinal);
        Assert.Contains("Rejected snapshot version 3: snapshot payload does not match its signed content hash; keeping version 2", output, StringComparison.Ordinal);
        Assert.Contains("Rejected snapshot version 3: snapshot signature does not verify; keeping version 2", output, StringComparison.Ordinal);
        Assert.Contains("Applied snapshot version 3", output, StringComparison.Ordinal);
        // Only what was applied is acknowledged.
        await PolicySyncTests.Eventually(() => Task.FromResult(script.Acks.Count == 2));
        Assert.Equal([2L, 3L], script.Acks.ToArray());
        Assert.Contains("orders-v3", await File.ReadAllTextAsync(Path.Combine(state, "snapshot.json")).ContinueWith(t => DecodeTargets(t.Result)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_key_the_latest_snapshot_no_longer_publishes_is_no_longer_trusted_even_after_a_restart()
    {
        // Enrolled with cp-key; version 2 (signed by cp-key) publishes only cp-key-2: the control plane
        // rotated cp-key out (say it leaked). A version 3 signed with cp-key is then refused.
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var next = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var now = DateTimeOffset.UtcNow;
        var rotated = Content("orders") with { SnapshotKeys = [new SnapshotKey("cp-key-2", next.ExportSubjectPublicKeyInfo())] };
        var v2 = ToWire(SnapshotCodec.Sign(rotated, 2, now, 3600, "cp-key", key));
        var forgedV3 = ToWire(SnapshotCodec.Sign(Content("evil-db"), 3, now, 3600, "cp-key", key));
        var v3 = ToWire(SnapshotCodec.Sign(rotated with { Targets = Content("orders-v3").Targets }, 3, now, 3600, "cp-key-2", next));
        var script = new Script([v2, forgedV3, v3]);
        var port = FreePort.Next();
        var state = Path.Combine(Directory.CreateTempSubdirectory("airlock-sc-fake-").FullName, "state");
        WriteIdentity(state, $"http://127.0.0.1:{port}", key);
        await using (var fake = await StartFakeAsync(port, script))
        {
            await using var sidecar = SidecarProcess.Start(null, null, state);
            await sidecar.WaitForVersionAsync(3);
            Assert.Contains("Rejected snapshot version 3: snapshot signed by unknown key 'cp-key'", sidecar.Process.Output, StringComparison.Ordinal);
            Assert.Contains("no longer trusted (not published by version 2): cp-key", sidecar.Process.Output, StringComparison.Ordinal);
        }

        // After a restart the old key is still not trusted: a cache re-signed with it is refused.
        var cachePath = Path.Combine(state, "snapshot.json");
        var reSigned = SnapshotCodec.Sign(Content("evil-db"), 9, now, 3600, "cp-key", key);
        await File.WriteAllTextAsync(cachePath, JsonSerializer.Serialize(reSigned, SnapshotCodec.EnvelopeJson));
        await using var restarted = SidecarProcess.Start(null, null, state);
        await restarted.Process.WaitForOutputAsync("Cached snapshot rejected: snapshot signed by unknown key 'cp-key'");
    }

    [Fact]
    public async Task A_tampered_cache_file_is_not_served_after_a_restart()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var script = new Script([ToWire(SnapshotCodec.Sign(Content("orders"), 1, DateTimeOffset.UtcNow, 3600, "cp-key", key))]);
        var port = FreePort.Next();
        var state = Path.Combine(Directory.CreateTempSubdirectory("airlock-sc-fake-").FullName, "state");
        WriteIdentity(state, $"http://127.0.0.1:{port}", key);
        await using (var fake = await StartFakeAsync(port, script))
        {
            await using var sidecar = SidecarProcess.Start(null, null, state);
            await sidecar.WaitForVersionAsync(1);
        }

        // Edit the cached payload on disk (as someone with access to the file might), keep the signature.
        var path = Path.Combine(state, "snapshot.json");
        var json = JsonDocument.Parse(await File.ReadAllTextAsync(path)).RootElement;
        var payload = System.Text.Encoding.UTF8.GetString(json.GetProperty("payload").GetBytesFromBase64()).Replace("orders", "evil-db", StringComparison.Ordinal);
        var edited = (await File.ReadAllTextAsync(path)).Replace(json.GetProperty("payload").GetString()!, Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(payload)), StringComparison.Ordinal);
        await File.WriteAllTextAsync(path, edited);

        await using var restarted = SidecarProcess.Start(null, null, state);
        await restarted.Process.WaitForOutputAsync("Cached snapshot rejected: snapshot payload does not match its signed content hash");
        var (status, _) = await restarted.ReadyAsync();
        for (var i = 0; i < 50 && status == 0; i++)
            (status, _) = await Task.Delay(100).ContinueWith(_ => restarted.ReadyAsync()).Unwrap();
        Assert.Equal(503, status);
    }

    private static string DecodeTargets(string envelope) =>
        string.Join(",", SnapshotCodec.Decode(JsonDocument.Parse(envelope).RootElement.GetProperty("payload").GetBytesFromBase64()).Targets.Select(t => t.Name));

    private static PolicySnapshot Content(string target) => new(
        SidecarId, "edge-fake",
        [new TargetPolicy(target, "postgres", new Dictionary<string, string>(), 16432, new UpstreamPolicy("127.0.0.1", 5432, "db", "u", "prefer", "env:X", null))],
        [], [], []);

    // The control plane's own mapping to the wire message.
    private static WireSnapshot ToWire(Sidecar.Policy.SignedSnapshot s) => ControlPlane.Sidecars.PolicySyncService.ToMessage(s);

    /// <summary>Writes the identity a real enrollment would have stored, trusting <paramref name="key"/>.</summary>
    private static void WriteIdentity(string state, string endpoint, ECDsa key)
    {
        Directory.CreateDirectory(state);
        using var signing = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var sealing = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
        var identity = new
        {
            sidecarId = SidecarId,
            sidecarName = "edge-fake",
            credential = "sc_fake",
            controlPlane = endpoint,
            grpcEndpoint = endpoint,
            enrolledSnapshotKeys = new[] { new { keyId = "cp-key", publicKey = key.ExportSubjectPublicKeyInfo() } },
            signingKeyPkcs8 = signing.ExportPkcs8PrivateKey(),
            sealingKeyPkcs8 = sealing.ExportPkcs8PrivateKey(),
        };
        File.WriteAllText(Path.Combine(state, "identity.json"), JsonSerializer.Serialize(identity));
    }

    private static async Task<WebApplication> StartFakeAsync(int port, Script script)
    {
        // An empty content root: no appsettings.json (and its Kestrel endpoints) from the test output folder.
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { ContentRootPath = Directory.CreateTempSubdirectory("airlock-fake-cp-").FullName });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.ListenLocalhost(port, o => o.Protocols = HttpProtocols.Http2));
        builder.Services.AddGrpc();
        builder.Services.AddSingleton(script);
        var app = builder.Build();
        app.MapGrpcService<FakePolicySync>();
        await app.StartAsync();
        return app;
    }

    internal sealed class Script(IReadOnlyList<WireSnapshot> snapshots)
    {
        public IReadOnlyList<WireSnapshot> Snapshots { get; } = snapshots;
        public ConcurrentQueue<long> Acks { get; } = new();
    }

    internal sealed class FakePolicySync(Script script) : PolicySync.PolicySyncBase
    {
        public override async Task Subscribe(SubscribeRequest request, IServerStreamWriter<WireSnapshot> responseStream, ServerCallContext context)
        {
            foreach (var snapshot in script.Snapshots)
                await responseStream.WriteAsync(snapshot, context.CancellationToken);
            // Stay open, as a real control plane does between changes.
            await Task.Delay(Timeout.Infinite, context.CancellationToken).ContinueWith(_ => { }, TaskScheduler.Default);
        }

        public override Task<SnapshotAckReply> Acknowledge(SnapshotAck request, ServerCallContext context)
        {
            script.Acks.Enqueue(request.Version);
            return Task.FromResult(new SnapshotAckReply { CurrentVersion = request.Version });
        }
    }
}
