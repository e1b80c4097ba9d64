using System.Globalization;

namespace Airlock.Contracts.Recording;

/// <summary>
/// How much of each recorded field is kept. The statement's own fields (text, parameters, column
/// names, result values) are capped where they are read, in <c>StatementLedger</c> (the pure
/// protocol project cannot reference this one); the texts the sidecar composes are capped here.
/// Everything an agent or a target sends can be huge (a notice of 3 million '&lt;' is 18 MB once JSON-escaped), and one oversized event would stall the
/// whole recording behind it, so every field has a cap, a value over it is kept truncated and says
/// so (<see cref="Truncate"/>), and the recorder checks each encoded event against
/// <see cref="MaxEventPayloadBytes"/> before it is written. The caps are in characters (UTF-16);
/// JSON escaping makes a character at most 6 bytes, which is what the byte limit is sized for.
/// </summary>
public static class RecordingLimits
{
    /// <summary>Largest encoded payload of one event: far below the spool's record limit and an upload's size.</summary>
    public const int MaxEventPayloadBytes = 1024 * 1024;

    /// <summary>A notice's or an error's text (the server quotes values in messages; RAISE sends anything).</summary>
    public const int MaxMessageChars = 8 * 1024;

    /// <summary>A notice's severity (PostgreSQL sends a word such as NOTICE; an impostor could send anything).</summary>
    public const int MaxSeverityChars = 32;

    /// <summary>A session-end reason or another short text the sidecar composes.</summary>
    public const int MaxReasonChars = 2 * 1024;

    /// <summary>Columns named in a statement's masked-value counts.</summary>
    public const int MaxMaskedColumns = 256;

    /// <summary>Length of a column label in the masked-value counts.</summary>
    public const int MaxColumnNameChars = 256;

    /// <summary>Marks a value that was cut: every truncated value ends with this text and says how long it was.</summary>
    public const string TruncationMarker = "…[truncated: ";

    /// <summary><paramref name="text"/> itself when it fits, else its first <paramref name="maxChars"/> characters marked as truncated, with the original length.</summary>
    public static string Truncate(string text, int maxChars) =>
        text.Length <= maxChars ? text : Truncated(text.AsSpan(0, CutPoint(text, maxChars)), text.Length.ToString(CultureInfo.InvariantCulture) + " characters");

    /// <summary>The prefix of a longer value (whose full size <paramref name="originally"/> describes, e.g. "3000000 bytes") with the truncation mark.</summary>
    public static string Truncated(ReadOnlySpan<char> prefix, string originally) => string.Concat(prefix, TruncationMarker, originally, "]");

    /// <summary>True when <paramref name="text"/> was cut by <see cref="Truncate"/>.</summary>
    public static bool IsTruncated(string? text) => text is not null && text.Contains(TruncationMarker, StringComparison.Ordinal) && text.EndsWith(']');

    // Never split a surrogate pair (an unpaired half would be escaped, or replaced, differently by each reader).
    private static int CutPoint(string text, int maxChars) => maxChars > 0 && char.IsHighSurrogate(text[maxChars - 1]) ? maxChars - 1 : maxChars;
}
