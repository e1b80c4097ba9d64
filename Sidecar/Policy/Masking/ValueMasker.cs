using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Airlock.Sidecar.Policy.Masking;

/// <summary>
/// Masks one value as PostgreSQL sends it (text or binary format) so the result is still a valid value
/// of the column's type — or NULL, where no valid stand-in exists (dates, arrays, types the gateway does
/// not know). Pure; the hash key is the target's.
/// </summary>
public sealed class ValueMasker
{
    private readonly byte[]? _columnKey, _detectorKey;

    /// <param name="hashKey">The target's key; columns and detectors hash with keys derived from it for each purpose, so a value an agent chooses (a detector sees any text it selects) never hashes like a column's.</param>
    public ValueMasker(byte[]? hashKey)
    {
        if (hashKey is null)
            return;
        _columnKey = HMACSHA256.HashData(hashKey, "airlock-mask-column"u8);
        _detectorKey = HMACSHA256.HashData(hashKey, "airlock-mask-detector"u8);
    }

    // Type OIDs (pg_type.dat): the types the gateway writes stand-ins for.
    public const int Bool = 16, Bytea = 17, Name = 19, Int8 = 20, Int2 = 21, Int4 = 23, Text = 25, Json = 114, Float4 = 700, Float8 = 701,
        Unknown = 705, Bpchar = 1042, Varchar = 1043, Numeric = 1700, Uuid = 2950, Jsonb = 3802;

    public const string Placeholder = "****";

    public static bool IsText(int type) => type is Text or Varchar or Bpchar or Name or Unknown;

    /// <summary>The masked value (null: SQL NULL) of <paramref name="value"/>, a non-null value of type <paramref name="type"/> in <paramref name="format"/> (0 text, 1 binary).</summary>
    public byte[]? Mask(ColumnMask mask, int type, short format, ReadOnlySpan<byte> value) => mask.Strategy switch
    {
        MaskStrategy.Null => null,
        MaskStrategy.Redact => Redact(type, format),
        MaskStrategy.Partial => IsText(type) ? Encoding.UTF8.GetBytes(Partial(Encoding.UTF8.GetString(value), mask.KeepLast)) : Redact(type, format),
        MaskStrategy.Hash => Hash(type, format, value),
        _ => null,
    };

    /// <summary>A placeholder of the type, or null (SQL NULL).</summary>
    public static byte[]? Redact(int type, short format)
    {
        if (IsText(type))
            return "****"u8.ToArray();
        if (format == 0)
        {
            return type switch
            {
                Int2 or Int4 or Int8 or Numeric or Float4 or Float8 => "0"u8.ToArray(),
                Bool => "f"u8.ToArray(),
                Uuid => "00000000-0000-0000-0000-000000000000"u8.ToArray(),
                Json or Jsonb => "\"****\""u8.ToArray(),
                Bytea => "\\x"u8.ToArray(),
                _ => null,
            };
        }
        return type switch
        {
            Int2 => new byte[2],
            Int4 or Float4 => new byte[4],
            Int8 or Float8 or Numeric => new byte[8], // numeric: no digits, weight 0, positive, scale 0
            Bool => new byte[1],
            Uuid => new byte[16],
            Json => "\"****\""u8.ToArray(),
            Jsonb => "\u0001\"****\""u8.ToArray(),
            Bytea => [],
            _ => null,
        };
    }

    /// <summary>Keeps the last <paramref name="keepLast"/> characters; an email keeps its domain; digits of a card-like number are hidden with their separators kept.</summary>
    public static string Partial(string value, int keepLast)
    {
        var at = value.LastIndexOf('@');
        if (at > 0 && at < value.Length - 1 && !value.AsSpan(0, at).ContainsAny(" \t\r\n"))
            return new string('*', at) + value[at..];
        var digits = value.Count(char.IsAsciiDigit);
        if (digits >= 12 && value.All(c => char.IsAsciiDigit(c) || c is ' ' or '-'))
        {
            var chars = value.ToCharArray();
            var seen = 0;
            for (var i = 0; i < chars.Length; i++)
                if (char.IsAsciiDigit(chars[i]) && ++seen <= digits - keepLast)
                    chars[i] = '*';
            return new string(chars);
        }
        var elements = StringInfo.ParseCombiningCharacters(value);
        if (elements.Length <= keepLast)
            return new string('*', elements.Length);
        var keepFrom = elements[elements.Length - keepLast];
        return new string('*', elements.Length - keepLast) + value[keepFrom..];
    }

    private byte[]? Hash(int type, short format, ReadOnlySpan<byte> value)
    {
        if (_columnKey is null)
            return null; // no key from the control plane: nothing to hash with, so nothing is shown
        // The text form is hashed, whatever the format on the wire: equal values give equal masks in
        // text and binary results alike.
        var canonical = Canonical(type, format, value);
        if (canonical is null)
            return null;
        var mac = HMACSHA256.HashData(_columnKey, canonical);
        if (IsText(type) || type is Json or Jsonb)
        {
            var hex = "h_" + Convert.ToHexStringLower(mac, 0, 12);
            var bytes = Encoding.ASCII.GetBytes(type is Json or Jsonb ? $"\"{hex}\"" : hex);
            return type == Jsonb && format == 1 ? [1, .. bytes] : bytes;
        }
        switch (type)
        {
            case Int2:
            {
                var v = BinaryPrimitives.ReadInt16BigEndian(mac);
                return format == 1 ? mac[..2] : Encoding.ASCII.GetBytes(v.ToString(CultureInfo.InvariantCulture));
            }
            case Int4:
            {
                var v = BinaryPrimitives.ReadInt32BigEndian(mac);
                return format == 1 ? mac[..4] : Encoding.ASCII.GetBytes(v.ToString(CultureInfo.InvariantCulture));
            }
            case Int8:
            {
                var v = BinaryPrimitives.ReadInt64BigEndian(mac);
                return format == 1 ? mac[..8] : Encoding.ASCII.GetBytes(v.ToString(CultureInfo.InvariantCulture));
            }
            case Uuid:
                return format == 1 ? mac[..16] : Encoding.ASCII.GetBytes(new Guid(mac.AsSpan(0, 16), bigEndian: true).ToString());
            default:
                return null;
        }
    }

    /// <summary>The value as text, for hashing; null for binary values of types the gateway does not decode.</summary>
    private static byte[]? Canonical(int type, short format, ReadOnlySpan<byte> value)
    {
        if (format == 0 || IsText(type) || type == Json)
            return value.ToArray();
        return type switch
        {
            Jsonb when value.Length > 0 => value[1..].ToArray(),
            Int2 when value.Length == 2 => Encoding.ASCII.GetBytes(BinaryPrimitives.ReadInt16BigEndian(value).ToString(CultureInfo.InvariantCulture)),
            Int4 when value.Length == 4 => Encoding.ASCII.GetBytes(BinaryPrimitives.ReadInt32BigEndian(value).ToString(CultureInfo.InvariantCulture)),
            Int8 when value.Length == 8 => Encoding.ASCII.GetBytes(BinaryPrimitives.ReadInt64BigEndian(value).ToString(CultureInfo.InvariantCulture)),
            Uuid when value.Length == 16 => Encoding.ASCII.GetBytes(new Guid(value, bigEndian: true).ToString()),
            _ => null,
        };
    }

    /// <summary>A found piece of text (by a content detector) masked with the rule's strategy: a placeholder naming the detector, a partial or a hash.</summary>
    public string MaskText(MaskStrategy strategy, int keepLast, string found, string detector) => strategy switch
    {
        MaskStrategy.Partial => Partial(found, keepLast),
        MaskStrategy.Hash when _detectorKey is not null => "d_" + Convert.ToHexStringLower(HMACSHA256.HashData(_detectorKey, Encoding.UTF8.GetBytes(found)), 0, 12),
        _ => $"[{detector}]",
    };
}
