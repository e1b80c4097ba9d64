using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using Airlock.Sidecar.Protocols.Postgres;

namespace Airlock.Sidecar.Tests.Postgres;

public sealed class WireTests
{
    [Fact]
    public void Scram_client_matches_the_RFC_7677_example()
    {
        var client = new ScramSha256Client("pencil", "rOprNGfwEbeRWgbNEkqO", user: "user");
        Assert.Equal("n,,n=user,r=rOprNGfwEbeRWgbNEkqO", Encoding.UTF8.GetString(client.ClientFirst()));
        var final = client.ClientFinal("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"u8);
        Assert.Equal("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", Encoding.UTF8.GetString(final));
        Assert.True(client.VerifyServerFinal("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="u8, out _));
        Assert.False(client.VerifyServerFinal("v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="u8, out var forged));
        Assert.Contains("does not verify", forged, StringComparison.Ordinal);
        Assert.False(client.VerifyServerFinal("e=invalid-proof"u8, out var refused));
        Assert.Equal("invalid-proof", refused);
    }

    [Theory]
    [InlineData("r=someoneelse,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "nonce")]
    [InlineData("r=abcXYZ,s=***,i=4096", "salt")]
    [InlineData("r=abcXYZ,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0", "iteration")]
    [InlineData("r=abcXYZ,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=999999999", "iteration")]
    [InlineData("r=abc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "nonce")]
    public void Scram_client_refuses_a_bad_server_first_message(string serverFirst, string problem)
    {
        var client = new ScramSha256Client("pw", "abc");
        client.ClientFirst();
        var e = Assert.Throws<PgProtocolException>(() => client.ClientFinal(Encoding.UTF8.GetBytes(serverFirst)));
        Assert.Contains(problem, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Md5_password_is_md5_of_md5_password_user_and_salt()
    {
        // md5("secretalice") = 0f2d..., then md5 of that hex and the salt; the value PostgreSQL expects (checked against a real server in the gateway tests).
        var hash = PgAuth.Md5Password("alice", "secret", [1, 2, 3, 4]);
        Assert.StartsWith("md5", hash, StringComparison.Ordinal);
        Assert.Equal(35, hash.Length);
        Assert.NotEqual(hash, PgAuth.Md5Password("alice", "secret", [1, 2, 3, 5]));
    }

    private static byte[] Startup(params string[] pairs)
    {
        var body = new List<byte>();
        body.AddRange(BitConverter.IsLittleEndian ? BitConverter.GetBytes(PgWire.Protocol30).Reverse() : BitConverter.GetBytes(PgWire.Protocol30));
        foreach (var part in pairs)
            body.AddRange(Encoding.UTF8.GetBytes(part + "\0"));
        body.Add(0);
        return [.. body];
    }

    [Fact]
    public void Startup_packets_parse_by_kind()
    {
        var ssl = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(ssl, PgWire.SslRequestCode);
        Assert.Equal(StartupKind.Ssl, StartupRequest.Parse(ssl).Kind);
        BinaryPrimitives.WriteInt32BigEndian(ssl, PgWire.GssEncRequestCode);
        Assert.Equal(StartupKind.GssEnc, StartupRequest.Parse(ssl).Kind);
        var cancel = new byte[12];
        BinaryPrimitives.WriteInt32BigEndian(cancel, PgWire.CancelRequestCode);
        BinaryPrimitives.WriteInt32BigEndian(cancel.AsSpan(4), 4242);
        BinaryPrimitives.WriteInt32BigEndian(cancel.AsSpan(8), -7);
        var parsed = StartupRequest.Parse(cancel);
        Assert.Equal((StartupKind.Cancel, 4242, -7), (parsed.Kind, parsed.ProcessId, parsed.Secret));
        var startup = StartupRequest.Parse(Startup("user", "ci", "database", "orders", "application_name", "psql"));
        Assert.Equal((3, 0), (startup.MajorVersion, startup.MinorVersion));
        Assert.Equal("orders", startup["database"]);
    }

    [Theory]
    [InlineData(new byte[] { 0, 3, 0, 0, (byte)'u', 0 }, "NUL-terminated")]
    [InlineData(new byte[] { 0, 3, 0, 0, (byte)'u', 0, (byte)'x', 0, (byte)'u', 0, (byte)'y', 0, 0 }, "twice")]
    [InlineData(new byte[] { 0, 3, 0, 0, (byte)'u', 0, (byte)'x', 0, 0, 9 }, "after")]
    [InlineData(new byte[] { 4, 210 }, "truncated")]
    public void Malformed_startup_packets_are_refused(byte[] packet, string problem)
    {
        var e = Assert.Throws<PgProtocolException>(() => StartupRequest.Parse(packet));
        Assert.Contains(problem, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(3, "too short")]
    [InlineData(7, "too short")]
    [InlineData(10_001, "limit")]
    [InlineData(-1, "too short")]
    public void Startup_lengths_are_checked_before_reading(int length, string problem) =>
        Assert.Contains(problem, StartupRequest.CheckLength(length), StringComparison.Ordinal);

    public static TheoryData<string[], string?, string> StartupPolicyCases => new()
    {
        { ["user", "ci", "database", "orders"], null, "" },
        { ["user", "ci", "database", ""], null, "" },
        { ["user", "ci", "database", "other"], "3D000", "not served here" },
        { ["user", "ci", "replication", "database"], "42501", "replication" },
        { ["user", "ci", "replication", "true"], "42501", "replication" },
        { ["user", "ci", "replication", "off"], null, "" },
        { ["user", "ci", "role", "postgres"], "42501", "\"role\" is not allowed" },
        { ["user", "ci", "session_authorization", "postgres"], "42501", "not allowed" },
        { ["user", "ci", "application_name", "psql", "DateStyle", "ISO", "TimeZone", "UTC", "search_path", "app", "client_encoding", "UTF8"], null, "application_name=psql;DateStyle=ISO;TimeZone=UTC;search_path=app;client_encoding=UTF8" },
        { ["user", "ci", "options", "-c search_path=app -c statement_timeout=5s"], null, "search_path=app;statement_timeout=5s" },
        { ["user", "ci", "options", "-csearch_path=a\\ b --lock-timeout=1s"], null, "search_path=a b;lock_timeout=1s" },
        { ["user", "ci", "options", "-c role=postgres"], "42501", "setting \"role\"" },
        { ["user", "ci", "options", "-d 5"], "42501", "\"-d\"" },
        { ["user", "ci", "options", "-c"], "42501", "without a setting" },
        { ["user", "ci", "options", "-c novalue"], "42501", "not name=value" },
        { ["user", "ci", "_pq_.compression", "on"], null, "" },
        // What clients send: libpq/psql, Npgsql, pgjdbc, node-postgres — and harmless settings they may add.
        { ["user", "ci", "client_encoding", "UTF8", "DateStyle", "ISO", "TimeZone", "UTC", "extra_float_digits", "3", "application_name", "PostgreSQL JDBC Driver"], null, "client_encoding=UTF8;DateStyle=ISO;TimeZone=UTC;extra_float_digits=3;application_name=PostgreSQL JDBC Driver" },
        { ["user", "ci", "options", "-c default_transaction_deferrable=on -c lc_messages=C"], null, "default_transaction_deferrable=on;lc_messages=C" },
        { ["user", "ci", "lc_messages", "C", "default_transaction_deferrable", "off", "idle_session_timeout", "60s"], null, "lc_messages=C;default_transaction_deferrable=off;idle_session_timeout=60s" },
        // A read-only session is a wall behind the guardrails: it may be turned on, never off.
        { ["user", "ci", "default_transaction_read_only", "on"], null, "default_transaction_read_only=on" },
        { ["user", "ci", "default_transaction_read_only", "off"], "42501", "may only be turned on" },
        { ["user", "ci", "options", "-c default_transaction_read_only=0"], "42501", "may only be turned on" },
        { ["user", "ci", "transaction_read_only", "off"], "42501", "not allowed" },
        { ["user", "ci", "options", "-c session_replication_role=replica"], "42501", "not allowed" },
        { ["user", "ci", "row_security", "off"], "42501", "not allowed" },
        { ["user", "ci", "options", "-c local_preload_libraries=evil"], "42501", "not allowed" },
    };

    [Theory]
    [MemberData(nameof(StartupPolicyCases))]
    public void Startup_policy_passes_allowed_settings_and_refuses_the_rest_by_name(string[] pairs, string? refusal, string expected)
    {
        var decision = StartupPolicy.Decide(StartupRequest.Parse(Startup(pairs)), "orders");
        if (refusal is null)
        {
            Assert.Null(decision.Refusal);
            Assert.Equal(expected, string.Join(';', decision.Settings.Select(s => $"{s.Key}={s.Value}")));
        }
        else
        {
            Assert.Equal(refusal, decision.Refusal!.SqlState);
            Assert.Equal("FATAL", decision.Refusal.Severity);
            Assert.Contains(expected, decision.Refusal.Message, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData(new byte[] { (byte)'Q', 0, 0, 0, 9, 1, 2, 3 }, FrameStatus.Incomplete)]
    [InlineData(new byte[] { (byte)'Q', 0, 0, 0, 5, 0 }, FrameStatus.Complete)]
    [InlineData(new byte[] { (byte)'Q', 0, 0, 0, 3 }, FrameStatus.Invalid)]
    [InlineData(new byte[] { (byte)'Q', 0xff, 0xff, 0xff, 0xfb }, FrameStatus.Invalid)]
    [InlineData(new byte[] { (byte)'Q', 0x7f, 0, 0, 0 }, FrameStatus.Invalid)]
    [InlineData(new byte[] { (byte)'Q', 0, 0 }, FrameStatus.Incomplete)]
    public void Frame_headers_are_validated(byte[] bytes, FrameStatus expected) =>
        Assert.Equal(expected, PgWire.TryReadHeader(new ReadOnlySequence<byte>(bytes), 1024 * 1024, out _, out _));

    [Theory]
    [InlineData(0, 23, new byte[] { (byte)'4', (byte)'2' }, "42")]
    [InlineData(1, 23, new byte[] { 0, 0, 0, 42 }, "42")]
    [InlineData(1, 20, new byte[] { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe }, "-2")]
    [InlineData(1, 21, new byte[] { 0, 7 }, "7")]
    [InlineData(1, 16, new byte[] { 1 }, "t")]
    [InlineData(1, 25, new byte[] { (byte)'h', (byte)'i' }, "hi")]
    [InlineData(1, 3802, new byte[] { 1, (byte)'{', (byte)'}' }, "{}")]
    [InlineData(1, 701, new byte[] { 0x3f, 0xf8, 0, 0, 0, 0, 0, 0 }, "1.5")]
    [InlineData(1, 1082, new byte[] { 0, 0, 0, 1 }, "2000-01-02")]
    [InlineData(1, 1184, new byte[] { 0, 0, 0, 0, 0, 0x0f, 0x42, 0x40 }, "2000-01-01 00:00:01+00")]
    // Dates and timestamps over PostgreSQL's whole range, as PostgreSQL prints them (DateStyle ISO, TimeZone UTC;
    // the bytes are date_send / timestamp_send of the printed value): beyond .NET's DateTime, BC included.
    [InlineData(1, 1082, new byte[] { 0xff, 0xda, 0x97, 0xa7 }, "4714-11-24 BC")]
    [InlineData(1, 1082, new byte[] { 0xff, 0xf4, 0xda, 0x8b }, "0001-01-01 BC")]
    [InlineData(1, 1082, new byte[] { 0xff, 0xf4, 0xdb, 0xf8 }, "0001-12-31 BC")]
    [InlineData(1, 1082, new byte[] { 0xff, 0xf4, 0xdb, 0xf9 }, "0001-01-01")]
    [InlineData(1, 1082, new byte[] { 0xff, 0xff, 0xff, 0xff }, "1999-12-31")]
    [InlineData(1, 1082, new byte[] { 0x00, 0x2c, 0x95, 0xd3 }, "9999-12-31")]
    [InlineData(1, 1082, new byte[] { 0x00, 0x2c, 0x95, 0xd4 }, "10000-01-01")]
    [InlineData(1, 1082, new byte[] { 0x7f, 0xda, 0x97, 0x0c }, "5874897-12-31")]
    [InlineData(1, 1082, new byte[] { 0x7f, 0xff, 0xff, 0xff }, "infinity")]
    [InlineData(1, 1082, new byte[] { 0x80, 0x00, 0x00, 0x00 }, "-infinity")]
    [InlineData(1, 1114, new byte[] { 0xfd, 0x0f, 0x7c, 0xc1, 0x41, 0x1f, 0xa0, 0x00 }, "4714-11-24 00:00:00 BC")]
    [InlineData(1, 1114, new byte[] { 0xff, 0x1f, 0xc6, 0x3d, 0x1b, 0xb8, 0xc1, 0x20 }, "0001-01-01 00:00:00.5 BC")]
    [InlineData(1, 1114, new byte[] { 0xff, 0x1f, 0xe2, 0xff, 0xc5, 0x90, 0xee, 0x50 }, "0001-12-31 23:59:59.25 BC")]
    [InlineData(1, 1114, new byte[] { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, "1999-12-31 23:59:59.999999")]
    [InlineData(1, 1114, new byte[] { 0x03, 0x80, 0xe7, 0x0b, 0x91, 0x2c, 0x3d, 0xc0 }, "9999-12-31 23:59:59")]
    [InlineData(1, 1114, new byte[] { 0x03, 0x80, 0xe7, 0x0b, 0x91, 0x3b, 0x80, 0x00 }, "10000-01-01 00:00:00")]
    [InlineData(1, 1114, new byte[] { 0x7f, 0xff, 0xff, 0x5b, 0xb3, 0xb2, 0x9f, 0xff }, "294276-12-31 23:59:59.999999")]
    [InlineData(1, 1114, new byte[] { 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, "infinity")]
    [InlineData(1, 1184, new byte[] { 0xfd, 0x0f, 0x7c, 0xc1, 0x41, 0x1f, 0xa0, 0x00 }, "4714-11-24 00:00:00+00 BC")]
    [InlineData(1, 1184, new byte[] { 0xff, 0x1f, 0xc6, 0x3d, 0x1b, 0xb8, 0xc1, 0x20 }, "0001-01-01 00:00:00.5+00 BC")]
    [InlineData(1, 1184, new byte[] { 0x03, 0x80, 0xe7, 0x0b, 0x91, 0x3b, 0x80, 0x00 }, "10000-01-01 00:00:00+00")]
    [InlineData(1, 1082, new byte[] { 0x80, 0x00, 0x00, 0x01 }, "-2147483647 days after 2000-01-01")]
    [InlineData(1, 1114, new byte[] { 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01 }, "-9223372036854775807 µs after 2000-01-01")]
    [InlineData(1, 2950, new byte[] { 0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11 }, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")]
    [InlineData(1, 17, new byte[] { 0xde, 0xad }, "\\xdead")]
    [InlineData(1, 1700, new byte[] { 0, 1 }, "\\x0001")]
    [InlineData(1, 23, new byte[] { 0, 1 }, "\\x0001")]
    public void Values_are_recorded_as_readable_text(short format, int typeOid, byte[] value, string expected) =>
        Assert.Equal(expected, PgValueText.Render(value, format, typeOid, 1000));
}

/// <summary>The sidecar's upstream login, step by step: what it answers and what stops it.</summary>
public sealed class UpstreamAuthenticationTableTests
{
    private static readonly IReadOnlySet<UpstreamAuthMethod> Scram = new HashSet<UpstreamAuthMethod> { UpstreamAuthMethod.ScramSha256 };
    private static readonly IReadOnlySet<UpstreamAuthMethod> Anything = new HashSet<UpstreamAuthMethod>(Enum.GetValues<UpstreamAuthMethod>());

    /// <summary>Steps: "password", "md5", "scram", "continue", "final", "verified", "ok"; the expected refusal at the last step (null: goes on).</summary>
    public static TheoryData<string, bool, bool, string?> Exchanges => new()
    {
        { "scram continue final verified ok", false, false, null },
        { "scram ok", false, false, "before proving it knows the password" },
        { "scram continue ok", false, false, "before proving it knows the password" },
        { "scram continue final ok", false, false, "before proving it knows the password" },
        { "ok", false, false, "without asking for a password" },
        { "ok", true, false, null },
        { "password", true, false, "on a connection without TLS" },
        { "password", true, true, null },
        { "password ok", true, true, null },
        { "password", false, true, "which its policy does not allow" },
        { "md5", false, false, "asks for md5 authentication, which its policy does not allow" },
        { "md5 ok", true, false, null },
        { "continue", false, false, "out of order" },
        { "final", false, false, "out of order" },
        { "scram final", false, false, "out of order" },
        { "scram continue continue", false, false, "out of order" },
        { "md5 scram", true, false, "in the middle of another exchange" },
        { "scram password", true, true, "in the middle of another exchange" },
    };

    [Theory]
    [MemberData(nameof(Exchanges))]
    public void Each_step_goes_on_or_stops_with_a_reason(string steps, bool anyMethod, bool tls, string? refusal)
    {
        var exchange = new UpstreamAuthentication(anyMethod ? Anything : Scram, tls, "db");
        string? last = null;
        foreach (var step in steps.Split(' '))
        {
            Assert.Null(last); // every earlier step went on
            last = step switch
            {
                "password" => exchange.OnRequest(UpstreamAuthMethod.Password),
                "md5" => exchange.OnRequest(UpstreamAuthMethod.Md5),
                "scram" => exchange.OnRequest(UpstreamAuthMethod.ScramSha256),
                "continue" => exchange.OnScramContinue(),
                "final" => exchange.OnScramFinal(),
                "verified" => Verified(exchange),
                "ok" => exchange.OnOk(),
                _ => throw new ArgumentException(step),
            };
        }
        if (refusal is null)
            Assert.Null(last);
        else
            Assert.Contains(refusal, last, StringComparison.Ordinal);
    }

    private static string? Verified(UpstreamAuthentication exchange)
    {
        exchange.ScramVerified();
        return null;
    }

    [Theory]
    [InlineData("scram-sha-256", UpstreamAuthMethod.ScramSha256)]
    [InlineData("MD5", UpstreamAuthMethod.Md5)]
    [InlineData("password", UpstreamAuthMethod.Password)]
    [InlineData("none", UpstreamAuthMethod.None)]
    public void Methods_have_libpqs_names(string name, UpstreamAuthMethod method)
    {
        Assert.True(UpstreamAuthentication.TryParse(name, out var parsed));
        Assert.Equal(method, parsed);
        Assert.Equal(name.ToLowerInvariant(), UpstreamAuthentication.Name(method));
    }
}
