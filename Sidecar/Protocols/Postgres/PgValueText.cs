using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace Airlock.Sidecar.Protocols.Postgres;

/// <summary>
/// Renders a wire value as text for the recording. Text-format values are their UTF-8 text. Binary
/// values (Npgsql asks for binary results) are decoded for the common types, by type OID, into
/// PostgreSQL's own text form; anything else is <c>\x</c> and hex, as PostgreSQL prints bytea.
/// </summary>
public static class PgValueText
{
    public static string Render(ReadOnlySpan<byte> value, short format, int typeOid, int maxChars)
    {
        if (format == 0)
            return CutUtf8(value, maxChars);
        var text = typeOid switch
        {
            16 when value.Length == 1 => value[0] != 0 ? "t" : "f",
            18 or 19 or 25 or 114 or 142 or 705 or 1042 or 1043 => CutUtf8(value, maxChars),
            3802 when value.Length >= 1 && value[0] == 1 => CutUtf8(value[1..], maxChars),
            20 when value.Length == 8 => BinaryPrimitives.ReadInt64BigEndian(value).ToString(CultureInfo.InvariantCulture),
            21 when value.Length == 2 => BinaryPrimitives.ReadInt16BigEndian(value).ToString(CultureInfo.InvariantCulture),
            23 when value.Length == 4 => BinaryPrimitives.ReadInt32BigEndian(value).ToString(CultureInfo.InvariantCulture),
            26 when value.Length == 4 => BinaryPrimitives.ReadUInt32BigEndian(value).ToString(CultureInfo.InvariantCulture),
            700 when value.Length == 4 => BinaryPrimitives.ReadSingleBigEndian(value).ToString("R", CultureInfo.InvariantCulture),
            701 when value.Length == 8 => BinaryPrimitives.ReadDoubleBigEndian(value).ToString("R", CultureInfo.InvariantCulture),
            2950 when value.Length == 16 => new Guid(value, bigEndian: true).ToString(),
            1082 when value.Length == 4 => Date(BinaryPrimitives.ReadInt32BigEndian(value)),
            1114 when value.Length == 8 => Timestamp(BinaryPrimitives.ReadInt64BigEndian(value), ""),
            1184 when value.Length == 8 => Timestamp(BinaryPrimitives.ReadInt64BigEndian(value), "+00"),
            _ => null,
        };
        if (text is not null)
            return Cut(text, maxChars);
        var bytes = value.Length > maxChars / 2 ? value[..(maxChars / 2)] : value;
        var hex = "\\x" + Convert.ToHexStringLower(bytes);
        return bytes.Length < value.Length ? Marked(hex, Count(value.Length, "bytes")) : hex;
    }

    /// <summary>
    /// <paramref name="text"/> when it has at most <paramref name="maxChars"/> characters, else its
    /// first ones followed by <see cref="TruncationMarker"/>, the original length and <c>]</c>: a
    /// recorded value that was cut says so (the recording's field caps; Contracts' RecordingLimits
    /// writes the same mark).
    /// </summary>
    public static string Cut(string text, int maxChars) =>
        text.Length <= maxChars ? text : Marked(text.AsSpan(0, CutPoint(text, maxChars)), Count(text.Length, "characters"));

    public const string TruncationMarker = "…[truncated: ";

    private static string Marked(ReadOnlySpan<char> prefix, string originally) => string.Concat(prefix, TruncationMarker, originally, "]");

    private static string Count(long count, string unit) => count.ToString(CultureInfo.InvariantCulture) + " " + unit;

    // Never split a surrogate pair.
    private static int CutPoint(string text, int maxChars) => maxChars > 0 && char.IsHighSurrogate(text[maxChars - 1]) ? maxChars - 1 : maxChars;

    /// <summary>UTF-8 text cut to <paramref name="maxChars"/>, decoding no more than it could need (a value may be megabytes).</summary>
    private static string CutUtf8(ReadOnlySpan<byte> value, int maxChars)
    {
        if (value.Length <= maxChars)
            return Encoding.UTF8.GetString(value); // at most one character per byte: it fits
        var head = Encoding.UTF8.GetString(value[..(int)Math.Min(value.Length, maxChars * 4L)]);
        if (head.Length <= maxChars && value.Length <= maxChars * 4L)
            return head;
        return Marked(head.AsSpan(0, CutPoint(head, Math.Min(maxChars, head.Length))), Count(value.Length, "bytes"));
    }

    // Binary dates count days, timestamps microseconds, from 2000-01-01 (Julian day 2451545).
    // PostgreSQL's range (4714-11-24 BC to 5874897 AD for dates, 294276 AD for timestamps) is wider
    // than DateTime's, so they are converted as PostgreSQL does (j2date), never through DateTime:
    // a BC date from the target or an agent must be recorded, not end the session.
    private const long PostgresEpochJulianDay = 2451545;
    private const long MicrosecondsPerDay = 86_400_000_000;

    private static string Date(int days) => days switch
    {
        int.MaxValue => "infinity",
        int.MinValue => "-infinity",
        _ => CalendarDate(days) is { } date ? date.Text + date.Era : days.ToString(CultureInfo.InvariantCulture) + " days after 2000-01-01",
    };

    private static string Timestamp(long microseconds, string zone)
    {
        if (microseconds == long.MaxValue)
            return "infinity";
        if (microseconds == long.MinValue)
            return "-infinity";
        var days = Math.DivRem(microseconds, MicrosecondsPerDay, out var time);
        if (time < 0)
            (days, time) = (days - 1, time + MicrosecondsPerDay);
        if (CalendarDate(days) is not { } date)
            return microseconds.ToString(CultureInfo.InvariantCulture) + " µs after 2000-01-01" + zone;
        var seconds = time / 1_000_000;
        var fraction = time % 1_000_000;
        var clock = string.Create(CultureInfo.InvariantCulture, $"{seconds / 3600:D2}:{seconds / 60 % 60:D2}:{seconds % 60:D2}");
        if (fraction != 0)
            clock += "." + fraction.ToString("D6", CultureInfo.InvariantCulture).TrimEnd('0');
        return $"{date.Text} {clock}{zone}{date.Era}";
    }

    /// <summary>Days from 2000-01-01 as PostgreSQL prints the date (ISO, zero-padded year, " BC" apart); null beyond any calendar it prints.</summary>
    private static (string Text, string Era)? CalendarDate(long days)
    {
        var julianDay = days + PostgresEpochJulianDay;
        if (julianDay is < 0 or > int.MaxValue)
            return null;
        var (year, month, day) = FromJulianDay(julianDay);
        var bc = year <= 0; // year 0 is 1 BC
        return (string.Create(CultureInfo.InvariantCulture, $"{(bc ? 1 - year : year):D4}-{month:D2}-{day:D2}"), bc ? " BC" : "");
    }

    /// <summary>PostgreSQL's <c>j2date</c>: a Julian day number to a proleptic Gregorian date.</summary>
    private static (long Year, int Month, int Day) FromJulianDay(long julianDay)
    {
        var julian = julianDay + 32044;
        var quad = julian / 146097;
        var extra = (julian - quad * 146097) * 4 + 3;
        julian += 60 + quad * 3 + extra / 146097;
        quad = julian / 1461;
        julian -= quad * 1461;
        var y = julian * 4 / 1461;
        julian = (y != 0 ? (julian + 305) % 365 : (julian + 306) % 366) + 123;
        y += quad * 4;
        quad = julian * 2141 / 65536;
        return (y - 4800, (int)((quad + 10) % 12 + 1), (int)(julian - 7834 * quad / 256));
    }
}
