using System.Text.Json;

namespace Airlock.Contracts.Recording;

/// <summary>The types of recorded events.</summary>
public static class RecordingEventTypes
{
    public const string SessionStart = "session.start";
    public const string Statement = "statement";
    public const string ResultChunk = "result.chunk";
    public const string Notice = "notice";
    public const string Approval = "approval";
    public const string MaskingSummary = "masking.summary";
    public const string SessionEnd = "session.end";

    public static IReadOnlyList<string> All { get; } = [SessionStart, Statement, ResultChunk, Notice, Approval, MaskingSummary, SessionEnd];

    /// <summary>The known type whose UTF-8 name is <paramref name="utf8"/>, or null: read from a record without allocating.</summary>
    public static string? Find(ReadOnlySpan<byte> utf8)
    {
        foreach (var type in All)
            if (System.Text.Ascii.Equals(utf8, type))
                return type;
        return null;
    }
}

/// <summary>Who connected where, from where, and how.</summary>
public sealed record SessionStartPayload(string Agent, string Role, string Target, string Sidecar, string ClientAddress, bool Tls)
{
    /// <summary>The front door when it is not the target's own wire protocol: <c>mcp</c> for the MCP server.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public string? Via { get; init; }

    /// <summary>The client program as it named itself (MCP clientInfo), unverified: for reading, not for deciding.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public string? ClientName { get; init; }

    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public string? ClientVersion { get; init; }

    /// <summary>The person the agent acted for (a delegation through the MCP front door): their console user name.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public string? Person { get; init; }
}

/// <summary>
/// One statement: what was sent, how it was classified and decided, and what came of it, with its
/// first result rows (<see cref="Result"/>, null when it returned none), and how many values of each
/// column the gateway masked (<see cref="Masked"/>, absent when none). One event per statement
/// keeps the evidence cheap enough for the data path: every event is hashed, spooled, uploaded,
/// verified and stored.
/// </summary>
public sealed record StatementPayload(
    string Text,
    IReadOnlyList<string?> Parameters,
    string Classification,
    string Decision,
    string? Rule,
    double DurationMs,
    long? Rows,
    string? Error,
    StatementResult? Result = null,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    IReadOnlyDictionary<string, long>? Masked = null);

/// <summary>Result rows exactly as the agent saw them (masked), up to the per-statement cap; <see cref="Truncated"/> when there were more.</summary>
public sealed record StatementResult(IReadOnlyList<string> Columns, IReadOnlyList<IReadOnlyList<string?>> Rows, bool Truncated);

/// <summary>
/// Result rows of statement number <see cref="Statement"/> (its ordinal in the session) as a separate
/// event. Recordings made before statements carried their rows have them; the gateway now writes
/// <see cref="StatementPayload.Result"/> instead.
/// </summary>
public sealed record ResultChunkPayload(long Statement, IReadOnlyList<string> Columns, IReadOnlyList<IReadOnlyList<string?>> Rows, bool Truncated);

public sealed record NoticePayload(string Severity, string Message);

/// <summary>
/// One step of an approval request in the session's chain: <c>raised</c> (with the rule, mode and
/// fingerprint), each <c>vote</c> (<see cref="DecidedBy"/> is the voter, <see cref="Approve"/> the
/// vote), the decision (<c>approved</c>, <c>denied</c>, <c>expired</c>), then <c>executed</c> or
/// <c>cancelled</c>.
/// </summary>
public sealed record ApprovalPayload(
    long RequestId,
    string Outcome,
    string? DecidedBy,
    string? Comment,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    string? Rule = null,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    string? Mode = null,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    string? Fingerprint = null,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    bool? Approve = null);

/// <summary>Per masked column (<c>table.column</c>), how many values were masked.</summary>
public sealed record MaskingSummaryPayload(IReadOnlyDictionary<string, long> MaskedValues);

/// <summary>Stands in for an event whose payload was over <see cref="RecordingLimits.MaxEventPayloadBytes"/> (a sidecar bug: every field is capped).</summary>
public sealed record OmittedPayload(bool Omitted, long OriginalBytes, string Reason);

/// <summary>Why the session ended: <c>client</c>, <c>server</c>, <c>terminated: …</c>, <c>error: …</c>.</summary>
public sealed record SessionEndPayload(string Reason);

/// <summary>Payloads are camelCase JSON; the bytes, once written, are what the chain hashes.</summary>
public static class RecordingJson
{
    public static JsonSerializerOptions Options { get; } = new(JsonSerializerDefaults.Web);

    public static byte[] Encode<T>(T payload) => JsonSerializer.SerializeToUtf8Bytes(payload, Options);

    /// <summary>
    /// The same bytes as <c>Encode(statement)</c>, written directly: the gateway encodes one statement
    /// per transaction on the data path, and the reflection-driven serializer was most of that cost.
    /// The result is cut (rows, then columns; <see cref="StatementResult.Truncated"/> set) so the
    /// payload stays within <see cref="RecordingLimits.MaxEventPayloadBytes"/>; every other field is
    /// already capped by its producer.
    /// </summary>
    public static byte[] EncodeStatement(StatementPayload statement)
    {
        var buffer = t_buffer ??= new System.Buffers.ArrayBufferWriter<byte>(1024);
        var writer = t_writer ??= new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = Options.Encoder, SkipValidation = true });
        var (columns, rows) = (int.MaxValue, int.MaxValue);
        // The first pass measures; in the rare case the result does not fit, the second writes what does.
        while (!TryWriteStatement(buffer, writer, statement, ref columns, ref rows))
        {
        }
        var bytes = buffer.WrittenSpan.ToArray();
        if (buffer.Capacity > 256 * 1024)
            t_buffer = null; // a large result passed through: do not keep its buffer on this thread
        return bytes;
    }

    /// <summary>Room kept for what follows the result's rows (<c>],"truncated":true}}</c>).</summary>
    private const int ClosingBytes = 64;

    /// <summary>
    /// Writes the payload with at most <paramref name="columns"/> columns and <paramref name="rows"/>
    /// rows of the result; false (with the numbers that fit) when the result overran the event limit.
    /// </summary>
    private static bool TryWriteStatement(System.Buffers.ArrayBufferWriter<byte> buffer, Utf8JsonWriter writer, StatementPayload statement, ref int columns, ref int rows)
    {
        const int budget = RecordingLimits.MaxEventPayloadBytes - ClosingBytes;
        buffer.ResetWrittenCount();
        writer.Reset(buffer);
        writer.WriteStartObject();
        writer.WriteString("text"u8, statement.Text);
        writer.WriteStartArray("parameters"u8);
        foreach (var parameter in statement.Parameters)
            WriteStringOrNull(writer, parameter);
        writer.WriteEndArray();
        writer.WriteString("classification"u8, statement.Classification);
        writer.WriteString("decision"u8, statement.Decision);
        writer.WritePropertyName("rule"u8);
        WriteStringOrNull(writer, statement.Rule);
        writer.WriteNumber("durationMs"u8, statement.DurationMs);
        writer.WritePropertyName("rows"u8);
        if (statement.Rows is { } rowCount)
            writer.WriteNumberValue(rowCount);
        else
            writer.WriteNullValue();
        writer.WritePropertyName("error"u8);
        WriteStringOrNull(writer, statement.Error);
        writer.WritePropertyName("result"u8);
        if (statement.Result is { } result)
        {
            var truncated = result.Truncated;
            writer.WriteStartObject();
            writer.WriteStartArray("columns"u8);
            for (var i = 0; i < result.Columns.Count; i++)
            {
                if (i == columns || writer.BytesCommitted + writer.BytesPending + 6L * result.Columns[i].Length + 3 > budget)
                {
                    (columns, rows, truncated) = (i, 0, true);
                    break;
                }
                writer.WriteStringValue(result.Columns[i]);
            }
            writer.WriteEndArray();
            writer.WriteStartArray("rows"u8);
            for (var r = 0; r < result.Rows.Count; r++)
            {
                if (r == rows)
                {
                    truncated = true;
                    break;
                }
                writer.WriteStartArray();
                foreach (var value in result.Rows[r])
                    WriteStringOrNull(writer, value);
                writer.WriteEndArray();
                if (writer.BytesCommitted + writer.BytesPending > budget)
                {
                    // This row does not fit: write again without it.
                    rows = r;
                    writer.Flush();
                    return false;
                }
            }
            writer.WriteEndArray();
            writer.WriteBoolean("truncated"u8, truncated);
            writer.WriteEndObject();
        }
        else
        {
            writer.WriteNullValue();
        }
        if (statement.Masked is { Count: > 0 } masked)
        {
            writer.WriteStartObject("masked"u8);
            foreach (var (column, count) in masked.Take(RecordingLimits.MaxMaskedColumns))
                writer.WriteNumber(RecordingLimits.Truncate(column, RecordingLimits.MaxColumnNameChars), count);
            writer.WriteEndObject();
        }
        writer.WriteEndObject();
        writer.Flush();
        return true;
    }

    private static void WriteStringOrNull(Utf8JsonWriter writer, string? value)
    {
        if (value is null)
            writer.WriteNullValue();
        else
            writer.WriteStringValue(value);
    }

    [ThreadStatic]
    private static System.Buffers.ArrayBufferWriter<byte>? t_buffer;

    [ThreadStatic]
    private static Utf8JsonWriter? t_writer;

    public static T? Decode<T>(ReadOnlySpan<byte> payload) => JsonSerializer.Deserialize<T>(payload, Options);
}
