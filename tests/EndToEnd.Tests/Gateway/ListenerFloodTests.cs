using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Airlock.Testing;
using Npgsql;

namespace Airlock.EndToEnd.Tests.Gateway;

/// <summary>
/// Listeners that cannot be starved: a flood of idle connections (which cost their sender nothing)
/// is capped per source address and globally, so agents from elsewhere are served during it; a
/// sidecar that runs out of file descriptors keeps its listeners, says so at /readyz, and serves
/// again once the flood ends; nothing crashes.
/// </summary>
public sealed class ListenerFloodTests
{
    /// <summary>Idle TCP connections to the listener from <paramref name="source"/> (another loopback address than the agents').</summary>
    private static async Task<List<Socket>> FloodAsync(int port, int count, IPAddress source)
    {
        var sockets = new List<Socket>();
        for (var i = 0; i < count; i++)
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            socket.Bind(new IPEndPoint(source, 0));
            try
            {
                await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port)).WaitAsync(TimeSpan.FromSeconds(5));
                sockets.Add(socket);
            }
            catch (Exception e) when (e is SocketException or TimeoutException)
            {
                socket.Dispose(); // the backlog is full: that is a flood too
            }
        }
        return sockets;
    }

    private static async Task<long> MetricAsync(SidecarProcess sidecar, string name, string? label = null)
    {
        using var http = new HttpClient();
        var text = await http.GetStringAsync(sidecar.Url + "/metrics");
        var line = text.Split('\n').FirstOrDefault(l => l.StartsWith(name, StringComparison.Ordinal) && (label is null || l.Contains(label, StringComparison.Ordinal)));
        return line is null ? -1 : (long)double.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }

    private static async Task SelectOneAsync(string connectionString)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        Assert.Equal(1, await new NpgsqlCommand("SELECT 1", connection).ExecuteScalarAsync());
    }

    [Fact]
    public async Task A_flood_of_idle_connections_from_one_address_is_capped_and_other_agents_are_served_during_it()
    {
        await using var h = await GatewayHarness.StartAsync(sidecarArgs: ["--Sidecar:Limits:MaxPendingStartupsPerAddress=8", "--Sidecar:Limits:StartupTimeoutSeconds=60"]);
        var flood = await FloodAsync(h.Port, 200, IPAddress.Parse("127.0.0.2"));
        try
        {
            // The agent (from 127.0.0.1) is served while the flood holds its share.
            await SelectOneAsync(h.SidecarConnectionString);

            // Over the share, connections were told why (FATAL 53300) and closed at once.
            var refused = 0;
            var buffer = new byte[512];
            foreach (var socket in flood)
            {
                socket.ReceiveTimeout = 200;
                try
                {
                    var n = socket.Receive(buffer);
                    if (n > 0 && buffer[0] == (byte)'E' && System.Text.Encoding.ASCII.GetString(buffer, 0, n).Contains("53300", StringComparison.Ordinal))
                        refused++;
                }
                catch (SocketException)
                {
                    // still pending in startup: no answer yet
                }
            }
            Assert.InRange(refused, flood.Count - 8, flood.Count);
            Assert.True(await MetricAsync(h.Sidecar, "airlock_gateway_admissions_refused_total", "pending_startups_per_address") >= flood.Count - 8);
            Assert.Equal(8, await MetricAsync(h.Sidecar, "airlock_gateway_startups_pending"));
            var (_, ready) = await h.Sidecar.ReadyAsync();
            Assert.Equal(h.Port, ready.GetProperty("listeners").GetProperty("pg").GetInt32());
        }
        finally
        {
            foreach (var socket in flood)
                socket.Dispose();
        }
        await PolicySyncTests.Eventually(async () => await MetricAsync(h.Sidecar, "airlock_gateway_startups_pending") == 0, seconds: 10);
        await SelectOneAsync(h.SidecarConnectionString);
    }

    [Fact]
    public async Task Running_out_of_file_descriptors_keeps_the_listener_and_agents_are_served_once_the_flood_ends()
    {
        // Limits high enough that the flood exhausts the process's 800 file descriptors first (the
        // runtime itself holds about 300: two per loaded assembly; with 600 the sidecar once ran out
        // while starting, before any flood).
        await using var h = await GatewayHarness.StartAsync(sidecarFileDescriptorLimit: 800,
            sidecarArgs: ["--Sidecar:Limits:MaxPendingStartups=100000", "--Sidecar:Limits:MaxPendingStartupsPerAddress=100000", "--Sidecar:Limits:StartupTimeoutSeconds=120"]);
        await SelectOneAsync(h.SidecarConnectionString);
        var flood = await FloodAsync(h.Port, 700, IPAddress.Parse("127.0.0.2"));
        try
        {
            await h.Sidecar.Process.WaitForOutputAsync("accepting connections on port", TimeSpan.FromSeconds(30));
            Assert.False(h.Sidecar.Process.HasExited);
        }
        finally
        {
            foreach (var socket in flood)
                socket.Dispose();
        }

        // The flood is gone: the same listener serves again, and /readyz says so.
        await PolicySyncTests.Eventually(async () =>
        {
            try
            {
                await SelectOneAsync(h.SidecarConnectionString);
                return true;
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or IOException)
            {
                return false;
            }
        }, seconds: 60);
        Assert.Contains($"accepting connections on port {h.Port} again", h.Sidecar.Process.Output, StringComparison.Ordinal);
        JsonElement ready = default;
        await PolicySyncTests.Eventually(async () =>
        {
            (_, ready) = await h.Sidecar.ReadyAsync();
            return ready.ValueKind == JsonValueKind.Object && ready.GetProperty("listeners").TryGetProperty("pg", out _);
        }, seconds: 20);
        Assert.False(ready.GetProperty("listenerProblems").TryGetProperty("pg", out _));
        Assert.True(await MetricAsync(h.Sidecar, "airlock_gateway_accept_errors_total") > 0);
        Assert.False(h.Sidecar.Process.HasExited);
    }
}
