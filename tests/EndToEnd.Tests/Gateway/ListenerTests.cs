using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Airlock.Testing;
using Npgsql;

namespace Airlock.EndToEnd.Tests.Gateway;

/// <summary>A target whose listener cannot open is named where an operator looks, and does not take the others down.</summary>
public sealed class ListenerTests : IAsyncLifetime
{
    private GatewayHarness _h = default!;

    public async Task InitializeAsync() => _h = await GatewayHarness.StartAsync();

    public async Task DisposeAsync() => await _h.DisposeAsync();

    [Fact]
    public async Task A_target_whose_port_is_taken_is_named_at_readyz_and_the_other_targets_are_served()
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
    }
}
