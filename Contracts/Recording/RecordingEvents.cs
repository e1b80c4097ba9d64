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
public sealed record SessionStartPayload(string Agent, string Role, string Target, string Sidecar, string ClientAddress, bool Tls);

/// <summary>
/// One statement: what was sent, how it was classified and decided, and what came of it, with its
/// first result rows (<see cref="Result"/>, null when it returned none). One event per statement
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
    StatementResult? Result = null);

/// <summary>Result rows exactly as the agent saw them (masked), up to the per-statement cap; <see cref="Truncated"/> when there were more.</summary>
public sealed record StatementResult(IReadOnlyList<string> Columns, IReadOnlyList<IReadOnlyList<string?>> Rows, bool Truncated);

/// <summary>
/// Result rows of statement number <see cref="Statement"/> (its ordinal in the session) as a separate
/// event. Recordings made before statements carried their rows have them; the gateway now writes
/// <see cref="StatementPayload.Result"/> instead.
/// </summary>
public sealed record ResultChunkPayload(long Statement, IReadOnlyList<string> Columns, IReadOnlyList<IReadOnlyList<string?>> Rows, bool Truncated);

public sealed record NoticePayload(string Severity, string Message);

public sealed record ApprovalPayload(long RequestId, string Outcome, string? DecidedBy, string? Comment);

/// <summary>Per masked column (<c>table.column</c>), how many values were masked.</summary>
public sealed record MaskingSummaryPayload(IReadOnlyDictionary<string, long> MaskedValues);

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
    /// </summary>
    public static byte[] EncodeStatement(StatementPayload statement)
    {
        var buffer = t_buffer ??= new System.Buffers.ArrayBufferWriter<byte>(1024);
        buffer.ResetWrittenCount();
        var writer = t_writer ??= new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = Options.Encoder, SkipValidation = true });
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
        if (statement.Rows is { } rows)
            writer.WriteNumberValue(rows);
        else
            writer.WriteNullValue();
        writer.WritePropertyName("error"u8);
        WriteStringOrNull(writer, statement.Error);
        writer.WritePropertyName("result"u8);
        if (statement.Result is { } result)
        {
            writer.WriteStartObject();
            writer.WriteStartArray("columns"u8);
            foreach (var column in result.Columns)
                writer.WriteStringValue(column);
            writer.WriteEndArray();
            writer.WriteStartArray("rows"u8);
            foreach (var row in result.Rows)
            {
                writer.WriteStartArray();
                foreach (var value in row)
                    WriteStringOrNull(writer, value);
                writer.WriteEndArray();
            }
            writer.WriteEndArray();
            writer.WriteBoolean("truncated"u8, result.Truncated);
            writer.WriteEndObject();
        }
        else
        {
            writer.WriteNullValue();
        }
        writer.WriteEndObject();
        writer.Flush();
        var bytes = buffer.WrittenSpan.ToArray();
        if (buffer.Capacity > 256 * 1024)
            t_buffer = null; // a large result passed through: do not keep its buffer on this thread
        return bytes;
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
