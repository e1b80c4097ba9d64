using System.Text.Json;

namespace Airlock.ControlPlane.Data;

/// <summary>
/// Adds audit entries to the current unit of work, so that a change and its record commit together.
/// Callers pass redacted views (never entities with secrets); <see cref="Redacted"/> marks the spot.
/// </summary>
public static class AuditLog
{
    public const string Redacted = "(redacted)";

    private static readonly JsonSerializerOptions _json = new(JsonSerializerDefaults.Web);

    public static void Record(this AirlockDbContext db, DateTimeOffset at, string actor, string action, string entityType, string entityName, object? before, object? after) =>
        db.AuditLog.Add(new AuditEntry
        {
            At = at,
            Actor = actor,
            Action = action,
            EntityType = entityType,
            EntityName = entityName,
            Before = before is null ? null : JsonSerializer.Serialize(before, _json),
            After = after is null ? null : JsonSerializer.Serialize(after, _json),
        });
}
