using System.Net;
using Airlock.Testing;

namespace Airlock.EndToEnd.Tests;

public sealed class PolicySyncOnSqliteTests() : PolicySyncTests(StoreProvider.Sqlite);

public sealed class PolicySyncOnPostgresTests() : PolicySyncTests(StoreProvider.Postgres);

/// <summary>The foundation's working path: enroll, first snapshot, a change through the REST API reaching the sidecar.</summary>
public abstract class PolicySyncTests(StoreProvider provider) : IAsyncLifetime
{
    private string? _postgres;
    private ControlPlaneProcess? _cp;

    internal const string Policy = """
        targets:
        - name: orders
          sidecar: edge-1
          listenPort: 16432
          labels: {env: prod}
          upstream: {host: 127.0.0.1, database: orders, username: airlock, password: s3cret-upstream}
        roles:
        - name: reader
          grants: [{selector: {env: prod}}]
          rules:
          - {name: no-ddl, action: block, match: {classes: [ddl]}, message: no DDL}
        agents:
        - {name: ci-deploy, owner: admin, role: reader}
        """;

    public async Task InitializeAsync()
    {
        if (provider == StoreProvider.Postgres)
            _postgres = await TestPostgres.CreateDatabaseAsync("airlock_e2e");
        _cp = await ControlPlaneProcess.StartAsync(_postgres);
    }

    public async Task DisposeAsync()
    {
        if (_cp is not null)
            await _cp.DisposeAsync();
        if (_postgres is not null)
            await TestPostgres.DropDatabaseAsync(_postgres);
    }

    [Fact]
    public async Task A_sidecar_enrolls_gets_its_first_snapshot_and_every_change_within_a_second()
    {
        var cp = _cp!;
        var token = await cp.CreateSidecarAsync("edge-1");
        await using var sidecar = SidecarProcess.Start(cp.Url, token);

        await sidecar.WaitForVersionAsync(1);
        await sidecar.Process.WaitForOutputAsync("Applied snapshot version 1");

        // The identity file holds the credential: owner-only.
        var identity = Path.Combine(sidecar.StateDirectory, "identity.json");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(identity));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(sidecar.StateDirectory, "snapshot.json")));

        var put = await cp.PutPolicyAsync(Policy);
        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        var took = await sidecar.WaitForVersionAsync(2);
        Assert.True(took < TimeSpan.FromSeconds(1), $"propagation took {took.TotalMilliseconds:F0} ms");
        await sidecar.Process.WaitForOutputAsync("Applied snapshot version 2 (");
        Assert.Contains("1 target(s), 1 role(s), 1 agent(s)", sidecar.Process.Output, StringComparison.Ordinal);

        // The stored upstream password is sealed, never on the sidecar's disk in clear.
        Assert.DoesNotContain("s3cret-upstream", await File.ReadAllTextAsync(Path.Combine(sidecar.StateDirectory, "snapshot.json")), StringComparison.Ordinal);

        // The control plane knows what the sidecar applied, and that it is online.
        await Eventually(async () =>
        {
            var status = await cp.GetSidecarAsync("edge-1");
            return status.GetProperty("online").GetBoolean()
                && status.GetProperty("appliedVersion").GetInt64() == 2
                && status.GetProperty("currentVersion").GetInt64() == 2
                && status.GetProperty("softwareVersion").GetString() == "0.1.0";
        });

        // An apply that changes nothing produces no new version.
        Assert.Equal(HttpStatusCode.OK, (await cp.PutPolicyAsync(Policy)).StatusCode);
        await Task.Delay(500);
        Assert.Equal(2, (await sidecar.ReadyAsync()).Body.GetProperty("version").GetInt64());
        Assert.DoesNotContain("s3cret-upstream", sidecar.Process.Output + cp.Process.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_change_that_does_not_concern_a_sidecar_does_not_reach_it()
    {
        var cp = _cp!;
        await using var edge1 = SidecarProcess.Start(cp.Url, await cp.CreateSidecarAsync("edge-1"));
        await using var edge2 = SidecarProcess.Start(cp.Url, await cp.CreateSidecarAsync("edge-2"));
        await edge1.WaitForVersionAsync(1);
        await edge2.WaitForVersionAsync(1);

        Assert.Equal(HttpStatusCode.OK, (await cp.PutPolicyAsync(Policy)).StatusCode);
        await edge1.WaitForVersionAsync(2);
        await Task.Delay(500);
        Assert.Equal(1, (await edge2.ReadyAsync()).Body.GetProperty("version").GetInt64());
    }

    [Fact]
    public async Task A_revoked_sidecar_is_disconnected_fails_closed_and_is_refused_on_restart()
    {
        var cp = _cp!;
        await using var sidecar = SidecarProcess.Start(cp.Url, await cp.CreateSidecarAsync("edge-1"));
        await sidecar.WaitForVersionAsync(1);

        (await cp.Api.PostAsync("/api/v1/sidecars/edge-1/revoke", null)).EnsureSuccessStatusCode();
        var revokedExit = await sidecar.Process.WaitForExitAsync(TimeSpan.FromSeconds(15));
        Assert.True(revokedExit == 3, $"exit code {revokedExit}; output:\n{sidecar.Process.Output}");
        Assert.Contains("refused this sidecar", sidecar.Process.Output, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(sidecar.StateDirectory, "snapshot.json")));

        await sidecar.RestartAsync();
        var exitCode = await sidecar.Process.WaitForExitAsync(TimeSpan.FromSeconds(15));
        Assert.True(exitCode == 3, $"exit code {exitCode}; output:\n{sidecar.Process.Output}");
        var status = await cp.GetSidecarAsync("edge-1");
        Assert.Equal("revoked", status.GetProperty("status").GetString());
        Assert.False(status.GetProperty("online").GetBoolean());
    }

    internal static async Task Eventually(Func<Task<bool>> condition, int seconds = 15)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException("condition not met in time");
            await Task.Delay(50);
        }
    }
}
