using System.Text;
using System.Text.RegularExpressions;

namespace Airlock.Sidecar.Protocols.Sql;

/// <summary>
/// Removes password literals from SQL text before it is recorded or logged: the string after
/// <c>PASSWORD</c> (<c>CREATE ROLE … PASSWORD '…'</c>, user mapping and server <c>OPTIONS (password '…')</c>)
/// and the value of <c>password=…</c> inside any string (connection strings given to <c>dblink</c> and
/// friends). Text that cannot be lexed but mentions a password is replaced whole.
/// </summary>
public static partial class SqlRedaction
{
    public const string Redacted = "'[redacted]'";

    public static string Redact(string text, bool standardConformingStrings = true)
    {
        if (text.IndexOf("password", StringComparison.OrdinalIgnoreCase) < 0)
            return text;
        List<SqlToken> tokens;
        try
        {
            tokens = SqlLexer.Tokenize(text, standardConformingStrings);
        }
        catch (SqlLexError)
        {
            return "(statement not recorded: it mentions a password and cannot be read as SQL)";
        }
        var redacted = new StringBuilder(text.Length);
        var at = 0;
        for (var i = 0; i < tokens.Count; i++)
        {
            var t = tokens[i];
            if (t.Kind != SqlTokenKind.String)
                continue;
            string? replacement = null;
            if (i > 0 && SqlTokens.Is(text, tokens[i - 1], "password"))
                replacement = Redacted;
            else if (SqlTokens.StringValue(text, t) is { } value && ConnectionPassword().IsMatch(value))
                replacement = "'" + ConnectionPassword().Replace(value, "password=[redacted]").Replace("'", "''") + "'";
            if (replacement is null)
                continue;
            redacted.Append(text, at, t.Start - at).Append(replacement);
            at = t.End;
        }
        redacted.Append(text, at, text.Length - at);
        return redacted.ToString();
    }

    /// <summary>A parameter value: the value of any <c>password=…</c> in it removed (a connection string bound as a parameter).</summary>
    public static string RedactValue(string value) =>
        value.IndexOf("password", StringComparison.OrdinalIgnoreCase) < 0 ? value : ConnectionPassword().Replace(value, "password=[redacted]");

    /// <summary><c>password=secret</c>, <c>password = 'se cret'</c> in a libpq connection string.</summary>
    [GeneratedRegex(@"password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex ConnectionPassword();
}
