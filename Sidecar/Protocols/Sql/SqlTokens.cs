using System.Globalization;
using System.Text;

namespace Airlock.Sidecar.Protocols.Sql;

/// <summary>Reading tokens back: keyword tests without allocating, and decoded names and string values.</summary>
public static class SqlTokens
{
    /// <summary>An unquoted word equal to <paramref name="keyword"/> (lower case, ASCII), as the server folds it.</summary>
    public static bool Is(string text, SqlToken token, string keyword) =>
        token.Kind == SqlTokenKind.Word && token.Length == keyword.Length
        && text.AsSpan(token.Start, token.Length).Equals(keyword, StringComparison.OrdinalIgnoreCase);

    public static bool IsPunctuation(string text, SqlToken token, char c) =>
        token.Kind == SqlTokenKind.Punctuation && token.Length == 1 && text[token.Start] == c;

    /// <summary>
    /// An identifier as the server names it: a word folded to lower case (ASCII only, like
    /// <c>downcase_identifier</c>), a quoted identifier with its quotes undone (and <c>U&amp;</c> escapes
    /// decoded); null for other tokens.
    /// </summary>
    public static string? Name(string text, SqlToken token, char unicodeEscape = '\\')
    {
        switch (token.Kind)
        {
            case SqlTokenKind.Word:
                return text.Substring(token.Start, token.Length).ToLowerInvariant();
            case SqlTokenKind.QuotedIdentifier:
            {
                var unicode = text[token.Start] is 'u' or 'U';
                var body = text.Substring(token.Start + (unicode ? 3 : 1), token.Length - (unicode ? 4 : 2)).Replace("\"\"", "\"");
                return unicode ? DecodeUnicodeEscapes(body, unicodeEscape) : body;
            }
            default:
                return null;
        }
    }

    /// <summary>The value of a string token (quotes, doubled quotes, backslash and Unicode escapes undone); null for other tokens or undecodable escapes.</summary>
    public static string? StringValue(string text, SqlToken token, char unicodeEscape = '\\')
    {
        if (token.Kind != SqlTokenKind.String)
            return null;
        var raw = text.AsSpan(token.Start, token.Length);
        if (raw[0] == '$')
        {
            var tag = raw[1..].IndexOf('$') + 2;
            return raw[tag..^tag].ToString();
        }
        var unicode = raw[0] is 'u' or 'U' && raw.Length > 1 && raw[1] == '&';
        var prefix = unicode ? 3 : raw[0] == '\'' ? 1 : 2;
        // Continuations ('a'<newline>'b') are parts joined.
        var value = new StringBuilder();
        var i = prefix;
        while (i < raw.Length)
        {
            var c = raw[i];
            if (token.Escaped && c == '\\' && i + 1 < raw.Length)
            {
                i = Unescape(raw, i, value);
                continue;
            }
            if (c == '\'')
            {
                if (i + 1 < raw.Length && raw[i + 1] == '\'')
                {
                    value.Append('\'');
                    i += 2;
                    continue;
                }
                // End of a part: skip whitespace and "--" comments to the continuation's quote, if any.
                i++;
                while (i < raw.Length && raw[i] != '\'')
                {
                    if (raw[i] == '-' && i + 1 < raw.Length && raw[i + 1] == '-')
                        while (i < raw.Length && raw[i] is not ('\n' or '\r'))
                            i++;
                    else
                        i++;
                }
                i++;
                continue;
            }
            value.Append(c);
            i++;
        }
        return unicode ? DecodeUnicodeEscapes(value.ToString(), unicodeEscape) : value.ToString();
    }

    private static int Unescape(ReadOnlySpan<char> raw, int i, StringBuilder value)
    {
        var next = raw[i + 1];
        switch (next)
        {
            case 'b': value.Append('\b'); return i + 2;
            case 'f': value.Append('\f'); return i + 2;
            case 'n': value.Append('\n'); return i + 2;
            case 'r': value.Append('\r'); return i + 2;
            case 't': value.Append('\t'); return i + 2;
            case >= '0' and <= '7':
            {
                var j = i + 1;
                var code = 0;
                while (j < raw.Length && j < i + 4 && raw[j] is >= '0' and <= '7')
                    code = code * 8 + (raw[j++] - '0');
                value.Append((char)(code & 0xFF));
                return j;
            }
            case 'x' when i + 2 < raw.Length && Uri.IsHexDigit(raw[i + 2]):
            {
                var j = i + 2;
                var code = 0;
                while (j < raw.Length && j < i + 4 && Uri.IsHexDigit(raw[j]))
                    code = code * 16 + Convert.ToInt32(raw[j++].ToString(), 16);
                value.Append((char)code);
                return j;
            }
            case 'u' or 'U':
            {
                var digits = next == 'u' ? 4 : 8;
                if (i + 2 + digits <= raw.Length && int.TryParse(raw.Slice(i + 2, digits), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var cp) && cp is >= 0 and <= 0x10FFFF && cp is not (>= 0xD800 and <= 0xDFFF))
                {
                    value.Append(char.ConvertFromUtf32(cp));
                    return i + 2 + digits;
                }
                value.Append(next);
                return i + 2;
            }
            default:
                value.Append(next);
                return i + 2;
        }
    }

    /// <summary><c>U&amp;</c> escapes: <c>\XXXX</c>, <c>\+XXXXXX</c>, <c>\\</c>. Null when malformed (the server refuses those).</summary>
    private static string? DecodeUnicodeEscapes(string body, char escape)
    {
        if (!body.Contains(escape))
            return body;
        var value = new StringBuilder(body.Length);
        for (var i = 0; i < body.Length; i++)
        {
            if (body[i] != escape)
            {
                value.Append(body[i]);
                continue;
            }
            if (i + 1 < body.Length && body[i + 1] == escape)
            {
                value.Append(escape);
                i++;
                continue;
            }
            var plus = i + 1 < body.Length && body[i + 1] == '+';
            var digits = plus ? 6 : 4;
            var at = i + (plus ? 2 : 1);
            if (at + digits > body.Length || !int.TryParse(body.AsSpan(at, digits), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var cp) || cp > 0x10FFFF || cp is >= 0xD800 and <= 0xDFFF)
                return null;
            value.Append(char.ConvertFromUtf32(cp));
            i = at + digits - 1;
        }
        return value.ToString();
    }
}
