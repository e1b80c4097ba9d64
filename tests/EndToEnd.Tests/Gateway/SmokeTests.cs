using Npgsql;

namespace Airlock.EndToEnd.Tests.Gateway;

public sealed class SmokeTests(GatewayFixture fixture) : IClassFixture<GatewayFixture>
{
    [Fact]
    public async Task Npgsql_runs_a_query_through_the_sidecar()
    {
        // On Linux the gateway runs on the sidecar's own epoll sockets by default.
        Assert.Contains($"Serving PostgreSQL target pg on 127.0.0.1:{fixture.Harness.Port} (TLS available), epoll sockets", fixture.Harness.Sidecar.Process.Output, StringComparison.Ordinal);
        await using var connection = new NpgsqlConnection(fixture.Harness.SidecarConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT current_user, 1 + 1", connection);
        await using var reader = await command.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        Assert.Equal("airlock_scram", reader.GetString(0));
        Assert.Equal(2, reader.GetInt32(1));
    }
}
