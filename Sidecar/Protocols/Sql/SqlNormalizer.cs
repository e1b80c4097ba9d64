using System.Text;

namespace Airlock.Sidecar.Protocols.Sql;

/// <summary>
/// The normalized form of a statement, what rule patterns match and approvals fingerprint: its tokens
/// separated by single spaces, comments dropped, unquoted words in upper case, everything else as written.
/// So <c>dRoP/**/TABLE  x</c> reads <c>DROP TABLE X</c> and a pattern need not guess spellings.
/// </summary>
public static class SqlNormalizer
{
    public static string Normalize(string text, bool standardConformingStrings = true)
    {
        List<SqlToken> tokens;
        try
        {
            tokens = SqlLexer.Tokenize(text, standardConformingStrings);
        }
        catch (SqlLexError)
        {
            return text.Trim();
        }
        var normalized = new StringBuilder(text.Length);
        foreach (var t in tokens)
        {
            if (normalized.Length > 0)
                normalized.Append(' ');
            if (t.Kind == SqlTokenKind.Word)
                normalized.Append(text.AsSpan(t.Start, t.Length).ToString().ToUpperInvariant());
            else
                normalized.Append(text, t.Start, t.Length);
        }
        return normalized.ToString();
    }
}
