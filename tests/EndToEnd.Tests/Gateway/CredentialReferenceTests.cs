using Airlock.Testing;
using Npgsql;

namespace Airlock.EndToEnd.Tests.Gateway;

/// <summary>
/// <c>env:</c> and <c>file:</c> credential references are resolved only within the sidecar's own
/// allow-list (Sidecar:CredentialReferences): whoever writes policy cannot make the sidecar send its
/// identity file, or any variable of its environment, as a password to a host of their choosing.
/// </summary>
public sealed class CredentialReferenceTests(GatewayFixture fixture) : IClassFixture<GatewayFixture>
{
    private GatewayHarness H => fixture.Harness;

    [Fact]
    public async Task References_outside_the_sidecars_allow_list_are_refused_by_name_and_those_inside_work()
    {
        var identityFile = Path.Combine(H.Sidecar.StateDirectory, "identity.json");
        Assert.True(File.Exists(identityFile));
        var allowed = Path.Combine(H.CredentialDirectory, "pg.password");
        await File.WriteAllTextAsync(allowed, GatewayHarness.ScramPassword + "\n");
        var link = Path.Combine(H.CredentialDirectory, "innocent.password");
        File.Delete(link);
        File.CreateSymbolicLink(link, identityFile);
        var escape = Path.Combine(H.CredentialDirectory, "..", "..", Path.GetFileName(H.CertificateDirectory), "credentials", "..", "ca.pem");

        var cases = new Dictionary<string, (string Credential, string? Refusal)>
        {
            ["ref-ok"] = ($"file:{allowed}", null),
            ["ref-env-ok"] = ("env:AIRLOCK_TEST_PG_PASSWORD", null),
            ["ref-identity"] = ($"file:{identityFile}", "does not read credentials from there"),
            ["ref-link"] = ($"file:{link}", "does not read credentials from there"),
            ["ref-dotdot"] = ($"file:{escape}", "does not read credentials from there"),
            ["ref-env-home"] = ("env:HOME", "does not resolve that variable"),
        };
        var ports = cases.Keys.ToDictionary(k => k, _ => FreePort.Next());
        var targets = string.Concat(cases.Select(c => $$"""
            - name: {{c.Key}}
              sidecar: edge-1
              listenPort: {{ports[c.Key]}}
              upstream: {host: {{GatewayHarness.Server.Host}}, port: {{GatewayHarness.Server.Port}}, database: {{H.Database}}, username: {{GatewayHarness.ScramUser}}, credential: "{{c.Value.Credential}}"}

            """));
        await H.ApplyWithTargetsAsync(targets, cases.Keys);

        foreach (var (name, (_, refusal)) in cases)
        {
            await GatewayHarness.WaitForListenerAsync(ports[name]);
            await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(H.SidecarConnectionString) { Port = ports[name] }.ConnectionString);
            if (refusal is null)
            {
                await connection.OpenAsync();
                Assert.Equal(GatewayHarness.ScramUser, await new NpgsqlCommand("SELECT current_user", connection).ExecuteScalarAsync());
                continue;
            }
            var refused = await Assert.ThrowsAsync<PostgresException>(() => connection.OpenAsync());
            Assert.Equal("08001", refused.SqlState);
            Assert.Contains(refusal, refused.MessageText, StringComparison.Ordinal);
            Assert.Contains("Sidecar:CredentialReferences", refused.MessageText, StringComparison.Ordinal);
        }
    }
}
