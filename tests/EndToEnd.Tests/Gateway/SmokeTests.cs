using Npgsql;

namespace Airlock.EndToEnd.Tests.Gateway;

public sealed class SmokeTests(GatewayFixture fixture) : IClassFixture<GatewayFixture>
{
    [Fact]
    public async Task Npgsql_runs_a_query_through_the_sidecar()
    {
        await using var connection = new NpgsqlConnection(fixture.Harness.SidecarConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT current_user, 1 + 1", connection);
        await using var reader = await command.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        Assert.Equal("airlock_scram", reader.GetString(0));
        Assert.Equal(2, reader.GetInt32(1));
    }
}
