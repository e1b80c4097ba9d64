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
    /// <summary>
    /// Session settings an agent may choose; compared case-insensitively, as PostgreSQL does. These
    /// are what libpq, Npgsql, pgjdbc and node-postgres send (client_encoding, DateStyle, TimeZone,
    /// extra_float_digits, application_name, search_path, timeouts) and other user-level settings that
    /// only change formatting, messages or timeouts. Left out on purpose: who the session runs as
    /// (<c>role</c>, <c>session_authorization</c>), what it may do (<c>session_replication_role</c>,
    /// <c>row_security</c>, <c>transaction_read_only</c>), what it loads or runs
    /// (<c>*_preload_libraries</c>, <c>local_preload_libraries</c>) and resource settings.
    /// </summary>
    public static IReadOnlySet<string> AllowedSettings { get; } = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
    {
        "application_name", "search_path", "DateStyle", "TimeZone", "client_encoding", "IntervalStyle",
        "extra_float_digits", "statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout",
        "idle_session_timeout", "transaction_timeout",
        "default_transaction_isolation", "default_transaction_read_only", "default_transaction_deferrable", "client_min_messages",
        "bytea_output", "standard_conforming_strings", "lc_messages", "lc_monetary", "lc_numeric", "lc_time", "jit", "xmloption",
    };

    /// <summary>
    /// Allowed settings an agent may only turn on: a read-only session is a wall behind the
    /// guardrails (a role that may not write gets one), so no startup setting may turn it off.
    /// </summary>
    public static IReadOnlySet<string> OnlyTurnedOn { get; } = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { "default_transaction_read_only" };

    /// <summary>Why a setting is refused, or null when it may pass.</summary>
    private static string? Refusal(string name, string value)
    {
        if (!AllowedSettings.Contains(name))
            return $"setting \"{name}\" is not allowed through Airlock";
        if (OnlyTurnedOn.Contains(name) && value.Trim().ToLowerInvariant() is not ("on" or "true" or "yes" or "1" or "t" or "y"))
            return $"setting \"{name}\" may only be turned on through Airlock";
        return null;
    }

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
                            $"connect with dbname={targetDatabase}");
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
            if (Refusal(name, value) is { } refused)
                return Refuse(SqlStates.InsufficientPrivilege, "startup parameter: " + refused,
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
            if (Refusal(name, assignment[(equals + 1)..]) is { } refused)
                return "options: " + refused;
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
