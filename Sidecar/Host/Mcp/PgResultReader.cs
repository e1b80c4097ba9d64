using System.Globalization;
using System.Text;
using System.Text.Json;
using Airlock.Sidecar.Protocols.Postgres;

namespace Airlock.Sidecar.Mcp;

/// <summary>
/// Reads the backend's answer to one extended-protocol query (Parse, Bind, Describe, Execute, Sync) into
/// rows of JSON values, within caps: rows past <c>maxRows</c> are not asked for (Execute's row limit; a
/// PortalSuspended says there were more), values past <c>maxBytes</c> are dropped. Pure: messages in,
/// a result out; the caller reads the stream.
/// </summary>
public sealed class PgResultReader(int maxRows, int maxBytes)
{
    private readonly List<ResultColumn> _columns = [];
    private readonly List<int> _types = [];
    private readonly List<IReadOnlyList<JsonElement>> _rows = [];
    private long _bytes;

    public IReadOnlyList<ResultColumn>? Columns { get; private set; }
    public IReadOnlyList<IReadOnlyList<JsonElement>> Rows => _rows;
    public string? Command { get; private set; }
    public PgError? Error { get; private set; }
    public List<PgError> Notices { get; } = [];
    public string? TruncatedBy { get; private set; }
    public bool Done { get; private set; }

    /// <summary>Bytes of COPY data the target sent (not returned: COPY is not a way to read through MCP).</summary>
    public long CopyBytes { get; private set; }

    /// <summary>Takes one backend message; true once the answer is complete (ReadyForQuery).</summary>
    public bool Take(byte type, ReadOnlySpan<byte> body)
    {
        switch (type)
        {
            case (byte)'T':
                ReadDescription(body);
                break;
            case (byte)'D':
                ReadRow(body);
                break;
            case (byte)'s':
                TruncatedBy ??= "rows";
                break;
            case (byte)'d':
                // COPY TO STDOUT through MCP: the data is not returned; counted, so the caller can stop an endless one.
                CopyBytes += body.Length;
                TruncatedBy ??= "copy";
                break;
            case (byte)'C':
                Command = new PgReader(body).ReadCString();
                break;
            case (byte)'I':
                Command = "";
                break;
            case (byte)'E':
                Error ??= StatementLedger.ReadError(body);
                break;
            case (byte)'N':
                if (Notices.Count < 20)
                    Notices.Add(StatementLedger.ReadError(body));
                break;
            case (byte)'Z':
                Done = true;
                break;
        }
        return Done;
    }

    private void ReadDescription(ReadOnlySpan<byte> body)
    {
        var reader = new PgReader(body);
        var count = reader.ReadCount16();
        _columns.Clear();
        _types.Clear();
        for (var i = 0; i < count; i++)
        {
            var name = reader.ReadCString();
            reader.ReadInt32(); // table oid
            reader.ReadInt16(); // column number
            var type = reader.ReadInt32();
            reader.ReadInt16(); // size
            reader.ReadInt32(); // modifier
            reader.ReadInt16(); // format (text: the Bind asks for no other)
            _columns.Add(new ResultColumn(name, TypeName(type)));
            _types.Add(type);
        }
        Columns = _columns.ToList();
    }

    private void ReadRow(ReadOnlySpan<byte> body)
    {
        if (TruncatedBy is not null)
            return;
        if (_rows.Count >= maxRows)
        {
            TruncatedBy = "rows";
            return;
        }
        // Sizes first: a value past the budget is never decoded (a 16 MB value would otherwise cost several times that).
        var sizing = new PgReader(body);
        var count = sizing.ReadCount16();
        long size = 0;
        for (var i = 0; i < count; i++)
        {
            var value = sizing.ReadValue(out var isNull);
            size += isNull ? 4 : value.Length;
        }
        if (_bytes + size > maxBytes)
        {
            TruncatedBy = "bytes";
            return;
        }
        var reader = new PgReader(body);
        reader.ReadCount16();
        var row = new JsonElement[count];
        for (var i = 0; i < count; i++)
        {
            var value = reader.ReadValue(out var isNull);
            row[i] = isNull ? Null : Value(i < _types.Count ? _types[i] : 25, Encoding.UTF8.GetString(value));
        }
        _bytes += size;
        _rows.Add(row);
    }

    private static readonly JsonElement Null = JsonSerializer.SerializeToElement<object?>(null);

    /// <summary>
    /// A text value as JSON: integers of at most 53 bits and finite floats as numbers, booleans as booleans,
    /// everything else (numeric, int8 beyond 2^53, dates, JSON documents, masked stand-ins) as the text the
    /// target sent, so no value changes on the way. A masked number arrives as text when its mask is not a number.
    /// </summary>
    public static JsonElement Value(int type, string text)
    {
        switch (type)
        {
            case 16 when text is "t" or "f":
                return JsonSerializer.SerializeToElement(text == "t");
            case 20 or 21 or 23 or 26 when long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n) && Math.Abs(n) <= 9007199254740991L:
                return JsonSerializer.SerializeToElement(n);
            case 700 or 701 when double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && double.IsFinite(d):
                return JsonSerializer.SerializeToElement(d);
            default:
                return JsonSerializer.SerializeToElement(text);
        }
    }

    /// <summary>The names of common types; others by their OID.</summary>
    public static string TypeName(int oid) => oid switch
    {
        16 => "boolean",
        17 => "bytea",
        18 => "char",
        19 => "name",
        20 => "bigint",
        21 => "smallint",
        23 => "integer",
        25 => "text",
        26 => "oid",
        114 => "json",
        700 => "real",
        701 => "double precision",
        1042 => "character",
        1043 => "character varying",
        1082 => "date",
        1083 => "time",
        1114 => "timestamp",
        1184 => "timestamptz",
        1186 => "interval",
        1700 => "numeric",
        2950 => "uuid",
        3802 => "jsonb",
        _ => $"oid {oid}",
    };
}
