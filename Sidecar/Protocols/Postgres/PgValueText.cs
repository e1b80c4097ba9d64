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
    private static readonly DateTime PostgresEpoch = new(2000, 1, 1, 0, 0, 0, DateTimeKind.Utc);

    public static string Render(ReadOnlySpan<byte> value, short format, int typeOid, int maxChars)
    {
        if (format == 0)
            return Cut(Utf8(value, maxChars), maxChars);
        var text = typeOid switch
        {
            16 when value.Length == 1 => value[0] != 0 ? "t" : "f",
            18 or 19 or 25 or 114 or 142 or 705 or 1042 or 1043 => Utf8(value, maxChars),
            3802 when value.Length >= 1 && value[0] == 1 => Utf8(value[1..], maxChars),
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
        return "\\x" + Convert.ToHexStringLower(bytes) + (bytes.Length < value.Length ? "…" : "");
    }

    public static string Cut(string text, int maxChars) => text.Length <= maxChars ? text : string.Concat(text.AsSpan(0, maxChars), "…");

    private static string Utf8(ReadOnlySpan<byte> value, int maxChars) =>
        Encoding.UTF8.GetString(value.Length > maxChars * 4L ? value[..(maxChars * 4)] : value);

    private static string Date(int days) => days switch
    {
        int.MaxValue => "infinity",
        int.MinValue => "-infinity",
        _ when Math.Abs((long)days) < 3_000_000 => PostgresEpoch.AddDays(days).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
        _ => days.ToString(CultureInfo.InvariantCulture) + " days after 2000-01-01",
    };

    private static string Timestamp(long microseconds, string zone) => microseconds switch
    {
        long.MaxValue => "infinity",
        long.MinValue => "-infinity",
        _ when microseconds is > -63_000_000_000_000_000 and < 252_000_000_000_000_000 =>
            PostgresEpoch.AddTicks(microseconds * 10).ToString("yyyy-MM-dd HH:mm:ss.ffffff", CultureInfo.InvariantCulture).TrimEnd('0').TrimEnd('.') + zone,
        _ => microseconds.ToString(CultureInfo.InvariantCulture) + " µs after 2000-01-01" + zone,
    };
}
