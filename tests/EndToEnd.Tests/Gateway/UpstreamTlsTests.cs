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
        // One document, so one snapshot carries the targets and the grant together (entity by entity,
        // a listener could open before the role change that grants it reached the sidecar).
        var targets = string.Concat(ports.Select(p => $$"""
            - name: {{p.Key}}
              sidecar: edge-1
              listenPort: {{p.Value}}
              upstream: {host: 127.0.0.1, port: {{target.Port}}, database: postgres, username: tls_app, tls: {{modes[p.Key]}}, password: tls-Secret-1}

            """));
        await h.ApplyWithTargetsAsync(targets, ports.Keys);

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

    [Fact]
    public async Task A_cleartext_password_goes_only_inside_tls_and_only_where_the_policy_allows_it()
    {
        var h = fixture.Harness;
        await using var target = await TlsPostgres.StartAsync(h.CertificateDirectory, "tls_clear", "clear-Secret-2", method: "password");
        var ports = new Dictionary<string, int> { ["clear-allowed"] = FreePort.Next(), ["clear-default"] = FreePort.Next() };
        var auth = new Dictionary<string, string> { ["clear-allowed"] = ", auth: [password]", ["clear-default"] = "" };
        var targets = string.Concat(ports.Select(p => $$"""
            - name: {{p.Key}}
              sidecar: edge-1
              listenPort: {{p.Value}}
              upstream: {host: 127.0.0.1, port: {{target.Port}}, database: postgres, username: tls_clear, tls: verify-full, password: clear-Secret-2{{auth[p.Key]}}}

            """));
        await h.ApplyWithTargetsAsync(targets, ports.Keys);

        string Through(string name) => new NpgsqlConnectionStringBuilder(h.SidecarConnectionString) { Port = ports[name], Database = "postgres" }.ConnectionString;
        await using (var allowed = new NpgsqlConnection(Through("clear-allowed")))
        {
            await allowed.OpenAsync();
            Assert.Equal("tls_clear", await new NpgsqlCommand("SELECT current_user", allowed).ExecuteScalarAsync());
        }
        await using var byDefault = new NpgsqlConnection(Through("clear-default"));
        var refused = await Assert.ThrowsAsync<PostgresException>(() => byDefault.OpenAsync());
        Assert.Equal("08001", refused.SqlState);
        Assert.Contains("asks for password authentication, which its policy does not allow (upstream auth: scram-sha-256)", refused.MessageText, StringComparison.Ordinal);
    }
}
