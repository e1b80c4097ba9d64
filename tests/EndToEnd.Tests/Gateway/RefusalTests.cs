using System.Buffers.Binary;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Airlock.Testing;
using Npgsql;

namespace Airlock.EndToEnd.Tests.Gateway;

/// <summary>Authentication and upstream failures, and hostile bytes: each gets a precise error and touches no other session.</summary>
public sealed class RefusalTests(GatewayFixture fixture) : IClassFixture<GatewayFixture>
{
    private GatewayHarness H => fixture.Harness;

    private static async Task<PostgresException> RefusedAsync(string connectionString)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        return await Assert.ThrowsAsync<PostgresException>(() => connection.OpenAsync());
    }

    [Fact]
    public async Task Agent_authentication_failures_name_the_reason()
    {
        var wrong = await RefusedAsync(H.SidecarConnectionStringFor("not-a-token"));
        Assert.Equal("28P01", wrong.SqlState);
        Assert.Equal("FATAL", wrong.Severity);
        Assert.Contains("agent token refused", wrong.MessageText, StringComparison.Ordinal);

        var tampered = await RefusedAsync(H.SidecarConnectionStringFor(H.Token[..^4] + "AAAA"));
        Assert.Equal("28P01", tampered.SqlState);

        var strangerToken = await GatewayHarness.TokenAsync(H.ControlPlane, "stranger");
        var stranger = await RefusedAsync(H.SidecarConnectionStringFor(strangerToken, "stranger"));
        Assert.Equal("42501", stranger.SqlState);
        Assert.Contains("agent \"stranger\" (role \"limited\") is not granted target \"pg\"", stranger.MessageText, StringComparison.Ordinal);

        // The startup user must be the token's agent: another name is refused, naming both.
        var impostor = await RefusedAsync(H.SidecarConnectionStringFor(strangerToken, "ci"));
        Assert.Equal("28000", impostor.SqlState);
        Assert.Contains("user \"ci\" is not the token's agent \"stranger\"", impostor.MessageText, StringComparison.Ordinal);
        var nobody = await RefusedAsync(H.SidecarConnectionStringFor(H.Token, "nobody"));
        Assert.Equal("28000", nobody.SqlState);

        var cleartext = await RefusedAsync(new NpgsqlConnectionStringBuilder(H.SidecarConnectionString) { SslMode = SslMode.Disable }.ConnectionString);
        Assert.Equal("28000", cleartext.SqlState);
        Assert.Contains("only over TLS", cleartext.MessageText, StringComparison.Ordinal);

        var database = await RefusedAsync(new NpgsqlConnectionStringBuilder(H.SidecarConnectionString) { Database = "postgres" }.ConnectionString);
        Assert.Equal("3D000", database.SqlState);

        var role = await RefusedAsync(new NpgsqlConnectionStringBuilder(H.SidecarConnectionString) { Options = "-c role=postgres" }.ConnectionString);
        Assert.Equal("42501", role.SqlState);
        Assert.Contains("setting \"role\" is not allowed", role.MessageText, StringComparison.Ordinal);

        // Allowed settings pass through to the server.
        await using var allowed = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(H.SidecarConnectionString) { Options = "-c search_path=public,pg_catalog", ApplicationName = "airlock-test", Timezone = "Asia/Tokyo" }.ConnectionString);
        await allowed.OpenAsync();
        Assert.Equal("public,pg_catalog", await new NpgsqlCommand("SHOW search_path", allowed).ExecuteScalarAsync());
        Assert.Equal("airlock-test", await new NpgsqlCommand("SHOW application_name", allowed).ExecuteScalarAsync());
        Assert.Equal("Asia/Tokyo", await new NpgsqlCommand("SHOW TimeZone", allowed).ExecuteScalarAsync());
    }

    [Fact]
    public async Task A_refused_connection_reaches_the_control_plane_with_who_what_and_why()
    {
        var strangerToken = await GatewayHarness.TokenAsync(H.ControlPlane, "stranger");
        var stranger = await RefusedAsync(H.SidecarConnectionStringFor(strangerToken, "stranger"));
        Assert.Equal("42501", stranger.SqlState);

        // The sidecar's next heartbeat (every second in tests) carries it to the control plane.
        System.Text.Json.JsonElement refusal = default;
        await Airlock.EndToEnd.Tests.PolicySyncTests.Eventually(async () =>
        {
            var list = System.Text.Json.JsonDocument.Parse(await H.ControlPlane.Api.GetStringAsync("/api/v1/refused-connections?agent=stranger&target=pg")).RootElement;
            if (list.GetArrayLength() == 0)
                return false;
            refusal = list[0].Clone();
            return true;
        }, seconds: 30);
        Assert.Equal("edge-1", refusal.GetProperty("sidecarName").GetString());
        Assert.Equal("42501", refusal.GetProperty("sqlState").GetString());
        Assert.Contains("agent \"stranger\" (role \"limited\") is not granted target \"pg\"", refusal.GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.StartsWith("127.0.0.1:", refusal.GetProperty("client").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_connection_test_is_run_from_the_targets_sidecar_and_says_how_far_it_got()
    {
        async Task<System.Text.Json.JsonElement> TestAsync(string target)
        {
            var response = await H.ControlPlane.Api.PostAsync($"/api/v1/targets/{target}/test", null);
            Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
            return System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
        }

        var ok = await TestAsync("pg");
        Assert.True(ok.GetProperty("succeeded").GetBoolean(), ok.ToString());
        Assert.Equal("edge-1", ok.GetProperty("sidecar").GetString());
        Assert.Contains($"logged in as \"{GatewayHarness.ScramUser}\" to database \"{H.Database}\"", ok.GetProperty("detail").GetString(), StringComparison.Ordinal);

        var down = await TestAsync("pg-down");
        Assert.False(down.GetProperty("succeeded").GetBoolean());
        Assert.Contains("pg-down", down.GetProperty("detail").GetString(), StringComparison.Ordinal);

        var badPassword = await TestAsync("pg-badpass");
        Assert.False(badPassword.GetProperty("succeeded").GetBoolean());
        Assert.Contains("password", badPassword.GetProperty("detail").GetString(), StringComparison.OrdinalIgnoreCase);

        Assert.Equal(System.Net.HttpStatusCode.NotFound, (await H.ControlPlane.Api.PostAsync("/api/v1/targets/nope/test", null)).StatusCode);
        Assert.Contains("test-connection", await H.ControlPlane.Api.GetStringAsync("/api/v1/audit?entityName=pg-badpass"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cleartext_from_loopback_is_accepted_only_where_the_target_allows_it()
    {
        // pg refuses it (above); pg-loopback has allowCleartextOnLoopback: true in its policy.
        var cleartext = new NpgsqlConnectionStringBuilder(H.SidecarConnectionStringForTarget("pg-loopback")) { SslMode = SslMode.Disable }.ConnectionString;
        await using var connection = new NpgsqlConnection(cleartext);
        await connection.OpenAsync();
        Assert.Equal(42, await new NpgsqlCommand("SELECT 42", connection).ExecuteScalarAsync());

        var refused = await RefusedAsync(new NpgsqlConnectionStringBuilder(H.SidecarConnectionString) { SslMode = SslMode.Disable }.ConnectionString);
        Assert.Contains("allowCleartextOnLoopback", refused.Hint, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Replication_connections_are_refused()
    {
        var result = await Cli.RunAsync("psql", [H.SidecarLibpq + " replication=database", "-X", "-c", "IDENTIFY_SYSTEM"], new Dictionary<string, string> { ["PGPASSWORD"] = H.Token });
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("replication connections are not allowed through Airlock", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Upstream_failures_are_reported_to_the_agent()
    {
        var down = await RefusedAsync(H.SidecarConnectionStringForTarget("pg-down"));
        Assert.Equal("08001", down.SqlState);
        Assert.Contains("cannot reach target \"pg-down\" at 127.0.0.1:", down.MessageText, StringComparison.Ordinal);

        var badPassword = await RefusedAsync(H.SidecarConnectionStringForTarget("pg-badpass"));
        Assert.Equal("08001", badPassword.SqlState);
        Assert.Contains("refused the sidecar's login as \"airlock_scram\"", badPassword.MessageText, StringComparison.Ordinal);
        Assert.Contains("28P01", badPassword.MessageText, StringComparison.Ordinal);
        Assert.DoesNotContain("not-the-password", badPassword.MessageText, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Md5_upstream_login_works_where_the_policy_allows_it()
    {
        await using var connection = new NpgsqlConnection(H.SidecarConnectionStringForTarget("pg-md5"));
        await connection.OpenAsync();
        Assert.Equal(GatewayHarness.Md5User, await new NpgsqlCommand("SELECT current_user", connection).ExecuteScalarAsync());
    }

    [Fact]
    public async Task A_cleartext_password_is_never_sent_to_a_target_without_tls()
    {
        // pg-clear allows the password method, but the server offers no TLS: the sidecar does not log in.
        await using var connection = new NpgsqlConnection(H.SidecarConnectionStringForTarget("pg-clear"));
        var refused = await Assert.ThrowsAsync<PostgresException>(() => connection.OpenAsync());
        Assert.Equal("08001", refused.SqlState);
        Assert.Contains("asks for a cleartext password on a connection without TLS", refused.MessageText, StringComparison.Ordinal);
        Assert.DoesNotContain(GatewayHarness.CleartextPassword, refused.MessageText, StringComparison.Ordinal);
    }

    /// <summary>An authenticated raw TLS connection through the sidecar, for bytes no real client sends.</summary>
    private async Task<(TcpClient Tcp, SslStream Tls)> RawSessionAsync()
    {
        var tcp = new TcpClient();
        await tcp.ConnectAsync("127.0.0.1", H.Port);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Packet(80877103));
        Assert.Equal((byte)'S', (byte)stream.ReadByte());
        var tls = new SslStream(stream, false, (_, _, _, _) => true);
        await tls.AuthenticateAsClientAsync("localhost");
        var parameters = Encoding.UTF8.GetBytes($"user\0ci\0database\0{H.Database}\0\0");
        var startup = new byte[8 + parameters.Length];
        BinaryPrimitives.WriteInt32BigEndian(startup, startup.Length);
        BinaryPrimitives.WriteInt32BigEndian(startup.AsSpan(4), 196608);
        parameters.CopyTo(startup.AsSpan(8));
        await tls.WriteAsync(startup);
        await ReadUntilAsync(tls, (byte)'R');
        var password = Encoding.UTF8.GetBytes(H.Token + "\0");
        await tls.WriteAsync(Message((byte)'p', password));
        await ReadUntilAsync(tls, (byte)'Z');
        return (tcp, tls);
    }

    private static byte[] Packet(int code)
    {
        var packet = new byte[8];
        BinaryPrimitives.WriteInt32BigEndian(packet, 8);
        BinaryPrimitives.WriteInt32BigEndian(packet.AsSpan(4), code);
        return packet;
    }

    private static byte[] Message(byte type, byte[] body)
    {
        var message = new byte[5 + body.Length];
        message[0] = type;
        BinaryPrimitives.WriteInt32BigEndian(message.AsSpan(1), 4 + body.Length);
        body.CopyTo(message, 5);
        return message;
    }

    /// <summary>Reads messages until one of the given type; returns the ErrorResponse text if one came first (or at all).</summary>
    private static async Task<string> ReadUntilAsync(Stream stream, byte type)
    {
        var errors = new StringBuilder();
        while (true)
        {
            var header = new byte[5];
            try
            {
                await stream.ReadExactlyAsync(header).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            }
            catch (EndOfStreamException)
            {
                return errors.ToString();
            }
            catch (IOException)
            {
                return errors.ToString();
            }
            var body = new byte[BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(1)) - 4];
            await stream.ReadExactlyAsync(body);
            if (header[0] == (byte)'E')
                errors.Append(Encoding.UTF8.GetString(body).Replace('\0', '|'));
            if (header[0] == type)
                return errors.ToString();
        }
    }

    [Theory]
    [InlineData("oversized length", "Q", int.MaxValue, "54000|", "over the gateway's")]
    [InlineData("negative length", "Q", -5, "08P01|", "invalid message length -5")]
    [InlineData("unknown message type", "!", 8, "08P01|", "invalid frontend message type '!'")]
    [InlineData("query without NUL terminator", "Q", 8, "08P01|", "not NUL-terminated")]
    public async Task Malformed_messages_end_that_session_with_a_protocol_error_and_no_other(string what, string type, int length, string state, string message)
    {
        _ = what;
        await using var bystander = new NpgsqlConnection(H.SidecarConnectionString);
        await bystander.OpenAsync();
        var (tcp, tls) = await RawSessionAsync();
        using (tcp)
        await using (tls)
        {
            var bytes = new byte[9];
            bytes[0] = (byte)type[0];
            BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(1), length);
            "ABCD"u8.CopyTo(bytes.AsSpan(5));
            await tls.WriteAsync(bytes);
            var error = await ReadUntilAsync(tls, 0);
            Assert.Contains(state, error, StringComparison.Ordinal);
            Assert.Contains(message, error, StringComparison.Ordinal);
        }
        Assert.Equal(1, await new NpgsqlCommand("SELECT 1", bystander).ExecuteScalarAsync());
    }

    [Fact]
    public async Task Garbage_before_startup_and_a_client_gone_mid_message_leave_others_untouched()
    {
        await using var bystander = new NpgsqlConnection(H.SidecarConnectionString);
        await bystander.OpenAsync();

        using (var garbage = new TcpClient())
        {
            await garbage.ConnectAsync("127.0.0.1", H.Port);
            await garbage.GetStream().WriteAsync("GET / HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray());
            var error = await ReadUntilAsync(garbage.GetStream(), 0);
            Assert.Contains("08P01", error, StringComparison.Ordinal);
            Assert.Contains("invalid startup packet", error, StringComparison.Ordinal);
        }

        // Plaintext smuggled right behind SSLRequest is never read as if it came through TLS.
        using (var smuggler = new TcpClient())
        {
            await smuggler.ConnectAsync("127.0.0.1", H.Port);
            await smuggler.GetStream().WriteAsync(Packet(80877103).Concat(Message((byte)'Q', "SELECT 1\0"u8.ToArray())).ToArray());
            var buffer = new byte[16];
            var read = await smuggler.GetStream().ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal(0, read);
        }

        var (tcp, tls) = await RawSessionAsync();
        await tls.WriteAsync(new byte[] { (byte)'Q', 0, 0, 0, 100, (byte)'S', (byte)'E' }); // half a Query, then gone
        await tls.DisposeAsync();
        tcp.Dispose();

        Assert.Equal(1, await new NpgsqlCommand("SELECT 1", bystander).ExecuteScalarAsync());
    }

    [Fact]
    public async Task A_target_dying_mid_result_gives_the_agent_a_connection_error_and_the_session_is_recorded()
    {
        await using var connection = new NpgsqlConnection(H.SidecarConnectionString);
        await connection.OpenAsync();
        var pid = connection.ProcessID;
        await using var command = new NpgsqlCommand("SELECT g, pg_sleep(0.01) FROM generate_series(1, 100000) g", connection);
        var reading = Task.Run(async () =>
        {
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
            }
        });
        await Task.Delay(700);
        await using (var admin = new NpgsqlConnection(H.DirectConnectionString))
        {
            await admin.OpenAsync();
            await new NpgsqlCommand($"SELECT pg_terminate_backend({pid})", admin).ExecuteScalarAsync();
        }
        var error = await Assert.ThrowsAnyAsync<Exception>(() => reading);
        var state = (error as PostgresException ?? error.InnerException as PostgresException)?.SqlState;
        Assert.Equal("57P01", state); // the server's own FATAL, passed through
    }

    [Fact]
    public async Task Dates_beyond_dotnets_calendar_are_recorded_as_postgresql_prints_them_and_the_session_goes_on()
    {
        // Npgsql asks for binary results; a BC date or a year past 9999 used to end the session with XX000
        // when the sidecar rendered the captured row through DateTime.
        await using var connection = new NpgsqlConnection(H.SidecarConnectionString);
        await connection.OpenAsync();
        await new NpgsqlCommand("SELECT '4714-11-24 BC'::date AS first_day, '294276-12-31 23:59:59.999999'::timestamp AS last_moment, 'calendar-check' AS marker", connection).ExecuteNonQueryAsync();
        Assert.Equal(1, await new NpgsqlCommand("SELECT 1", connection).ExecuteScalarAsync());

        string events = "";
        await PolicySyncTests.Eventually(async () =>
        {
            var list = JsonDocument.Parse(await H.ControlPlane.Api.GetStringAsync("/api/v1/sessions?agent=ci&status=live")).RootElement;
            foreach (var item in (list.ValueKind == JsonValueKind.Array ? list : list.GetProperty("items")).EnumerateArray())
            {
                var text = await H.ControlPlane.Api.GetStringAsync($"/api/v1/sessions/{item.GetProperty("id").GetString()}/events?take=100");
                if (text.Contains("calendar-check", StringComparison.Ordinal) && text.Contains("SELECT 1", StringComparison.Ordinal))
                    events = text;
            }
            return events.Length > 0;
        }, seconds: 20);
        Assert.Contains("\"4714-11-24 BC\"", events, StringComparison.Ordinal);
        Assert.Contains("\"294276-12-31 23:59:59.999999\"", events, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sessions_are_recorded_with_statements_and_an_admin_can_terminate_one()
    {
        await using var connection = new NpgsqlConnection(H.SidecarConnectionString);
        await connection.OpenAsync();
        await using (var command = new NpgsqlCommand("SELECT n, 'row ' || n AS label FROM generate_series(1, 3) n WHERE n > $1", connection))
        {
            command.Parameters.Add(new() { Value = 0 });
            await command.ExecuteNonQueryAsync();
        }
        await Assert.ThrowsAsync<PostgresException>(() => new NpgsqlCommand("SELECT * FROM no_such_table", connection).ExecuteNonQueryAsync());

        // The session is live on the control plane with its statements (this one: other tests of the class
        // share the agent, and their sessions may be live at the same moment).
        JsonElement session = default;
        var events = "";
        await PolicySyncTests.Eventually(async () =>
        {
            var list = JsonDocument.Parse(await H.ControlPlane.Api.GetStringAsync("/api/v1/sessions?agent=ci&status=live")).RootElement;
            var items = list.ValueKind == JsonValueKind.Array ? list : list.GetProperty("items");
            foreach (var item in items.EnumerateArray())
            {
                if (item.GetProperty("statementCount").GetInt64() < 2)
                    continue;
                var text = await H.ControlPlane.Api.GetStringAsync($"/api/v1/sessions/{item.GetProperty("id").GetString()}/events?take=100");
                if (text.Contains("no_such_table", StringComparison.Ordinal) && text.Contains("generate_series(1, 3) n WHERE n", StringComparison.Ordinal))
                    (session, events) = (item, text);
            }
            return session.ValueKind == JsonValueKind.Object;
        }, seconds: 20);
        var id = session.GetProperty("id").GetString();
        Assert.Equal("pg", session.GetProperty("target").GetString());
        Assert.Equal("rw", session.GetProperty("role").GetString());
        Assert.Contains("generate_series(1, 3) n WHERE n \\u003E $1", events.Replace(">", "\\u003E", StringComparison.Ordinal), StringComparison.Ordinal);
        Assert.Contains("\"rows\":3", events, StringComparison.Ordinal);
        Assert.True(events.Contains("row 3", StringComparison.Ordinal), events);
        Assert.Contains("42P01", events, StringComparison.Ordinal);

        // Terminate from the control plane: the agent gets a FATAL naming the reason.
        var terminate = await H.ControlPlane.Api.PostAsync($"/api/v1/sessions/{id}/terminate", System.Net.Http.Json.JsonContent.Create(new { reason = "off-hours access" }));
        Assert.Equal(System.Net.HttpStatusCode.Accepted, terminate.StatusCode);
        var fatal = await AccessWithdrawalTests.EndedAsync(connection);
        Assert.Equal("57P01", fatal.SqlState);
        Assert.Contains("off-hours access", fatal.MessageText, StringComparison.Ordinal);

        await PolicySyncTests.Eventually(async () =>
        {
            var ended = JsonDocument.Parse(await H.ControlPlane.Api.GetStringAsync($"/api/v1/sessions/{id}")).RootElement;
            return ended.GetProperty("status").GetString() == "ended" && ended.GetProperty("verification").GetString() == "verified"
                && ended.GetProperty("endReason").GetString()!.Contains("off-hours access", StringComparison.Ordinal);
        }, seconds: 20);
    }
}
