using Airlock.Testing;
using Npgsql;

namespace Airlock.EndToEnd.Tests.Gateway;

/// <summary>
/// Every other gateway test runs on the sidecar's own epoll sockets (the default on Linux); these
/// run the same kinds of sessions with <c>NativeSockets=false</c>, on .NET's socket engine — the
/// fallback an operator can switch to.
/// </summary>
public sealed class SocketEngineTests : IAsyncLifetime
{
    private GatewayHarness _h = default!;

    public async Task InitializeAsync() => _h = await GatewayHarness.StartAsync(sidecarArgs: ["--Sidecar:Postgres:NativeSockets=false"]);

    public async Task DisposeAsync() => await _h.DisposeAsync();

    [Theory]
    [InlineData("pg")]          // agent over TLS
    [InlineData("pg-loopback")] // agent in cleartext on loopback
    public async Task Sessions_work_on_dotnets_socket_engine(string target)
    {
        Assert.Contains($"Serving PostgreSQL target {target} on 127.0.0.1:{_h.Ports[target]} (TLS available), .NET sockets", _h.Sidecar.Process.Output, StringComparison.Ordinal);
        var builder = new NpgsqlConnectionStringBuilder(_h.SidecarConnectionStringForTarget(target));
        if (target == "pg-loopback")
            builder.SslMode = SslMode.Disable;
        await using var connection = new NpgsqlConnection(builder.ConnectionString);
        await connection.OpenAsync();
        Assert.Equal("airlock_scram", await new NpgsqlCommand("SELECT current_user", connection).ExecuteScalarAsync());

        // A result larger than any socket buffer streams through.
        await using var command = new NpgsqlCommand("SELECT g, repeat('x', 200) FROM generate_series(1, 200000) g", connection);
        await using var reader = await command.ExecuteReaderAsync();
        long sum = 0, rows = 0;
        while (await reader.ReadAsync())
        {
            sum += reader.GetInt32(0);
            rows++;
        }
        Assert.Equal(200_000, rows);
        Assert.Equal(200_000L * 200_001 / 2, sum);
    }
}
