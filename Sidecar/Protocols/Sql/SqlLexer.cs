namespace Airlock.Sidecar.Protocols.Sql;

public enum SqlTokenKind : byte
{
    /// <summary>An unquoted identifier or keyword; compare with <see cref="SqlTokens.Is"/> (ASCII case-insensitive, as the server folds it).</summary>
    Word,
    /// <summary><c>"…"</c> or <c>U&amp;"…"</c>: never a keyword.</summary>
    QuotedIdentifier,
    /// <summary><c>'…'</c>, <c>E'…'</c>, <c>N'…'</c>, <c>U&amp;'…'</c>, <c>$tag$…$tag$</c>.</summary>
    String,
    /// <summary><c>B'…'</c> and <c>X'…'</c>.</summary>
    BitString,
    Number,
    /// <summary><c>$1</c>.</summary>
    Parameter,
    Operator,
    /// <summary>One of <c>( ) [ ] , ; : .</c>, or <c>::</c>, <c>:=</c>, <c>=&gt;</c>, <c>..</c>.</summary>
    Punctuation,
    /// <summary>A character the server's scanner returns as itself and its grammar refuses.</summary>
    Other,
}

/// <summary>One token: where it is in the text. Values are decoded on demand (<see cref="SqlTokens"/>).</summary>
/// <param name="Escaped">For strings: backslash escapes apply (<c>E''</c>, or a plain string with standard_conforming_strings off).</param>
public readonly record struct SqlToken(SqlTokenKind Kind, int Start, int Length, bool Escaped = false)
{
    public int End => Start + Length;
}

/// <summary>Why the lexer gave up: the server's scanner would refuse the text too (so nothing of it runs).</summary>
public sealed class SqlLexError(string message, int position) : Exception(message)
{
    public int Position { get; } = position;
}

/// <summary>
/// PostgreSQL's scanner (<c>src/backend/parser/scan.l</c>), as far as statement structure depends on it:
/// <list type="bullet">
/// <item>whitespace, <c>--</c> comments and nested <c>/* /* */ */</c> comments separate tokens;</item>
/// <item><c>'…'</c> strings double their quotes; with standard_conforming_strings off they also take
/// backslash escapes, as <c>E'…'</c> always does (<c>\'</c> is then a quote inside the string); a string
/// continues in the same mode after whitespace containing a newline and another quote;</item>
/// <item><c>$tag$…$tag$</c> dollar quotes (a tag does not start with a digit; <c>$1</c> is a parameter, and
/// <c>a$b</c> an identifier, not a quote);</item>
/// <item><c>"…"</c> quoted identifiers (never keywords), <c>U&amp;'…'</c> and <c>U&amp;"…"</c>;</item>
/// <item>an operator ends before a <c>/*</c> or <c>--</c> inside it (the comment wins).</item>
/// </list>
/// Input is text decoded from the client encoding, which the gateway insists is ASCII-safe (UTF8 and
/// the like: no byte of a multibyte character is an ASCII quote or backslash). Linear in the length.
/// </summary>
public static class SqlLexer
{
    /// <summary>Every token of <paramref name="text"/>; throws <see cref="SqlLexError"/> where the server's scanner fails.</summary>
    public static List<SqlToken> Tokenize(string text, bool standardConformingStrings = true)
    {
        var tokens = new List<SqlToken>(Math.Min(text.Length / 3 + 4, 4096));
        var i = 0;
        var n = text.Length;
        while (i < n)
        {
            var c = text[i];
            if (IsSpace(c))
            {
                i++;
                continue;
            }
            if (c == '-' && At(text, i + 1) == '-')
            {
                i = LineCommentEnd(text, i);
                continue;
            }
            if (c == '/' && At(text, i + 1) == '*')
            {
                i = BlockCommentEnd(text, i);
                continue;
            }
            var start = i;
            switch (c)
            {
                case '\'':
                    i = StringEnd(text, i + 1, escaped: !standardConformingStrings);
                    tokens.Add(new SqlToken(SqlTokenKind.String, start, i - start, !standardConformingStrings));
                    continue;
                case '"':
                    i = QuotedIdentifierEnd(text, i + 1);
                    tokens.Add(new SqlToken(SqlTokenKind.QuotedIdentifier, start, i - start));
                    continue;
                case '$':
                    if (IsDigit(At(text, i + 1)))
                    {
                        i++;
                        while (i < n && IsDigit(text[i]))
                            i++;
                        tokens.Add(new SqlToken(SqlTokenKind.Parameter, start, i - start));
                        continue;
                    }
                    if (TryDollarTag(text, i, out var tagLength))
                    {
                        var close = text.AsSpan(i + tagLength).IndexOf(text.AsSpan(i, tagLength), StringComparison.Ordinal);
                        if (close < 0)
                            throw new SqlLexError("unterminated dollar-quoted string", start);
                        i += tagLength + close + tagLength;
                        tokens.Add(new SqlToken(SqlTokenKind.String, start, i - start));
                        continue;
                    }
                    i++;
                    tokens.Add(new SqlToken(SqlTokenKind.Other, start, 1));
                    continue;
                case '(' or ')' or '[' or ']' or ',' or ';':
                    i++;
                    tokens.Add(new SqlToken(SqlTokenKind.Punctuation, start, 1));
                    continue;
                case ':':
                    i += At(text, i + 1) is ':' or '=' ? 2 : 1;
                    tokens.Add(new SqlToken(SqlTokenKind.Punctuation, start, i - start));
                    continue;
                case '.':
                    if (IsDigit(At(text, i + 1)))
                    {
                        i = NumberEnd(text, i);
                        tokens.Add(new SqlToken(SqlTokenKind.Number, start, i - start));
                        continue;
                    }
                    i += At(text, i + 1) == '.' ? 2 : 1;
                    tokens.Add(new SqlToken(SqlTokenKind.Punctuation, start, i - start));
                    continue;
            }
            if (IsDigit(c))
            {
                i = NumberEnd(text, i);
                tokens.Add(new SqlToken(SqlTokenKind.Number, start, i - start));
                continue;
            }
            if (IsIdentStart(c))
            {
                // Prefixed literals: E'…', N'…', B'…', X'…', U&'…', U&"…".
                var next = At(text, i + 1);
                if (next == '\'' && (c is 'e' or 'E'))
                {
                    i = StringEnd(text, i + 2, escaped: true);
                    tokens.Add(new SqlToken(SqlTokenKind.String, start, i - start, Escaped: true));
                    continue;
                }
                if (next == '\'' && (c is 'n' or 'N'))
                {
                    i = StringEnd(text, i + 2, escaped: !standardConformingStrings);
                    tokens.Add(new SqlToken(SqlTokenKind.String, start, i - start, !standardConformingStrings));
                    continue;
                }
                if (next == '\'' && (c is 'b' or 'B' or 'x' or 'X'))
                {
                    i = StringEnd(text, i + 2, escaped: false);
                    tokens.Add(new SqlToken(SqlTokenKind.BitString, start, i - start));
                    continue;
                }
                if ((c is 'u' or 'U') && next == '&' && At(text, i + 2) is '\'' or '"')
                {
                    if (text[i + 2] == '\'')
                    {
                        // U&'' strings are scanned like standard strings (a backslash starts a Unicode escape, never a quote).
                        i = StringEnd(text, i + 3, escaped: false);
                        tokens.Add(new SqlToken(SqlTokenKind.String, start, i - start));
                    }
                    else
                    {
                        i = QuotedIdentifierEnd(text, i + 3);
                        tokens.Add(new SqlToken(SqlTokenKind.QuotedIdentifier, start, i - start));
                    }
                    continue;
                }
                i++;
                while (i < n && IsIdentContinue(text[i]))
                    i++;
                tokens.Add(new SqlToken(SqlTokenKind.Word, start, i - start));
                continue;
            }
            if (IsOperatorChar(c))
            {
                i = OperatorEnd(text, i);
                tokens.Add(new SqlToken(SqlTokenKind.Operator, start, i - start));
                continue;
            }
            i++;
            tokens.Add(new SqlToken(SqlTokenKind.Other, start, 1));
        }
        return tokens;
    }

    private static char At(string text, int i) => i < text.Length ? text[i] : '\0';

    /// <summary>scan.l's <c>space</c>: space, tab, newline, carriage return, form feed, vertical tab.</summary>
    internal static bool IsSpace(char c) => c is ' ' or '\t' or '\n' or '\r' or '\f' or '\v';

    private static bool IsDigit(char c) => c is >= '0' and <= '9';

    /// <summary>scan.l's <c>ident_start</c>: letters, underscore, and every non-ASCII character.</summary>
    internal static bool IsIdentStart(char c) => c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or '_' || c >= '\u0080';

    internal static bool IsIdentContinue(char c) => IsIdentStart(c) || IsDigit(c) || c == '$';

    private static bool IsOperatorChar(char c) => c is '~' or '!' or '@' or '#' or '^' or '&' or '|' or '`' or '?' or '+' or '-' or '*' or '/' or '%' or '<' or '>' or '=';

    private static int LineCommentEnd(string text, int i)
    {
        while (i < text.Length && text[i] is not ('\n' or '\r'))
            i++;
        return i;
    }

    private static int BlockCommentEnd(string text, int start)
    {
        var depth = 0;
        var i = start;
        while (i < text.Length)
        {
            if (text[i] == '/' && At(text, i + 1) == '*')
            {
                depth++;
                i += 2;
            }
            else if (text[i] == '*' && At(text, i + 1) == '/')
            {
                depth--;
                i += 2;
                if (depth == 0)
                    return i;
            }
            else
            {
                i++;
            }
        }
        throw new SqlLexError("unterminated /* comment", start);
    }

    /// <summary>From just after the opening quote to just after the closing one, including continuations.</summary>
    private static int StringEnd(string text, int i, bool escaped)
    {
        var start = i;
        while (true)
        {
            while (i < text.Length)
            {
                var c = text[i];
                if (escaped && c == '\\')
                {
                    i += 2; // a backslash takes the next character with it, whatever it is
                    continue;
                }
                if (c == '\'')
                {
                    if (At(text, i + 1) == '\'')
                    {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i++;
            }
            if (i >= text.Length)
                throw new SqlLexError("unterminated quoted string", start - 1);
            i++; // closing quote
            // quotecontinue: whitespace and "--" comments including a newline, then a quote, continue the
            // same string in the same mode (so "E'a'<newline>'\''" is one string).
            var j = i;
            var newline = false;
            while (j < text.Length)
            {
                if (IsSpace(text[j]))
                {
                    newline |= text[j] is '\n' or '\r';
                    j++;
                }
                else if (text[j] == '-' && At(text, j + 1) == '-')
                {
                    j = LineCommentEnd(text, j);
                }
                else
                {
                    break;
                }
            }
            if (!newline || At(text, j) != '\'')
                return i;
            i = j + 1;
        }
    }

    private static int QuotedIdentifierEnd(string text, int i)
    {
        var start = i;
        while (i < text.Length)
        {
            if (text[i] == '"')
            {
                if (At(text, i + 1) == '"')
                {
                    i += 2;
                    continue;
                }
                if (i == start)
                    throw new SqlLexError("zero-length delimited identifier", start - 1);
                return i + 1;
            }
            i++;
        }
        throw new SqlLexError("unterminated quoted identifier", start - 1);
    }

    /// <summary>
    /// <c>$tag$</c> at <paramref name="i"/>: the tag is empty or an identifier that does not start with a
    /// digit and contains no <c>$</c>. Only where a token starts: inside an identifier <c>$</c> is a letter.
    /// </summary>
    private static bool TryDollarTag(string text, int i, out int length)
    {
        length = 0;
        var j = i + 1;
        if (j < text.Length && IsIdentStart(text[j]))
        {
            j++;
            while (j < text.Length && (IsIdentStart(text[j]) || IsDigit(text[j])))
                j++;
        }
        if (At(text, j) != '$')
            return false;
        length = j + 1 - i;
        return true;
    }

    private static int NumberEnd(string text, int i)
    {
        // Digits (with PostgreSQL 16's underscores and 0x/0o/0b prefixes), one fraction, one exponent.
        // Letters glued on after are scanned by the server as junk or as a following identifier; either
        // way they do not change where statements end.
        while (i < text.Length && (IsDigit(text[i]) || text[i] == '_' || (text[i] is 'x' or 'X' or 'o' or 'O' or 'b' or 'B' && i > 0 && text[i - 1] == '0')))
            i++;
        if (At(text, i) == '.' && At(text, i + 1) != '.')
        {
            i++;
            while (i < text.Length && (IsDigit(text[i]) || text[i] == '_'))
                i++;
        }
        if (At(text, i) is 'e' or 'E' && (IsDigit(At(text, i + 1)) || (At(text, i + 1) is '+' or '-' && IsDigit(At(text, i + 2)))))
        {
            i += 2;
            while (i < text.Length && IsDigit(text[i]))
                i++;
        }
        return i;
    }

    private static int OperatorEnd(string text, int start)
    {
        var i = start;
        while (i < text.Length && IsOperatorChar(text[i]))
        {
            // A comment start inside an operator ends it: "+--x" is "+" and a comment.
            if (i > start && ((text[i] == '*' && text[i - 1] == '/') || (text[i] == '-' && text[i - 1] == '-')))
            {
                i--;
                break;
            }
            i++;
        }
        // As scan.l: a trailing + or - is not part of a multi-character operator unless it contains one of
        // ~!@#^&|`?% ("=-1" is "=" and "-1").
        if (i - start > 1 && text[i - 1] is '+' or '-' && text.AsSpan(start, i - start - 1).IndexOfAny("~!@#^&|`?%") < 0)
        {
            do
                i--;
            while (i - start > 1 && text[i - 1] is '+' or '-');
        }
        return i;
    }
}
