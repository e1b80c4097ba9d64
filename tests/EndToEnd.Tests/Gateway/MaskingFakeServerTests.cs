using System.Buffers.Binary;
using System.Net.Http.Json;
using System.Text;
using Airlock.Testing;
using Npgsql;

namespace Airlock.EndToEnd.Tests.Gateway;

/// <summary>
/// Masking against a fake target that speaks the real wire, for rows a real server cannot produce: a
/// DataRow of a masked column whose value length runs past the message. The session ends with a
/// protocol error and not one byte of the value reaches the agent (checked through a byte tap).
/// </summary>
public sealed class MaskingFakeServerTests : IAsyncLifetime
{
    private const string Secret = "alice-the-secret";
    private GatewayHarness _harness = default!;

    public async Task InitializeAsync() => _harness = await GatewayHarness.StartAsync();

    public async Task DisposeAsync() => await _harness.DisposeAsync();

    private static byte[] Body(Action<BinaryWriter> write)
    {
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream))
            write(writer);
        return stream.ToArray();
    }

    private static void I32(BinaryWriter w, int v)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(b, v);
        w.Write(b);
    }

    private static void I16(BinaryWriter w, short v)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteInt16BigEndian(b, v);
        w.Write(b);
    }

    private static void Str(BinaryWriter w, string s)
    {
        w.Write(Encoding.UTF8.GetBytes(s));
        w.Write((byte)0);
    }

    private static byte[] Row(params string?[] values) => Body(w =>
    {
        I16(w, (short)values.Length);
        foreach (var v in values)
        {
            if (v is null)
            {
                I32(w, -1);
                continue;
            }
            var bytes = Encoding.UTF8.GetBytes(v);
            I32(w, bytes.Length);
            w.Write(bytes);
        }
    });

    /// <summary>Both connections the sidecar opens: its catalog reader (three result sets) and the agent's session (one malformed row).</summary>
    private static async Task Script(FakeUpstream.Conversation c)
    {
        await c.AuthAsync(0);
        foreach (var (name, value) in new[] { ("server_version", "15.0"), ("standard_conforming_strings", "on"), ("client_encoding", "UTF8"), ("DateStyle", "ISO, MDY"), ("integer_datetimes", "on") })
            await c.SendAsync('S', Body(w => { Str(w, name); Str(w, value); }));
        await c.SendAsync('K', [0, 0, 0, 42, 0, 0, 0, 7]);
        await c.SendAsync('Z', [(byte)'I']);
        while (await c.ReadAsync() is { } message)
        {
            switch (message.Type)
            {
                case 'X':
                    return;
                case 'P':
                    await c.SendAsync('1', []);
                    continue;
                case 'B':
                    await c.SendAsync('2', []);
                    continue;
                case 'D':
                    await c.SendAsync('T', Description());
                    continue;
                case 'E':
                    await c.SendAsync('D', MalformedRow());
                    await c.SendAsync('C', Body(w => Str(w, "SELECT 1")));
                    continue;
                case 'S':
                    await c.SendAsync('Z', [(byte)'I']);
                    continue;
                case not 'Q':
                    continue;
            }
            var sql = Encoding.UTF8.GetString(message.Body);
            if (sql.Contains("pg_catalog.pg_attribute", StringComparison.Ordinal))
            {
                // The masked table secrets(id int, secret text), oid 5000; no views, no functions.
                await c.SendAsync('T', [0, 0]);
                await c.SendAsync('D', Row("5000", "public", "secrets", "1", "id", "public", "secrets", "23", "f"));
                await c.SendAsync('D', Row("5000", "public", "secrets", "2", "secret", "public", "secrets", "25", "f"));
                await c.SendAsync('C', Body(w => Str(w, "SELECT 2")));
                await c.SendAsync('T', [0, 0]);
                await c.SendAsync('C', Body(w => Str(w, "SELECT 0")));
                await c.SendAsync('T', [0, 0]);
                await c.SendAsync('C', Body(w => Str(w, "SELECT 0")));
                await c.SendAsync('Z', [(byte)'I']);
                continue;
            }
            await c.SendAsync('T', Description());
            await c.SendAsync('D', MalformedRow());
            await c.SendAsync('C', Body(w => Str(w, "SELECT 1")));
            await c.SendAsync('Z', [(byte)'I']);
        }
    }

    /// <summary>One text column, <c>secret</c>, column 2 of table 5000.</summary>
    private static byte[] Description() => Body(w =>
    {
        I16(w, 1);
        Str(w, "secret");
        I32(w, 5000);
        I16(w, 2);
        I32(w, 25);
        I16(w, -1);
        I32(w, -1);
        I16(w, 0);
    });

    /// <summary>One value whose length (100) runs past the message, which holds the secret itself.</summary>
    private static byte[] MalformedRow() => Body(w =>
    {
        I16(w, 1);
        I32(w, 100);
        w.Write(Encoding.UTF8.GetBytes(Secret));
    });

    [Fact]
    public async Task A_malformed_row_of_a_masked_column_ends_the_session_and_none_of_it_reaches_the_agent()
    {
        await using var fake = new FakeUpstream(Script);
        var port = FreePort.Next();
        await _harness.ApplyWithTargetsAsync($$"""
            - name: fake-mask
              sidecar: edge-1
              listenPort: {{port}}
              allowCleartextOnLoopback: true
              upstream: {host: 127.0.0.1, port: {{fake.Port}}, database: {{_harness.Database}}, username: app, tls: disable}

            """, ["fake-mask"]);
        var cp = _harness.ControlPlane;
        var (_, ready) = await _harness.Sidecar.ReadyAsync();
        var version = ready.GetProperty("version").GetInt64();
        var role = await cp.Api.PutAsJsonAsync("/api/v1/roles/fake-masked", new
        {
            grants = new[] { new { target = "fake-mask" } },
            rules = new object[]
            {
                new { name = "reads", action = "allow", match = new { classes = new[] { "read" } } },
                new { name = "secret-mask", action = "mask", mask = new { columns = new[] { "secrets.secret" } } },
            },
        });
        Assert.True(role.IsSuccessStatusCode, await role.Content.ReadAsStringAsync());
        var agent = await cp.Api.PutAsJsonAsync("/api/v1/agents/fmasker", new { role = "fake-masked", owner = "admin" });
        Assert.True(agent.IsSuccessStatusCode, await agent.Content.ReadAsStringAsync());
        var token = await GatewayHarness.TokenAsync(cp, "fmasker");
        await _harness.Sidecar.WaitForVersionAsync(version + 1);
        await GatewayHarness.WaitForListenerAsync(port);

        await using var tap = new ByteTap(port);
        var connectionString = new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1", Port = tap.Port, Database = _harness.Database, Username = "fmasker", Password = token, Pooling = false,
            SslMode = SslMode.Disable,
        }.ConnectionString;
        // The fake answers only what the test asks: no type loading at connect.
        var builder = new NpgsqlDataSourceBuilder(connectionString);
        builder.ConfigureTypeLoading(t => t.EnableTypeLoading(false));
        await using var dataSource = builder.Build();
        await PolicySyncTests.Eventually(async () =>
        {
            try
            {
                await using var probe = await dataSource.OpenConnectionAsync();
                return true;
            }
            catch (PostgresException)
            {
                return false;
            }
        }, seconds: 30);

        await using var connection = await dataSource.OpenConnectionAsync();
        await using var command = new NpgsqlCommand("SELECT secret FROM secrets", connection);
        var failure = await Assert.ThrowsAnyAsync<NpgsqlException>(async () =>
        {
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
                _ = reader.GetValue(0);
        });
        Assert.True(failure.ToString().Contains("malformed", StringComparison.Ordinal), failure.ToString());
        Assert.True(tap.Saw("secret"), "the tap keeps what the agent received"); // the column name, in the RowDescription
        Assert.False(tap.Saw(Secret), "a byte of the malformed masked value reached the agent");
        Assert.False(tap.Saw("alice"), "a byte of the malformed masked value reached the agent");
    }
}
