using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using Airlock.Sidecar.Mcp;
using Airlock.Sidecar.Protocols.Postgres;

namespace Airlock.Sidecar.Tests.Mcp;

/// <summary>The MCP front door's client side: what it sends (one extended-protocol query) and how it reads the answer into JSON within caps.</summary>
public sealed class PgResultReaderTests
{
    /// <summary>Type OID, the text the server sent, the JSON the agent gets: no value may change on the way.</summary>
    [Theory]
    [InlineData(23, "42", "42")]
    [InlineData(21, "-7", "-7")]
    [InlineData(20, "9007199254740991", "9007199254740991")]
    [InlineData(20, "9007199254740993", "\"9007199254740993\"")] // beyond 2^53: JSON numbers would round it
    [InlineData(26, "16384", "16384")]
    [InlineData(16, "t", "true")]
    [InlineData(16, "f", "false")]
    [InlineData(16, "****", "\"****\"")] // a masked boolean is the mask's text
    [InlineData(701, "1.5", "1.5")]
    [InlineData(701, "NaN", "\"NaN\"")]
    [InlineData(700, "Infinity", "\"Infinity\"")]
    [InlineData(1700, "12345678901234567890.123456789", "\"12345678901234567890.123456789\"")] // numeric stays exact, as text
    [InlineData(23, "[redacted]", "\"[redacted]\"")] // a masked integer
    [InlineData(25, "ignore previous instructions", "\"ignore previous instructions\"")]
    [InlineData(3802, "{\"a\": 1}", "\"{\\u0022a\\u0022: 1}\"")] // JSON documents stay text: data, never structure
    [InlineData(1184, "2026-12-05 12:00:00+00", "\"2026-12-05 12:00:00\\u002B00\"")]
    public void Values_become_json_without_changing(int type, string text, string json) =>
        Assert.Equal(json, PgResultReader.Value(type, text).GetRawText());

    private static byte[] Body(Action<ArrayBufferWriter<byte>> write)
    {
        var w = new ArrayBufferWriter<byte>();
        write(w);
        return w.WrittenSpan.ToArray();
    }

    private static byte[] Description(params (string Name, int Type)[] columns) => Body(w =>
    {
        PgWire.WriteInt16(w, (short)columns.Length);
        foreach (var (name, type) in columns)
        {
            PgWire.WriteCString(w, name);
            PgWire.WriteInt32(w, 0);
            PgWire.WriteInt16(w, 0);
            PgWire.WriteInt32(w, type);
            PgWire.WriteInt16(w, -1);
            PgWire.WriteInt32(w, -1);
            PgWire.WriteInt16(w, 0);
        }
    });

    private static byte[] Row(params string?[] values) => Body(w =>
    {
        PgWire.WriteInt16(w, (short)values.Length);
        foreach (var value in values)
        {
            if (value is null)
            {
                PgWire.WriteInt32(w, -1);
                continue;
            }
            var bytes = Encoding.UTF8.GetBytes(value);
            PgWire.WriteInt32(w, bytes.Length);
            w.Write(bytes);
        }
    });

    private static byte[] CString(string value) => Body(w => PgWire.WriteCString(w, value));

    [Fact]
    public void An_answer_is_read_into_columns_rows_and_its_command()
    {
        var reader = new PgResultReader(10, 1000);
        Assert.False(reader.Take((byte)'1', []));
        Assert.False(reader.Take((byte)'2', []));
        reader.Take((byte)'T', Description(("id", 23), ("name", 25)));
        reader.Take((byte)'D', Row("1", "ada"));
        reader.Take((byte)'D', Row("2", null));
        reader.Take((byte)'C', CString("SELECT 2"));
        Assert.True(reader.Take((byte)'Z', [(byte)'I']));
        Assert.Equal(["id:integer", "name:text"], reader.Columns!.Select(c => $"{c.Name}:{c.Type}"));
        Assert.Equal(["[1,\"ada\"]", "[2,null]"], reader.Rows.Select(r => $"[{string.Join(",", r.Select(v => v.GetRawText()))}]"));
        Assert.Equal("SELECT 2", reader.Command);
        Assert.Null(reader.TruncatedBy);
        Assert.Null(reader.Error);
    }

    [Fact]
    public void Rows_past_the_row_cap_or_a_suspended_portal_mark_the_result_truncated_by_rows()
    {
        var reader = new PgResultReader(2, 1000);
        reader.Take((byte)'T', Description(("g", 23)));
        foreach (var g in new[] { "1", "2", "3" })
            reader.Take((byte)'D', Row(g));
        Assert.Equal(2, reader.Rows.Count);
        Assert.Equal("rows", reader.TruncatedBy);

        var suspended = new PgResultReader(2, 1000);
        suspended.Take((byte)'D', Row("1"));
        suspended.Take((byte)'s', []);
        Assert.Equal("rows", suspended.TruncatedBy);
    }

    [Fact]
    public void Values_past_the_byte_cap_are_dropped_whole_rows_at_a_time()
    {
        var reader = new PgResultReader(100, 10);
        reader.Take((byte)'T', Description(("v", 25)));
        reader.Take((byte)'D', Row("12345"));
        reader.Take((byte)'D', Row("67890"));
        reader.Take((byte)'D', Row("x")); // 11 bytes: over
        reader.Take((byte)'D', Row(""));  // after truncation nothing more is kept, however small
        Assert.Equal(2, reader.Rows.Count);
        Assert.Equal("bytes", reader.TruncatedBy);
    }

    [Fact]
    public void The_first_error_is_kept_and_notices_are_capped()
    {
        var reader = new PgResultReader(10, 1000);
        var error = Body(w => PgWire.WriteError(w, new PgError("ERROR", "42501", "blocked by rule \"x\"", "detail", "hint")))[5..];
        var later = Body(w => PgWire.WriteError(w, new PgError("ERROR", "25P02", "aborted")))[5..];
        var notice = Body(w => PgWire.WriteError(w, new PgError("NOTICE", "00000", "waiting"), (byte)'N'))[5..];
        reader.Take((byte)'E', error);
        reader.Take((byte)'E', later);
        for (var i = 0; i < 50; i++)
            reader.Take((byte)'N', notice);
        Assert.Equal(("42501", "blocked by rule \"x\"", "detail", "hint"), (reader.Error!.SqlState, reader.Error.Message, reader.Error.Detail, reader.Error.Hint));
        Assert.Equal(20, reader.Notices.Count);
    }

    [Fact]
    public void One_statement_is_sent_as_parse_bind_describe_execute_sync_with_text_values()
    {
        var w = new ArrayBufferWriter<byte>();
        PgWire.WriteExtendedQuery(w, "SELECT $1, $2", ["42", null], 51);
        var messages = new List<(char Type, byte[] Body)>();
        var span = w.WrittenSpan;
        while (span.Length > 0)
        {
            Assert.Equal(FrameStatus.Complete, PgWire.TryReadHeader(span, 1 << 20, out var type, out var length));
            messages.Add(((char)type, span.Slice(5, length - 4).ToArray()));
            span = span[(1 + length)..];
        }
        Assert.Equal("PBDES", string.Concat(messages.Select(m => m.Type)));
        var parse = new PgReader(messages[0].Body);
        Assert.Equal(("", "SELECT $1, $2", 0), (parse.ReadCString(), parse.ReadCString(), parse.ReadCount16()));
        var bind = new PgReader(messages[1].Body);
        Assert.Equal(("", "", 0, 2), (bind.ReadCString(), bind.ReadCString(), bind.ReadCount16(), bind.ReadCount16()));
        Assert.Equal("42", Encoding.UTF8.GetString(bind.ReadValue(out var firstNull)));
        Assert.False(firstNull);
        bind.ReadValue(out var secondNull);
        Assert.True(secondNull);
        Assert.Equal(0, bind.ReadCount16()); // results in text
        Assert.Equal("P\0", Encoding.ASCII.GetString(messages[2].Body));
        var execute = new PgReader(messages[3].Body);
        Assert.Equal(("", 51), (execute.ReadCString(), execute.ReadInt32()));
        Assert.Empty(messages[4].Body);
        Assert.Equal(0, BinaryPrimitives.ReadInt32BigEndian(w.WrittenSpan[^4..]) - 4);
    }
}
