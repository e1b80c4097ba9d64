using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using Airlock.Sidecar.Protocols.Sql;

namespace Airlock.Sidecar.Policy.Masking;

/// <summary>
/// Masks the rows of a <c>COPY table TO STDOUT</c> in PostgreSQL's text or CSV format as they stream:
/// CopyData payloads are split into rows whatever their boundaries (a row may span several messages),
/// masked columns are unescaped, masked and escaped again, and complete rows leave at once. Memory is
/// bounded by the longest row (<see cref="MaxRowBytes"/>). Pure; one per COPY.
/// </summary>
public sealed class CopyMasker
{
    public const int MaxRowBytes = 64 * 1024 * 1024;

    private readonly CopyOut _options;
    private readonly IReadOnlyList<(ColumnMask? Mask, int Type, string Name)> _columns;
    private readonly ValueMasker _masker;
    private readonly ArrayBufferWriter<byte> _pending = new();
    private readonly ArrayBufferWriter<byte> _rows = new();
    private readonly byte[] _null;
    private bool _headerPending;

    public CopyMasker(CopyOut options, IReadOnlyList<(ColumnMask? Mask, int Type, string Name)> columns, ValueMasker masker)
    {
        if (options.Delimiter > 127 || options.Quote > 127 || options.Escape > 127)
            throw new ArgumentException("only ASCII delimiters, quotes and escapes are masked");
        _options = options;
        _columns = columns;
        _masker = masker;
        _headerPending = options.Header;
        _null = Encoding.UTF8.GetBytes(options.Null);
        Counts = new long[columns.Count];
    }

    /// <summary>Values masked per column.</summary>
    public long[] Counts { get; }

    /// <summary>Reports the values masked since the last report, per column, and starts counting again.</summary>
    public void ReportTo(Action<string, long> report)
    {
        for (var i = 0; i < Counts.Length; i++)
        {
            if (Counts[i] == 0)
                continue;
            report(_columns[i].Name, Counts[i]);
            Counts[i] = 0;
        }
    }

    /// <summary>One CopyData payload: writes a CopyData message (header included) with every row it completes, masked. Throws <see cref="FormatException"/> for a row over the limit or of the wrong width.</summary>
    public void Feed(ReadOnlySpan<byte> data, IBufferWriter<byte> output)
    {
        // The server sends one whole row per CopyData: then the row is read where it lies.
        var direct = _pending.WrittenCount == 0;
        if (!direct)
            _pending.Write(data);
        var all = direct ? data : _pending.WrittenSpan;
        var rows = _rows;
        rows.ResetWrittenCount();
        var start = 0;
        while (start < all.Length && RowEnd(all, start) is var end and >= 0)
        {
            var row = all.Slice(start, end); // without its newline
            if (_headerPending)
            {
                rows.Write(row);
                _headerPending = false;
            }
            else
                MaskRow(row, rows);
            rows.Write("\n"u8);
            start += end + 1;
            (_scanned, _quoted) = (0, false); // a new row starts
        }
        if (direct)
            _pending.Write(all[start..]);
        else if (start > 0)
        {
            var rest = all[start..].ToArray();
            _pending.ResetWrittenCount();
            _pending.Write(rest);
        }
        if (_pending.WrittenCount > MaxRowBytes)
            throw new FormatException($"a COPY row longer than {MaxRowBytes} bytes");
        if (rows.WrittenCount > 0)
            WriteCopyData(rows.WrittenSpan, output);
    }

    /// <summary>At CopyDone: a last row without its newline (the server always ends rows, but a row is never let through unmasked).</summary>
    public void Finish(IBufferWriter<byte> output)
    {
        if (_pending.WrittenCount == 0)
            return;
        var rows = new ArrayBufferWriter<byte>();
        if (_headerPending)
            rows.Write(_pending.WrittenSpan);
        else
            MaskRow(_pending.WrittenSpan, rows);
        _pending.ResetWrittenCount();
        WriteCopyData(rows.WrittenSpan, output);
    }

    private static void WriteCopyData(ReadOnlySpan<byte> payload, IBufferWriter<byte> output)
    {
        var span = output.GetSpan(5 + payload.Length);
        span[0] = (byte)'d';
        BinaryPrimitives.WriteInt32BigEndian(span[1..], 4 + payload.Length);
        payload.CopyTo(span[5..]);
        output.Advance(5 + payload.Length);
    }

    // How far the incomplete row in _pending has been searched already, and whether that point is inside
    // quotes: a row arriving a byte at a time is searched once, not once per byte.
    private int _scanned;
    private bool _quoted;

    /// <summary>The length of the row starting at <paramref name="start"/> (up to its newline), or -1 when it is not complete yet (CSV: newlines inside quotes are data).</summary>
    private int RowEnd(ReadOnlySpan<byte> all, int start)
    {
        var data = all[start..];
        var from = start == 0 ? Math.Min(_scanned, data.Length) : 0;
        var quoted = start == 0 && _quoted;
        int end;
        if (!_options.Csv)
        {
            end = data[from..].IndexOf((byte)'\n');
            end = end < 0 ? -1 : from + end;
        }
        else
            end = CsvRowEnd(data, from, ref quoted);
        if (end < 0)
        {
            // What is left becomes _pending, searched this far (an escape character at the very end is read
            // again with the byte it escapes).
            var rescan = _options.Csv && quoted && data.Length > 0 && data[^1] == _options.Escape && _options.Escape != _options.Quote;
            (_scanned, _quoted) = (rescan ? data.Length - 1 : data.Length, quoted);
        }
        return end;
    }

    private int CsvRowEnd(ReadOnlySpan<byte> data, int from, ref bool quoted)
    {
        for (var i = from; i < data.Length; i++)
        {
            var b = data[i];
            if (quoted)
            {
                if (b == _options.Escape && _options.Escape != _options.Quote && i + 1 < data.Length && (data[i + 1] == _options.Quote || data[i + 1] == _options.Escape))
                    i++;
                else if (b == _options.Quote)
                    quoted = false; // a doubled quote re-opens at once
            }
            else if (b == _options.Quote)
                quoted = true;
            else if (b == '\n')
                return i;
        }
        return -1;
    }

    /// <summary>One row: the bytes between masked fields are copied as they are, in one piece each.</summary>
    private void MaskRow(ReadOnlySpan<byte> row, ArrayBufferWriter<byte> output)
    {
        var column = 0;
        var start = 0;
        var copiedUpTo = 0;
        while (true)
        {
            var end = FieldEnd(row, start);
            if (column >= _columns.Count)
                throw new FormatException($"a COPY row with more than {_columns.Count} columns");
            var (mask, type, _) = _columns[column];
            if (mask is not null && Decode(row[start..end]) is { } value)
            {
                output.Write(row[copiedUpTo..start]);
                Counts[column]++;
                Encode(_masker.Mask(mask, type, 0, value), output);
                copiedUpTo = end; // NULL stays NULL: it is copied with what follows
            }
            column++;
            if (end >= row.Length)
                break;
            start = end + 1;
        }
        output.Write(row[copiedUpTo..]);
        if (column != _columns.Count)
            throw new FormatException($"a COPY row with {column} columns instead of {_columns.Count}");
    }

    private int FieldEnd(ReadOnlySpan<byte> row, int start)
    {
        if (!_options.Csv)
        {
            // Text: a backslash escapes the next character (the delimiter included).
            var i = start;
            while (true)
            {
                var next = row[i..].IndexOfAny((byte)_options.Delimiter, (byte)'\\');
                if (next < 0)
                    return row.Length;
                i += next;
                if (row[i] != '\\')
                    return i;
                i += 2;
                if (i >= row.Length)
                    return row.Length;
            }
        }
        var quoted = false;
        for (var i = start; i < row.Length; i++)
        {
            var b = row[i];
            if (quoted)
            {
                if (b == _options.Escape && _options.Escape != _options.Quote && i + 1 < row.Length && (row[i + 1] == _options.Quote || row[i + 1] == _options.Escape))
                    i++;
                else if (b == _options.Quote)
                    quoted = false;
                continue;
            }
            if (b == _options.Quote)
            {
                quoted = true;
                continue;
            }
            if (b == _options.Delimiter)
                return i;
        }
        return row.Length;
    }

    /// <summary>A field's value, or null for NULL.</summary>
    private byte[]? Decode(ReadOnlySpan<byte> field)
    {
        var nullText = _null;
        if (_options.Csv)
        {
            if (field.SequenceEqual(nullText))
                return null;
            if (field.Length == 0 || field[0] != _options.Quote)
                return field.ToArray();
            var value = new List<byte>(field.Length);
            for (var i = 1; i < field.Length; i++)
            {
                var b = field[i];
                if (b == _options.Escape && i + 1 < field.Length && (field[i + 1] == _options.Quote || field[i + 1] == _options.Escape))
                {
                    value.Add(field[i + 1]);
                    i++;
                }
                else if (b == _options.Quote)
                    continue; // the closing quote (and the opening of a following quoted part)
                else
                    value.Add(b);
            }
            return [.. value];
        }
        if (field.SequenceEqual(nullText))
            return null;
        var text = new List<byte>(field.Length);
        for (var i = 0; i < field.Length; i++)
        {
            var b = field[i];
            if (b != '\\' || i + 1 >= field.Length)
            {
                text.Add(b);
                continue;
            }
            var c = field[++i];
            switch (c)
            {
                case (byte)'b': text.Add(8); break;
                case (byte)'f': text.Add(12); break;
                case (byte)'n': text.Add(10); break;
                case (byte)'r': text.Add(13); break;
                case (byte)'t': text.Add(9); break;
                case (byte)'v': text.Add(11); break;
                case >= (byte)'0' and <= (byte)'7':
                {
                    var v = c - '0';
                    for (var k = 0; k < 2 && i + 1 < field.Length && field[i + 1] is >= (byte)'0' and <= (byte)'7'; k++)
                        v = v * 8 + (field[++i] - '0');
                    text.Add((byte)v);
                    break;
                }
                case (byte)'x' when i + 1 < field.Length && IsHex(field[i + 1]):
                {
                    var v = Hex(field[++i]);
                    if (i + 1 < field.Length && IsHex(field[i + 1]))
                        v = v * 16 + Hex(field[++i]);
                    text.Add((byte)v);
                    break;
                }
                default: text.Add(c); break;
            }
        }
        return [.. text];
    }

    private static bool IsHex(byte b) => b is >= (byte)'0' and <= (byte)'9' or >= (byte)'a' and <= (byte)'f' or >= (byte)'A' and <= (byte)'F';

    private static int Hex(byte b) => b <= '9' ? b - '0' : (b | 0x20) - 'a' + 10;

    private void Encode(byte[]? value, ArrayBufferWriter<byte> output)
    {
        if (value is null)
        {
            output.Write(_null);
            return;
        }
        if (_options.Csv)
        {
            output.Write([(byte)_options.Quote]);
            foreach (var b in value)
            {
                if (b == _options.Quote || b == _options.Escape)
                    output.Write([(byte)_options.Escape]);
                output.Write([b]);
            }
            output.Write([(byte)_options.Quote]);
            return;
        }
        foreach (var b in value)
        {
            switch (b)
            {
                case (byte)'\\': output.Write("\\\\"u8); break;
                case (byte)'\n': output.Write("\\n"u8); break;
                case (byte)'\r': output.Write("\\r"u8); break;
                case (byte)'\t': output.Write("\\t"u8); break;
                default:
                    if (b == _options.Delimiter)
                        output.Write([(byte)'\\', b]);
                    else
                        output.Write([b]);
                    break;
            }
        }
    }
}
