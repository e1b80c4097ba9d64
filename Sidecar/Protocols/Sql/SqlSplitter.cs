namespace Airlock.Sidecar.Protocols.Sql;

/// <summary>A statement's tokens: <c>[From, To)</c> of the token list, <c>[Start, End)</c> of the text (up to its semicolon).</summary>
public readonly record struct StatementSpan(int From, int To, int Start, int End);

/// <summary>
/// Splits a token list into statements where the server's grammar does: at semicolons outside
/// parentheses (<c>CREATE RULE … DO (a; b)</c> is one statement) and outside <c>BEGIN ATOMIC … END</c>
/// routine bodies (where <c>CASE … END</c> nests, and <c>AS end</c> is a label). Empty statements are
/// left out, as the server does.
/// </summary>
public static class SqlSplitter
{
    public static List<StatementSpan> Split(string text, List<SqlToken> tokens)
    {
        var spans = new List<StatementSpan>();
        var from = 0;
        var depth = 0;
        var atomic = 0; // >0 inside BEGIN ATOMIC … END
        var routine = false; // the statement so far is CREATE [OR REPLACE] FUNCTION|PROCEDURE
        var textStart = 0;
        for (var i = 0; i < tokens.Count; i++)
        {
            var t = tokens[i];
            if (t.Kind == SqlTokenKind.Punctuation && t.Length == 1)
            {
                switch (text[t.Start])
                {
                    case '(':
                        depth++;
                        continue;
                    case ')':
                        depth = Math.Max(0, depth - 1);
                        continue;
                    case ';' when depth == 0 && atomic == 0:
                        if (i > from)
                            spans.Add(new StatementSpan(from, i, textStart, t.Start));
                        from = i + 1;
                        textStart = t.End;
                        routine = false;
                        continue;
                }
                continue;
            }
            if (t.Kind != SqlTokenKind.Word)
                continue;
            if (i == from + 1 || i == from + 3)
            {
                // CREATE FUNCTION …, CREATE OR REPLACE FUNCTION …
                var create = SqlTokens.Is(text, tokens[from], "create");
                routine |= create && (SqlTokens.Is(text, t, "function") || SqlTokens.Is(text, t, "procedure"))
                    && (i == from + 1 || (SqlTokens.Is(text, tokens[from + 1], "or") && SqlTokens.Is(text, tokens[from + 2], "replace")));
            }
            if (!routine)
                continue;
            if (atomic == 0)
            {
                if (SqlTokens.Is(text, t, "begin") && i + 1 < tokens.Count && SqlTokens.Is(text, tokens[i + 1], "atomic"))
                {
                    atomic = 1;
                    i++;
                }
            }
            else if (SqlTokens.Is(text, t, "case"))
            {
                atomic++;
            }
            else if (SqlTokens.Is(text, t, "end") && !(i > from && (SqlTokens.Is(text, tokens[i - 1], "as") || SqlTokens.IsPunctuation(text, tokens[i - 1], '.'))))
            {
                atomic--; // not "AS end" or "x.end": a column label
            }
        }
        if (tokens.Count > from)
            spans.Add(new StatementSpan(from, tokens.Count, textStart, text.Length));
        return spans;
    }
}
