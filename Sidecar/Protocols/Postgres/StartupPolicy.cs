using System.Text;

namespace Airlock.Sidecar.Protocols.Postgres;

/// <summary>
/// Decides what of an agent's startup packet reaches the target. Every startup parameter other
/// than <c>user</c>/<c>database</c> is a server setting (GUC) — <c>role</c> or
/// <c>session_authorization</c> would change who the session runs as — so settings pass only when
/// they are on <see cref="AllowedSettings"/>, whether given as parameters or in <c>options</c>
/// (<c>-c name=value</c> / <c>--name=value</c>); anything else is refused by name, never dropped
/// silently. <c>replication</c> is refused: a walsender can stream the whole cluster.
/// </summary>
public static class StartupPolicy
{
    /// <summary>Session settings an agent may choose; compared case-insensitively, as PostgreSQL does.</summary>
    public static IReadOnlySet<string> AllowedSettings { get; } = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
    {
        "application_name", "search_path", "DateStyle", "TimeZone", "client_encoding", "IntervalStyle",
        "extra_float_digits", "statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout",
        "default_transaction_isolation", "default_transaction_read_only", "client_min_messages",
        "bytea_output", "standard_conforming_strings", "lc_monetary", "lc_numeric", "lc_time", "jit",
    };

    /// <summary>The settings to send upstream, or the FATAL that refuses the connection.</summary>
    public sealed record Decision(IReadOnlyList<KeyValuePair<string, string>> Settings, IReadOnlyList<string> IgnoredProtocolOptions, PgError? Refusal);

    public static Decision Decide(StartupRequest startup, string targetDatabase)
    {
        var settings = new List<KeyValuePair<string, string>>();
        var ignored = new List<string>();
        foreach (var (name, value) in startup.Parameters)
        {
            switch (name)
            {
                case "user":
                    continue;
                case "database":
                    if (value.Length > 0 && value != targetDatabase)
                        return Refuse(SqlStates.InvalidCatalogName, $"database \"{value}\" is not served here: this target is database \"{targetDatabase}\"",
                            $"connect with dbname={targetDatabase}, or leave the database out");
                    continue;
                case "replication":
                    if (value is "false" or "off" or "no" or "0")
                        continue;
                    return Refuse(SqlStates.InsufficientPrivilege, "replication connections are not allowed through Airlock");
                case "options":
                    if (ParseOptions(value, settings) is { } bad)
                        return Refuse(SqlStates.InsufficientPrivilege, bad);
                    continue;
            }
            if (name.StartsWith("_pq_.", StringComparison.Ordinal))
            {
                ignored.Add(name);
                continue;
            }
            if (!AllowedSettings.Contains(name))
                return Refuse(SqlStates.InsufficientPrivilege, $"startup parameter \"{name}\" is not allowed through Airlock",
                    $"allowed settings: {string.Join(", ", AllowedSettings.Order(StringComparer.OrdinalIgnoreCase))}");
            settings.Add(new(name, value));
        }
        return new Decision(settings, ignored, null);

        Decision Refuse(string state, string message, string? hint = null) => new([], [], PgError.Fatal(state, message, hint));
    }

    /// <summary>
    /// Splits <c>options</c> the way PostgreSQL does (whitespace separates, backslash escapes the next
    /// character) and accepts only <c>-c name=value</c>, <c>-cname=value</c> and <c>--name=value</c>
    /// for allowed settings. Returns the refusal message, or null with the settings added.
    /// </summary>
    public static string? ParseOptions(string options, List<KeyValuePair<string, string>> settings)
    {
        var words = SplitOptions(options);
        for (var i = 0; i < words.Count; i++)
        {
            string assignment;
            if (words[i] == "-c")
            {
                if (i + 1 >= words.Count)
                    return "options: -c without a setting";
                assignment = words[++i];
            }
            else if (words[i].StartsWith("-c", StringComparison.Ordinal))
            {
                assignment = words[i][2..];
            }
            else if (words[i].StartsWith("--", StringComparison.Ordinal))
            {
                assignment = words[i][2..];
            }
            else
            {
                return $"options: \"{words[i]}\" is not allowed through Airlock (only -c name=value for allowed settings)";
            }
            var equals = assignment.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
                return $"options: \"{assignment}\" is not name=value";
            var name = assignment[..equals].Replace('-', '_');
            if (!AllowedSettings.Contains(name))
                return $"options: setting \"{name}\" is not allowed through Airlock";
            settings.Add(new(name, assignment[(equals + 1)..]));
        }
        return null;
    }

    private static List<string> SplitOptions(string options)
    {
        var words = new List<string>();
        var current = new StringBuilder();
        var inWord = false;
        for (var i = 0; i < options.Length; i++)
        {
            var c = options[i];
            if (char.IsWhiteSpace(c))
            {
                if (inWord)
                    words.Add(current.ToString());
                current.Clear();
                inWord = false;
                continue;
            }
            if (c == '\\' && i + 1 < options.Length)
                c = options[++i];
            current.Append(c);
            inWord = true;
        }
        if (inWord)
            words.Add(current.ToString());
        return words;
    }
}
