using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace Airlock.Sidecar.Policy.Masking;

/// <summary>How one output column of a result is masked: by provenance (<see cref="Mask"/>), by content (<see cref="Detectors"/>), or both.</summary>
/// <param name="Label">What the recording calls the column (<c>public.customers.email</c>, or the output name for detectors).</param>
public sealed record ColumnPlan(string Label, int TypeOid, short Format, ColumnMask? Mask, IReadOnlyList<DetectorMask>? Detectors = null)
{
    /// <summary>For <c>redact</c> and <c>null</c>: the one value every row gets (null: SQL NULL), made once.</summary>
    internal (bool Known, byte[]? Value) Constant { get; } = Mask?.Strategy switch
    {
        MaskStrategy.Redact => (true, ValueMasker.Redact(TypeOid, Format)),
        MaskStrategy.Null => (true, null),
        _ => (false, null),
    };
}

/// <summary>
/// The masking of one result's rows: one entry per output column, null where the column is forwarded
/// as it came. Counts the values it masked per column (for the recording). Pure; one per result set.
/// </summary>
public sealed class ResultMaskPlan
{
    public ResultMaskPlan(IReadOnlyList<ColumnPlan?> columns, ValueMasker masker)
    {
        Columns = columns;
        _masker = masker;
        Counts = new long[columns.Count];
    }

    /// <summary>Every value NULL: the result's columns are not known (a DataRow no RowDescription announced), so nothing of it can be shown (fail closed).</summary>
    public static ResultMaskPlan Blind(ValueMasker masker) => new([], masker) { _blind = true };

    private readonly ValueMasker _masker;
    private bool _blind;
    // Reused per row (a plan belongs to one session's target→agent loop).
    private (int Start, int Length)[] _values = [];
    private byte[]?[] _replaced = [];
    private bool[] _replace = [];

    public IReadOnlyList<ColumnPlan?> Columns { get; }
    public long[] Counts { get; }
    public long BlindValues { get; private set; }

    /// <summary>Reports the values masked since the last report, per column label, and starts counting again.</summary>
    public void ReportTo(Action<string, long> report)
    {
        if (BlindValues > 0)
        {
            report("(a result no RowDescription announced)", BlindValues);
            BlindValues = 0;
        }
        for (var i = 0; i < Counts.Length; i++)
        {
            if (Counts[i] == 0)
                continue;
            report(Columns[i]!.Label, Counts[i]);
            Counts[i] = 0;
        }
    }

    /// <summary>The largest text a detector scans in one value; longer values are scanned in their first part and masked whole if anything is found there or they are cut.</summary>
    public const int MaxScannedChars = 64 * 1024;

    /// <summary>
    /// Writes the DataRow (<c>D</c>, header included) for <paramref name="body"/> with its masked values
    /// replaced. Throws <see cref="FormatException"/> for a malformed row (the caller ends the session).
    /// </summary>
    public void Rewrite(ReadOnlySpan<byte> body, IBufferWriter<byte> output)
    {
        if (body.Length < 2)
            throw new FormatException("a DataRow without a column count");
        var count = BinaryPrimitives.ReadInt16BigEndian(body);
        if (count < 0 || (!_blind && count != Columns.Count))
            throw new FormatException($"a DataRow with {count} values for a result of {Columns.Count} columns");
        if (_values.Length < count)
            (_values, _replaced, _replace) = (new (int, int)[count], new byte[]?[count], new bool[count]);
        var values = _values;
        var replaced = _replaced;
        var replace = _replace;
        Array.Clear(replace, 0, count);
        var offset = 2;
        for (var i = 0; i < count; i++)
        {
            if (body.Length - offset < 4)
                throw new FormatException("a DataRow value length is cut short");
            var length = BinaryPrimitives.ReadInt32BigEndian(body[offset..]);
            offset += 4;
            if (length < -1 || (length > 0 && body.Length - offset < length))
                throw new FormatException($"a DataRow value of invalid length {length}");
            values[i] = (offset, length);
            if (length > 0)
                offset += length;
        }
        if (offset != body.Length)
            throw new FormatException("a DataRow with bytes after its last value");

        // Masked values first, so the message length is known before anything is written.
        for (var i = 0; i < count; i++)
        {
            var (start, length) = values[i];
            if (length < 0)
                continue;
            if (_blind)
            {
                replace[i] = true;
                BlindValues++;
                continue;
            }
            if (Columns[i] is not { } column)
                continue;
            var value = body.Slice(start, length);
            if (column.Mask is { } mask)
            {
                replaced[i] = column.Constant.Known ? column.Constant.Value : _masker.Mask(mask, column.TypeOid, column.Format, value);
                replace[i] = true;
                Counts[i]++;
            }
            else if (column.Detectors is { } detectors)
            {
                if (!CanScan(column.TypeOid, column.Format))
                {
                    // A binary array, record or other value the gateway cannot read as text: it could hide anything.
                    replace[i] = true;
                    Counts[i]++;
                    continue;
                }
                var prefix = column.TypeOid == ValueMasker.Jsonb && column.Format == 1 ? 1 : 0;
                if (Detect(detectors, value[prefix..]) is not { } changed)
                    continue;
                replaced[i] = prefix == 1 && changed.Value is { } json ? [1, .. json] : changed.Value;
                replace[i] = true;
                Counts[i]++;
            }
        }
        var size = 4 + 2;
        for (var i = 0; i < count; i++)
            size += 4 + (replace[i] ? replaced[i]?.Length ?? 0 : Math.Max(values[i].Length, 0));
        var span = output.GetSpan(1 + size);
        span[0] = (byte)'D';
        BinaryPrimitives.WriteInt32BigEndian(span[1..], size);
        BinaryPrimitives.WriteInt16BigEndian(span[5..], count);
        var at = 7;
        for (var i = 0; i < count; i++)
        {
            if (replace[i])
            {
                var masked = replaced[i];
                BinaryPrimitives.WriteInt32BigEndian(span[at..], masked?.Length ?? -1);
                at += 4;
                if (masked is not null)
                {
                    masked.CopyTo(span[at..]);
                    at += masked.Length;
                }
                continue;
            }
            var (start, length) = values[i];
            BinaryPrimitives.WriteInt32BigEndian(span[at..], length);
            at += 4;
            if (length > 0)
            {
                body.Slice(start, length).CopyTo(span[at..]);
                at += length;
            }
        }
        output.Advance(1 + size);
    }

    /// <summary>The value with every detection masked (a <see cref="StrongBoxed"/> null for SQL NULL); null when nothing was found. The text form is scanned; a value that is not valid UTF-8 is masked whole.</summary>
    private StrongBoxed? Detect(IReadOnlyList<DetectorMask> detectors, ReadOnlySpan<byte> value)
    {
        string text;
        try
        {
            text = Strict.GetString(value.Length > MaxScannedChars ? value[..MaxScannedChars] : value);
        }
        catch (DecoderFallbackException)
        {
            return new StrongBoxed(null); // undecodable text could hide anything
        }
        var cut = value.Length > MaxScannedChars;
        var result = text;
        var any = false;
        foreach (var rule in detectors)
        {
            var found = ContentDetectors.Find(result, rule.Detectors);
            if (found.Count == 0)
                continue;
            any = true;
            if (rule.Strategy == MaskStrategy.Null || cut)
                return new StrongBoxed(null);
            var builder = new StringBuilder(result.Length);
            var from = 0;
            foreach (var d in found)
            {
                builder.Append(result, from, d.Start - from);
                builder.Append(_masker.MaskText(rule.Strategy, rule.KeepLast, result.Substring(d.Start, d.Length), ContentDetectors.NameOf(d.Detector)));
                from = d.Start + d.Length;
            }
            builder.Append(result, from, result.Length - from);
            result = builder.ToString();
        }
        return any ? new StrongBoxed(Encoding.UTF8.GetBytes(result)) : null;
    }

    /// <summary>Text format is text; in binary format, text types and JSON are text too, numbers, dates and the like carry none, anything else cannot be read.</summary>
    private static bool CanScan(int type, short format) =>
        format == 0 || ValueMasker.IsText(type) || type is ValueMasker.Json or ValueMasker.Jsonb || CarriesNoText(type);

    /// <summary>bool, integers, floats, numeric, oid, date and time types, uuid.</summary>
    public static bool CarriesNoText(int type) => type is ValueMasker.Bool or ValueMasker.Int2 or ValueMasker.Int4 or ValueMasker.Int8 or ValueMasker.Float4
        or ValueMasker.Float8 or ValueMasker.Numeric or ValueMasker.Uuid or 26 or 1082 or 1083 or 1114 or 1184 or 1186 or 1266;

    private static readonly UTF8Encoding Strict = new(false, true);

    /// <summary>A masked value, where null itself is a value (SQL NULL).</summary>
    private sealed record StrongBoxed(byte[]? Value);
}
