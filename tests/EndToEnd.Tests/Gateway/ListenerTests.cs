using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Airlock.Testing;
using Npgsql;

namespace Airlock.EndToEnd.Tests.Gateway;

/// <summary>
/// A target whose listener cannot open is named where an operator looks, does not take the others
/// down, and is served as soon as its port is free (a restart whose old process still holds it).
/// </summary>
public sealed class ListenerTests : IAsyncLifetime
{
    private GatewayHarness _h = default!;

    public async Task InitializeAsync() => _h = await GatewayHarness.StartAsync();

    public async Task DisposeAsync() => await _h.DisposeAsync();

    [Fact]
    public async Task A_target_whose_port_is_taken_is_named_at_readyz_the_others_are_served_and_it_is_served_once_free()
    {
        using var squatter = new TcpListener(IPAddress.Loopback, 0);
        squatter.Start();
        var taken = ((IPEndPoint)squatter.LocalEndpoint).Port;
        var policy = _h.Policy.Replace("targets:\n", $$"""
            targets:
            - name: pg-taken
              sidecar: edge-1
              listenPort: {{taken}}
              upstream: {host: 127.0.0.1, port: 5432, database: postgres, username: nobody, password: unused}

            """, StringComparison.Ordinal);
        Assert.NotEqual(_h.Policy, policy);
        Assert.Equal(HttpStatusCode.OK, (await _h.ControlPlane.PutPolicyAsync(policy)).StatusCode);
        await _h.Sidecar.WaitForVersionAsync(3);

        JsonElement ready = default;
        await PolicySyncTests.Eventually(async () =>
        {
            ready = (await _h.Sidecar.ReadyAsync()).Body;
            return ready.TryGetProperty("listenerProblems", out var problems) && problems.TryGetProperty("pg-taken", out _);
        }, seconds: 10);
        Assert.Contains($"cannot listen on port {taken}", ready.GetProperty("listenerProblems").GetProperty("pg-taken").GetString(), StringComparison.Ordinal);
        Assert.False(ready.GetProperty("listeners").TryGetProperty("pg-taken", out _));
        Assert.Equal(_h.Port, ready.GetProperty("listeners").GetProperty("pg").GetInt32());

        await using var connection = new NpgsqlConnection(_h.SidecarConnectionString);
        await connection.OpenAsync();
        Assert.Equal(7, await new NpgsqlCommand("SELECT 7", connection).ExecuteScalarAsync());

        // Once the port is free the sidecar takes it by itself (it retries every few seconds).
        squatter.Stop();
        await PolicySyncTests.Eventually(async () =>
        {
            ready = (await _h.Sidecar.ReadyAsync()).Body;
            return ready.GetProperty("listeners").TryGetProperty("pg-taken", out var port) && port.GetInt32() == taken;
        }, seconds: 15);
        Assert.False(ready.GetProperty("listenerProblems").TryGetProperty("pg-taken", out _));
        await GatewayHarness.WaitForListenerAsync(taken);
    }
}
