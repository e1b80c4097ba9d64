using System.Net.Security;
using System.Net.Sockets;
using Airlock.Testing;
using Npgsql;

namespace Airlock.EndToEnd.Tests.Gateway;

/// <summary>PostgreSQL 17's direct TLS negotiation (<c>sslnegotiation=direct</c>): TLS first, no SSLRequest.</summary>
public sealed class DirectTlsTests(GatewayFixture fixture) : IClassFixture<GatewayFixture>
{
    private GatewayHarness H => fixture.Harness;

    [Fact]
    public async Task Npgsql_negotiating_tls_directly_runs_queries_through_the_sidecar()
    {
        var builder = new NpgsqlConnectionStringBuilder(H.SidecarConnectionString) { SslNegotiation = SslNegotiation.Direct };
        await using var connection = new NpgsqlConnection(builder.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT current_user, $1::int + 1", connection) { Parameters = { new() { Value = 41 } } };
        await using var reader = await command.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        Assert.Equal(("airlock_scram", 42), (reader.GetString(0), reader.GetInt32(1)));
    }

    [Theory]
    [InlineData(false)] // no ALPN at all: the handshake completes, then the sidecar closes
    [InlineData(true)] // ALPN for another protocol: the handshake itself is refused
    public async Task A_direct_tls_client_that_does_not_ask_for_postgresql_by_alpn_is_closed(bool otherProtocol)
    {
        // Like PostgreSQL: without ALPN "postgresql" a TLS client of another protocol could be talked
        // into a PostgreSQL session, so it never gets one.
        using var tcp = new TcpClient();
        await tcp.ConnectAsync("127.0.0.1", H.Port);
        await using var tls = new SslStream(tcp.GetStream(), leaveInnerStreamOpen: false, (_, _, _, _) => true);
        var closed = false;
        try
        {
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = "localhost", ApplicationProtocols = otherProtocol ? [SslApplicationProtocol.Http11] : null,
            });
            // A startup packet the sidecar must never answer.
            await tls.WriteAsync(new byte[] { 0, 0, 0, 8, 0, 3, 0, 0 });
            closed = await tls.ReadAsync(new byte[64]).AsTask().WaitAsync(TimeSpan.FromSeconds(10)) == 0;
        }
        catch (Exception e) when (e is IOException or System.Security.Authentication.AuthenticationException)
        {
            closed = true;
        }
        Assert.True(closed);
        if (!otherProtocol)
            await PolicySyncTests.Eventually(() => Task.FromResult(H.Sidecar.Process.Output.Contains("started TLS directly without ALPN \"postgresql\"", StringComparison.Ordinal)));
    }
}
