using System.Net;
using Airlock.Testing;

namespace Airlock.EndToEnd.Tests;

/// <summary>The control plane goes away: the sidecar serves its cached snapshot until the TTL, then fails closed.</summary>
public sealed class OfflineTests
{
    [Fact]
    public async Task A_restarted_sidecar_serves_the_cached_snapshot_until_its_ttl_then_fails_closed_then_recovers()
    {
        const int ttl = 12;
        await using var cp = await ControlPlaneProcess.StartAsync(snapshotTtlSeconds: ttl);
        await using var sidecar = SidecarProcess.Start(cp.Url, await cp.CreateSidecarAsync("edge-1"));
        await sidecar.WaitForVersionAsync(1);
        Assert.Equal(HttpStatusCode.OK, (await cp.PutPolicyAsync(PolicySyncTests.Policy)).StatusCode);
        await sidecar.WaitForVersionAsync(2);

        await cp.StopAsync();
        await sidecar.RestartAsync();
        await sidecar.Process.WaitForOutputAsync("Serving cached snapshot version 2");
        await sidecar.WaitForVersionAsync(2);
        await sidecar.Process.WaitForOutputAsync("PolicySync unavailable");

        // No control plane to refresh it: at the TTL the sidecar stops being ready.
        var (status, body) = await WaitForStatus(sidecar, 503, TimeSpan.FromSeconds(ttl + 5));
        Assert.Equal(503, status);
        Assert.Contains("expired", body.GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.Contains("failing closed", body.GetProperty("reason").GetString(), StringComparison.Ordinal);

        // The control plane returns; the sidecar reconnects by itself and is ready again.
        await cp.RestartAsync();
        await sidecar.WaitForVersionAsync(2, TimeSpan.FromSeconds(20));
    }

    [Fact]
    public async Task A_control_plane_restart_mid_stream_is_survived_and_later_changes_arrive()
    {
        await using var cp = await ControlPlaneProcess.StartAsync();
        await using var sidecar = SidecarProcess.Start(cp.Url, await cp.CreateSidecarAsync("edge-1"));
        await sidecar.WaitForVersionAsync(1);
        await cp.RestartAsync();
        Assert.Equal(HttpStatusCode.OK, (await cp.PutPolicyAsync(PolicySyncTests.Policy)).StatusCode);
        await sidecar.WaitForVersionAsync(2, TimeSpan.FromSeconds(20));
        await PolicySyncTests.Eventually(async () => (await cp.GetSidecarAsync("edge-1")).GetProperty("online").GetBoolean());
    }

    private static async Task<(int, System.Text.Json.JsonElement)> WaitForStatus(SidecarProcess sidecar, int wanted, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var (status, body) = await sidecar.ReadyAsync();
            if (status == wanted || DateTime.UtcNow > deadline)
                return (status, body);
            await Task.Delay(100);
        }
    }
}
