using System.Text;
using Airlock.Testing;
using Npgsql;

namespace Airlock.EndToEnd.Tests.Gateway;

/// <summary>
/// The sidecar's own login to a target, against servers that lie: a machine between sidecar and
/// database cannot read the password (no cleartext without TLS, no method the policy does not
/// allow) nor pass for the database (no success before SCRAM's server proof, no "trust" when a
/// password is configured). Fake servers speak the real wire here; real logins are in RefusalTests
/// and UpstreamTlsTests.
/// </summary>
public sealed class UpstreamAuthenticationTests(GatewayFixture fixture) : IClassFixture<GatewayFixture>
{
    private GatewayHarness H => fixture.Harness;
    private const string Secret = "fake-upstream-Secret-9";

    public static TheoryData<string, string, string> Liars => new()
    {
        // name, upstream auth in the policy ("" = default), what the agent is told
        { "ok-before-scram-proof", "", "reported a successful login before proving it knows the password" },
        { "ok-after-scram-continue", "", "reported a successful login before proving it knows the password" },
        { "wrong-scram-proof", "", "failed SCRAM server verification" },
        { "cleartext-without-tls", "[password]", "asks for a cleartext password on a connection without TLS" },
        { "cleartext-not-allowed", "", "asks for a cleartext password on a connection without TLS" },
        { "md5-not-allowed", "", "asks for md5 authentication, which its policy does not allow" },
        { "trust-with-a-password", "", "let the sidecar in without asking for a password" },
        { "key-before-login", "", "sent 'K' before the login succeeded" },
    };

    private static async Task Script(string name, FakeUpstream.Conversation c)
    {
        switch (name)
        {
            case "ok-before-scram-proof":
                await c.StartScramAsync();
                await c.LetInAsync();
                break;
            case "ok-after-scram-continue":
                var nonce = await c.StartScramAsync();
                await c.AuthAsync(11, Encoding.ASCII.GetBytes($"r={nonce}server,s={Convert.ToBase64String(new byte[16])},i=4096"));
                await c.ReadAsync();
                await c.LetInAsync();
                break;
            case "wrong-scram-proof":
                var n = await c.StartScramAsync();
                await c.AuthAsync(11, Encoding.ASCII.GetBytes($"r={n}server,s={Convert.ToBase64String(new byte[16])},i=4096"));
                await c.ReadAsync();
                await c.AuthAsync(12, Encoding.ASCII.GetBytes($"v={Convert.ToBase64String(new byte[32])}"));
                await c.LetInAsync();
                break;
            case "cleartext-without-tls" or "cleartext-not-allowed":
                await c.AuthAsync(3);
                await c.ReadAsync();
                await c.LetInAsync();
                break;
            case "md5-not-allowed":
                await c.AuthAsync(5, [1, 2, 3, 4]);
                await c.ReadAsync();
                await c.LetInAsync();
                break;
            case "trust-with-a-password":
                await c.LetInAsync();
                break;
            case "key-before-login":
                await c.SendAsync('K', [0, 0, 0, 1, 0, 0, 0, 1]);
                await c.LetInAsync();
                break;
        }
    }

    [Theory]
    [MemberData(nameof(Liars))]
    public async Task A_lying_target_never_gets_the_password_nor_the_session(string name, string auth, string told)
    {
        await using var fake = new FakeUpstream(c => Script(name, c));
        var port = FreePort.Next();
        var target = "liar-" + name;
        var authYaml = auth.Length == 0 ? "" : $", auth: {auth}";
        await H.ApplyWithTargetsAsync($$"""
            - name: {{target}}
              sidecar: edge-1
              listenPort: {{port}}
              upstream: {host: 127.0.0.1, port: {{fake.Port}}, database: {{H.Database}}, username: app, tls: prefer, password: {{Secret}}{{authYaml}}}

            """, [target]);
        await GatewayHarness.WaitForListenerAsync(port);

        await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(H.SidecarConnectionString) { Port = port }.ConnectionString);
        var refused = await Assert.ThrowsAsync<PostgresException>(() => connection.OpenAsync());
        Assert.Equal(name == "key-before-login" ? "08P01" : "08001", refused.SqlState);
        Assert.Contains(told, refused.MessageText, StringComparison.Ordinal);

        // The password never crossed the wire in a form the fake could use: no cleartext, no MD5 answer.
        List<(char Type, byte[] Body)> received;
        lock (fake.Received)
            received = [.. fake.Received];
        Assert.DoesNotContain(received, m => Encoding.UTF8.GetString(m.Body).Contains(Secret, StringComparison.Ordinal));
        if (name is "cleartext-without-tls" or "cleartext-not-allowed" or "md5-not-allowed" or "trust-with-a-password" or "key-before-login")
            Assert.Empty(received);
        // Nothing of a session reached the fake: no query after the login.
        Assert.DoesNotContain(received, m => m.Type == 'Q');
    }
}
