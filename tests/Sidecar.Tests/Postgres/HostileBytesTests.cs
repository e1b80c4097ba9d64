using System.Buffers.Binary;
using Airlock.Sidecar.Protocols.Postgres;

namespace Airlock.Sidecar.Tests.Postgres;

/// <summary>
/// Every byte from an agent or a target is hostile: whatever the statement ledger and the value
/// renderer are fed, they answer with a <see cref="PgProtocolException"/> (the session ends with
/// 08P01) or nothing — never another exception, which the relay can only treat as its own fault
/// (XX000). Conversations are generated from well-formed messages, then cut and corrupted, with
/// fixed seeds so a failure reproduces.
/// </summary>
public sealed class HostileBytesTests
{
    // Type OIDs the renderer decodes in binary, and a few it shows as hex.
    private static readonly int[] Oids = [16, 17, 18, 19, 20, 21, 23, 25, 26, 114, 142, 700, 701, 705, 1042, 1043, 1082, 1114, 1184, 1700, 2950, 3802, 0, -1];

    private static readonly char[] FrontendTypes = ['Q', 'P', 'B', 'D', 'E', 'C', 'S', 'F', 'H', 'd', 'c', 'f'];
    private static readonly char[] BackendTypes = ['1', '2', '3', 'T', 'n', 't', 'D', 'C', 'I', 's', 'E', 'N', 'Z', 'A', 'S', 'K', 'G', 'H', 'W', 'd', 'c', 'V'];

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void The_ledger_fed_corrupted_conversations_throws_nothing_but_protocol_errors(int seed)
    {
        var random = new Random(seed);
        for (var conversation = 0; conversation < 300; conversation++)
        {
            var ledger = new StatementLedger(captureBytes: random.Next(0, 4096), maxPending: 64);
            long clock = 0;
            for (var step = 0; step < 60; step++)
            {
                var frontend = random.Next(2) == 0;
                var type = frontend ? FrontendTypes[random.Next(FrontendTypes.Length)] : BackendTypes[random.Next(BackendTypes.Length)];
                var body = Corrupt(random, frontend ? Frontend(random, type) : Backend(random, type));
                try
                {
                    if (frontend)
                        ledger.OnFrontend((byte)type, body, clock += 1000);
                    else
                        ledger.OnBackend((byte)type, body, clock += 1000);
                    ledger.TakeCompleted([]);
                }
                catch (PgProtocolException)
                {
                    break; // the relay ends this session here
                }
                catch (Exception e)
                {
                    Assert.Fail($"seed {seed}, conversation {conversation}, step {step}: '{type}' ({(frontend ? "agent" : "target")}) [{Convert.ToHexString(body)}] threw {e}");
                }
            }
        }
    }

    [Theory]
    [InlineData(11)]
    [InlineData(12)]
    public void Any_value_of_any_type_renders_without_throwing(int seed)
    {
        var random = new Random(seed);
        foreach (var oid in Oids)
        {
            for (var i = 0; i < 2000; i++)
            {
                var value = new byte[random.Next(0, 20)];
                random.NextBytes(value);
                if (random.Next(3) == 0)
                {
                    // Dates and timestamps anywhere in PostgreSQL's own range (4714 BC to 5874897 / 294276 AD),
                    // half of them within a few thousand years of ours, where .NET's calendar ends.
                    var near = random.Next(2) == 0;
                    value = random.Next(2) == 0 ? new byte[4] : new byte[8];
                    if (value.Length == 4)
                        BinaryPrimitives.WriteInt32BigEndian(value, random.Next(-2_451_545, near ? 3_000_000 : int.MaxValue - 2_451_545));
                    else
                        BinaryPrimitives.WriteInt64BigEndian(value, random.NextInt64(-211_813_488_000_000_000, near ? 260_000_000_000_000_000 : 9_223_371_331_200_000_000));
                }
                else if (value.Length is 4 or 8 && random.Next(4) == 0)
                {
                    value.AsSpan().Fill(random.Next(2) == 0 ? (byte)0x7f : (byte)0x80); // near the ends of the range
                }
                foreach (short format in (short[])[0, 1])
                {
                    var maxChars = random.Next(0, 64);
                    var text = PgValueText.Render(value, format, oid, maxChars);
                    Assert.NotNull(text);
                }
            }
        }
    }

    [Theory]
    [InlineData(21)]
    [InlineData(22)]
    public void A_startup_packet_of_any_bytes_is_parsed_and_judged_or_refused_as_a_protocol_error(int seed)
    {
        // The one surface an unauthenticated client reaches: the startup packet and its parameters.
        string[] names = ["user", "database", "options", "application_name", "replication", "search_path", "DateStyle", "_pq_.x", "client_encoding", ""];
        string[] values = ["ci", "", "-c statement_timeout=5", "-c search_path=x -c role=admin", "--search_path=a\\ b", "-c", "database", "true", "\\", "-c a=b -c", "x\u0001y"];
        var random = new Random(seed);
        for (var i = 0; i < 20_000; i++)
        {
            var packet = new MessageBody().I32(random.Next(8) switch { 0 => PgWire.SslRequestCode, 1 => PgWire.CancelRequestCode, 2 => random.Next(), _ => 196608 + random.Next(0, 3) });
            for (var p = random.Next(0, 5); p > 0; p--)
                packet.Str(names[random.Next(names.Length)]).Str(values[random.Next(values.Length)]);
            var bytes = Corrupt(random, packet.Byte('\0').Bytes);
            try
            {
                var startup = StartupRequest.Parse(bytes);
                StartupPolicy.Decide(startup, "db");
            }
            catch (PgProtocolException)
            {
                // refused with 08P01
            }
            catch (Exception e)
            {
                Assert.Fail($"seed {seed}, packet {i} [{Convert.ToHexString(bytes)}] threw {e}");
            }
        }
    }

    private static byte[] Corrupt(Random random, byte[] body)
    {
        switch (random.Next(6))
        {
            case 0: // cut anywhere
                return body[..random.Next(0, body.Length + 1)];
            case 1: // flip bytes
                var flipped = (byte[])body.Clone();
                for (var i = random.Next(1, 4); i > 0 && flipped.Length > 0; i--)
                    flipped[random.Next(flipped.Length)] = (byte)random.Next(256);
                return flipped;
            case 2: // a count or length field at an extreme
                var extreme = (byte[])body.Clone();
                if (extreme.Length >= 4)
                    BinaryPrimitives.WriteInt32BigEndian(extreme.AsSpan(random.Next(extreme.Length - 3)), random.Next(2) == 0 ? int.MaxValue : int.MinValue + random.Next(3));
                return extreme;
            default: // well formed
                return body;
        }
    }

    private static byte[] Frontend(Random random, char type)
    {
        var b = new MessageBody();
        var name = random.Next(3) switch { 0 => "", 1 => "s1", _ => "s" + random.Next(10) };
        switch (type)
        {
            case 'Q':
                return b.Str("SELECT " + random.Next()).Bytes;
            case 'P':
                var types = Enumerable.Range(0, random.Next(0, 4)).Select(_ => Oids[random.Next(Oids.Length)]).ToArray();
                b.Str(name).Str("SELECT $1").I16((short)types.Length);
                foreach (var t in types)
                    b.I32(t);
                return b.Bytes;
            case 'B':
                var count = random.Next(0, 4);
                b.Str(random.Next(2) == 0 ? "" : "p" + random.Next(3)).Str(name).I16((short)random.Next(0, 3));
                b.I16(1).I16((short)random.Next(0, 2)); // parameter formats (as sent, possibly fewer than values)
                b.I16((short)count);
                for (var i = 0; i < count; i++)
                    b.Value(random.Next(5) == 0 ? null : RandomValue(random));
                return b.I16(1).I16((short)random.Next(0, 2)).Bytes; // result formats
            case 'D':
            case 'C':
                return b.Byte(random.Next(3) switch { 0 => 'S', 1 => 'P', _ => 'X' }).Str(name).Bytes;
            case 'E':
                return b.Str(random.Next(2) == 0 ? "" : "p" + random.Next(3)).I32(random.Next(0, 3)).Bytes;
            case 'F':
                return b.I32(random.Next()).I16(0).I16(1).Value(RandomValue(random)).I16(1).Bytes;
            default:
                return RandomValue(random);
        }
    }

    private static byte[] Backend(Random random, char type)
    {
        var b = new MessageBody();
        switch (type)
        {
            case 'T':
                var columns = random.Next(0, 5);
                b.I16((short)columns);
                for (var i = 0; i < columns; i++)
                    b.Str("c" + i).I32(0).I16(0).I32(Oids[random.Next(Oids.Length)]).I16(-1).I32(-1).I16((short)random.Next(0, 2));
                return b.Bytes;
            case 'D':
                var values = random.Next(0, 5);
                b.I16((short)values);
                for (var i = 0; i < values; i++)
                    b.Value(random.Next(5) == 0 ? null : RandomValue(random));
                return b.Bytes;
            case 'C':
                return b.Str(random.Next(4) switch { 0 => "SELECT " + random.Next(), 1 => "INSERT 0 " + random.Next(), 2 => "COPY 99999999999999999999", _ => "BEGIN" }).Bytes;
            case 'E':
            case 'N':
                return b.Byte('S').Str(random.Next(2) == 0 ? "ERROR" : "FATAL").Byte('C').Str("42P01").Byte('M').Str("m").Byte('D').Str("d").Byte('\0').Bytes;
            case 'Z':
                return b.Byte(random.Next(3) switch { 0 => 'I', 1 => 'T', _ => 'E' }).Bytes;
            case 't':
                return b.I16(1).I32(Oids[random.Next(Oids.Length)]).Bytes;
            default:
                return RandomValue(random);
        }
    }

    private static byte[] RandomValue(Random random)
    {
        var value = new byte[random.Next(0, 12)];
        random.NextBytes(value);
        return value;
    }
}
