using System.Text.Json;
using Airlock.ControlPlane.Data;
using Airlock.Contracts.Recording;
using Microsoft.EntityFrameworkCore;

namespace Airlock.ControlPlane.Sessions;

/// <summary>
/// Counts what recorded statements came to, per hour, as they are ingested: the dashboard's chart
/// of statements allowed, masked, blocked and held. Reads only the top-level <c>decision</c> and
/// <c>masked</c> of a statement event and the <c>outcome</c> of an approval event, without
/// materialising the payload. A payload it cannot read counts as nothing (it is evidence, stored
/// as it came; this is only a tally).
/// </summary>
public sealed class StatementTally
{
    private readonly Dictionary<(long Hour, StatementOutcome Outcome), long> _counts = [];

    public IReadOnlyDictionary<(long Hour, StatementOutcome Outcome), long> Counts => _counts;

    public static long HourOf(DateTimeOffset time) => time.ToUnixTimeSeconds() / 3600;

    public void Add(string? type, ReadOnlySpan<byte> payload, DateTimeOffset time)
    {
        if (Classify(type, payload) is { } outcome)
        {
            var key = (HourOf(time), outcome);
            _counts[key] = _counts.GetValueOrDefault(key) + 1;
        }
    }

    /// <summary>Pure: what one event counts as, or null.</summary>
    public static StatementOutcome? Classify(string? type, ReadOnlySpan<byte> payload)
    {
        if (type == RecordingEventTypes.Statement)
        {
            var (decision, masked) = Scan(payload, "decision"u8, "masked"u8);
            return decision switch
            {
                "allow" => masked ? StatementOutcome.Masked : StatementOutcome.Allowed,
                "block" => StatementOutcome.Blocked,
                _ => null, // require_approval: counted by its approval request
            };
        }
        if (type == RecordingEventTypes.Approval && Scan(payload, "outcome"u8, default).Text == "raised")
            return StatementOutcome.Held;
        return null;
    }

    /// <summary>
    /// One pass over the top level of a JSON object: the string value of <paramref name="text"/>, and
    /// whether <paramref name="objectName"/> is an object. Nested values are skipped, not read.
    /// </summary>
    private static (string? Text, bool HasObject) Scan(ReadOnlySpan<byte> json, ReadOnlySpan<byte> text, ReadOnlySpan<byte> objectName)
    {
        string? value = null;
        var hasObject = false;
        try
        {
            var reader = new Utf8JsonReader(json);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
                return (null, false);
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var isText = reader.ValueTextEquals(text);
                var isObject = !objectName.IsEmpty && reader.ValueTextEquals(objectName);
                if (!reader.Read())
                    break;
                if (isText && reader.TokenType == JsonTokenType.String)
                    value = reader.GetString();
                else if (isObject)
                    hasObject = reader.TokenType == JsonTokenType.StartObject;
                reader.Skip();
            }
        }
        catch (JsonException)
        {
            // unreadable: whatever was read so far
        }
        return (value, hasObject);
    }

    /// <summary>
    /// Adds the counts to the store in the ingest's transaction, as upserts (the same SQL on SQLite
    /// and PostgreSQL): two sidecars' uploads counting the same hour never collide on a new row.
    /// </summary>
    public async Task SaveAsync(AirlockDbContext db, CancellationToken ct)
    {
        foreach (var ((hour, outcome), count) in _counts)
            await db.Database.ExecuteSqlInterpolatedAsync(
                $"""INSERT INTO "StatementStats" ("Hour", "Outcome", "Count") VALUES ({hour}, {(int)outcome}, {count}) ON CONFLICT ("Hour", "Outcome") DO UPDATE SET "Count" = "StatementStats"."Count" + excluded."Count" """, ct);
    }
}
