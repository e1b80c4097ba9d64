using Airlock.Sidecar.Protocols.Sql;

namespace Airlock.ControlPlane.Approvals;

/// <summary>One run of a statement's text and what it is, for the approval page to colour.</summary>
public readonly record struct HighlightedRun(string Text, string Kind);

/// <summary>
/// Splits SQL text into runs for display, with the gateway's own lexer: keywords, strings, numbers,
/// parameters, comments and the rest. Text that does not lex is shown as it is, in one run.
/// </summary>
public static partial class SqlHighlight
{
    [System.Text.RegularExpressions.GeneratedRegex("[\u202A-\u202E\u2066-\u2069\u200E\u200F\u061C]")]
    private static partial System.Text.RegularExpressions.Regex BidiControls();

    public const string Keyword = "keyword", Literal = "literal", Number = "number", Parameter = "parameter", Comment = "comment", Plain = "plain";

    private static readonly HashSet<string> Keywords = new(StringComparer.OrdinalIgnoreCase)
    {
        "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "INSERT", "INTO", "VALUES", "UPDATE", "SET", "DELETE", "MERGE", "USING",
        "JOIN", "LEFT", "RIGHT", "INNER", "OUTER", "FULL", "CROSS", "ON", "GROUP", "BY", "ORDER", "HAVING", "LIMIT", "OFFSET",
        "RETURNING", "WITH", "AS", "UNION", "ALL", "DISTINCT", "CREATE", "ALTER", "DROP", "TRUNCATE", "TABLE", "INDEX", "VIEW",
        "GRANT", "REVOKE", "TO", "BEGIN", "COMMIT", "ROLLBACK", "COPY", "CASE", "WHEN", "THEN", "ELSE", "END", "NULL", "IS",
        "IN", "EXISTS", "BETWEEN", "LIKE", "ILIKE", "CASCADE", "FUNCTION", "PROCEDURE", "CALL", "DO", "EXECUTE", "PREPARE",
    };

    public static IReadOnlyList<HighlightedRun> Runs(string text)
    {
        // Direction controls would let a statement read differently from what runs: show them as escapes.
        text = BidiControls().Replace(text, m => $"\\u{(int)m.Value[0]:X4}");
        List<SqlToken> tokens;
        try
        {
            tokens = SqlLexer.Tokenize(text, standardConformingStrings: true);
        }
        catch (SqlLexError)
        {
            return [new HighlightedRun(text, Plain)];
        }
        var runs = new List<HighlightedRun>(tokens.Count * 2 + 1);
        var at = 0;
        foreach (var t in tokens)
        {
            if (t.Start > at)
                Gap(runs, text[at..t.Start]);
            var value = text.Substring(t.Start, t.Length);
            runs.Add(new HighlightedRun(value, t.Kind switch
            {
                SqlTokenKind.Word when Keywords.Contains(value) => Keyword,
                SqlTokenKind.String or SqlTokenKind.BitString => Literal,
                SqlTokenKind.Number => Number,
                SqlTokenKind.Parameter => Parameter,
                _ => Plain,
            }));
            at = t.Start + t.Length;
        }
        if (at < text.Length)
            Gap(runs, text[at..]);
        return runs;
    }

    /// <summary>Between tokens: white space, or comments (which the lexer skips).</summary>
    private static void Gap(List<HighlightedRun> runs, string gap) =>
        runs.Add(new HighlightedRun(gap, string.IsNullOrWhiteSpace(gap) ? Plain : Comment));
}
