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
        try
        {
            await connection.OpenAsync();
        }
        catch (NpgsqlException e)
        {
            // Seen once in CI (a read timeout during Npgsql's type loading): keep the sidecar's side of it.
            var log = fixture.Harness.Sidecar.Process.Output;
            throw new Xunit.Sdk.XunitException($"open through the sidecar failed: {e.Message}\nsidecar log (end):\n{log[Math.Max(0, log.Length - 6000)..]}");
        }
        await using var command = new NpgsqlCommand("SELECT current_user, 1 + 1", connection);
        await using var reader = await command.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        Assert.Equal("airlock_scram", reader.GetString(0));
        Assert.Equal(2, reader.GetInt32(1));
    }

    [Fact]
    public async Task The_sidecar_exports_gateway_and_recording_metrics()
    {
        var h = fixture.Harness;
        await using var connection = new NpgsqlConnection(h.SidecarConnectionString);
        await connection.OpenAsync();
        for (var i = 0; i < 3; i++)
        {
            await using var command = new NpgsqlCommand($"SELECT {i}", connection);
            await command.ExecuteScalarAsync();
        }
        await using (var refused = new NpgsqlConnection(h.SidecarConnectionStringFor("not-a-token")))
            await Assert.ThrowsAsync<PostgresException>(() => refused.OpenAsync());

        using var http = new HttpClient();
        var metrics = "";
        long Value(string series) =>
            System.Text.RegularExpressions.Regex.Match(metrics, "^" + System.Text.RegularExpressions.Regex.Escape(series) + @"(?:\{[^}]*\})? (\d+)", System.Text.RegularExpressions.RegexOptions.Multiline) is { Success: true } m
                ? long.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : -1;
        long Labelled(string name, string label) =>
            System.Text.RegularExpressions.Regex.Match(metrics, "^" + System.Text.RegularExpressions.Regex.Escape(name) + @"\{[^}]*" + System.Text.RegularExpressions.Regex.Escape(label) + @"[^}]*\} (\d+)", System.Text.RegularExpressions.RegexOptions.Multiline) is { Success: true } m
                ? long.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : -1;
        await Airlock.EndToEnd.Tests.PolicySyncTests.Eventually(async () =>
        {
            metrics = await http.GetStringAsync($"{h.Sidecar.Url}/metrics");
            return Labelled("airlock_recorder_events_total", "type=\"statement\"") >= 3 && Labelled("airlock_gateway_connections_total", "outcome=\"refused\"") >= 1;
        });
        Assert.Equal(1, Value("airlock_gateway_sessions_active"));
        Assert.True(Labelled("airlock_gateway_connections_total", "outcome=\"served\"") >= 1, metrics);
        Assert.True(Labelled("airlock_recorder_events_total", "type=\"session.start\"") >= 1, metrics);
        Assert.Equal(0, Value("airlock_recorder_rejections_total"));
        Assert.Equal(1, Value("airlock_recording_connected"));
        Assert.True(Value("airlock_recording_spool_bytes") > 0, metrics);
        Assert.True(Value("airlock_recording_unacknowledged_events") >= 0, metrics);
        Assert.True(Labelled("airlock_recording_uploads_total", "outcome=\"stored\"") >= 0, metrics);
    }
}
