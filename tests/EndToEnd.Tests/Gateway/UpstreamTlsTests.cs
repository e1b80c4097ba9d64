using System.Net.Http.Json;
using Airlock.Testing;
using Npgsql;

namespace Airlock.EndToEnd.Tests.Gateway;

/// <summary>The sidecar's upstream TLS modes against a target that accepts only TLS connections.</summary>
public sealed class UpstreamTlsTests(GatewayFixture fixture) : IClassFixture<GatewayFixture>
{
    [Fact]
    public async Task Require_and_verify_full_reach_a_tls_only_target_and_disable_is_refused_by_it()
    {
        var h = fixture.Harness;
        await using var target = await TlsPostgres.StartAsync(h.CertificateDirectory, "tls_app", "tls-Secret-1");
        var ports = new Dictionary<string, int> { ["tls-require"] = FreePort.Next(), ["tls-verify"] = FreePort.Next(), ["tls-disable"] = FreePort.Next() };
        var modes = new Dictionary<string, string> { ["tls-require"] = "require", ["tls-verify"] = "verify-full", ["tls-disable"] = "disable" };
        foreach (var (name, port) in ports)
        {
            var response = await h.ControlPlane.Api.PostAsJsonAsync("/api/v1/targets", new
            {
                name, sidecar = "edge-1", listenPort = port,
                upstream = new { host = "127.0.0.1", port = target.Port, database = "postgres", username = "tls_app", tls = modes[name], password = "tls-Secret-1" },
            });
            Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        }
        var grants = new[] { "pg", "pg-down", "pg-badpass", "pg-md5", "pg-clear", "tls-require", "tls-verify", "tls-disable" }.Select(t => new { target = t }).ToArray();
        var role = await h.ControlPlane.Api.PutAsJsonAsync("/api/v1/roles/rw", new { grants });
        Assert.True(role.IsSuccessStatusCode, await role.Content.ReadAsStringAsync());
        foreach (var port in ports.Values)
            await GatewayHarness.WaitForListenerAsync(port);

        string Through(string name) => new NpgsqlConnectionStringBuilder(h.SidecarConnectionString) { Port = ports[name], Database = "postgres" }.ConnectionString;
        foreach (var name in new[] { "tls-require", "tls-verify" })
        {
            await using var connection = new NpgsqlConnection(Through(name));
            await connection.OpenAsync();
            // The server sees the sidecar's connection as TLS.
            Assert.Equal(true, await new NpgsqlCommand("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", connection).ExecuteScalarAsync());
        }

        await using var plain = new NpgsqlConnection(Through("tls-disable"));
        var refused = await Assert.ThrowsAsync<PostgresException>(() => plain.OpenAsync());
        Assert.Equal("08001", refused.SqlState);
        Assert.Contains("refused the sidecar's login", refused.MessageText, StringComparison.Ordinal);
        Assert.Contains("no encryption", refused.MessageText, StringComparison.Ordinal);
    }
}
