using System.Text.Json;
using Microsoft.EntityFrameworkCore;

namespace Airlock.ControlPlane.Data;

/// <summary>What to look for in the audit log; every part is optional.</summary>
public sealed record AuditFilter(string? Actor = null, string? EntityType = null, string? EntityName = null, DateTimeOffset? Since = null, DateTimeOffset? Until = null);

/// <summary>The audit log filtered and paged in the database: <c>GET /api/v1/audit</c> and the Audit page.</summary>
public sealed class AuditQueries(AirlockDbContext db)
{
    public const int MaxTake = 1000;

    public async Task<(IReadOnlyList<AuditEntry> Entries, int Total)> SearchAsync(AuditFilter filter, int skip, int take, CancellationToken ct)
    {
        var query = db.AuditLog.AsNoTracking();
        if (!string.IsNullOrWhiteSpace(filter.Actor))
            query = query.Where(a => a.Actor.ToLower().Contains(filter.Actor.Trim().ToLowerInvariant()));
        if (!string.IsNullOrWhiteSpace(filter.EntityType))
            query = query.Where(a => a.EntityType == filter.EntityType);
        if (!string.IsNullOrWhiteSpace(filter.EntityName))
            query = query.Where(a => a.EntityName.ToLower().Contains(filter.EntityName.Trim().ToLowerInvariant()));
        if (filter.Since is { } since)
            query = query.Where(a => a.At >= since);
        if (filter.Until is { } until)
            query = query.Where(a => a.At < until);
        var total = await query.CountAsync(ct);
        var entries = await query.OrderByDescending(a => a.Id).Skip(Math.Max(0, skip)).Take(Math.Clamp(take, 1, MaxTake)).ToListAsync(ct);
        return (entries, total);
    }

    /// <summary>The entity types present, for the filter's choices.</summary>
    public async Task<IReadOnlyList<string>> EntityTypesAsync(CancellationToken ct) =>
        await db.AuditLog.AsNoTracking().Select(a => a.EntityType).Distinct().OrderBy(t => t).ToListAsync(ct);
}

public enum DiffLineKind { Same, Removed, Added }

public sealed record DiffLine(DiffLineKind Kind, string Text);

/// <summary>
/// Before and after of an audit entry as a line diff of their indented JSON (a longest common
/// subsequence of lines). Pure.
/// </summary>
public static class AuditDiff
{
    private static readonly JsonSerializerOptions _indented = new() { WriteIndented = true };

    /// <summary>Beyond this many lines a side the diff is not computed (quadratic); both sides are shown whole instead.</summary>
    public const int MaxLines = 2000;

    public static IReadOnlyList<DiffLine> Lines(string? beforeJson, string? afterJson)
    {
        var before = Pretty(beforeJson);
        var after = Pretty(afterJson);
        if (before.Length > MaxLines || after.Length > MaxLines)
            return [.. before.Select(l => new DiffLine(DiffLineKind.Removed, l)), .. after.Select(l => new DiffLine(DiffLineKind.Added, l))];
        var lcs = new int[before.Length + 1, after.Length + 1];
        for (var i = before.Length - 1; i >= 0; i--)
            for (var j = after.Length - 1; j >= 0; j--)
                lcs[i, j] = before[i] == after[j] ? lcs[i + 1, j + 1] + 1 : Math.Max(lcs[i + 1, j], lcs[i, j + 1]);
        var lines = new List<DiffLine>();
        int b = 0, a = 0;
        while (b < before.Length && a < after.Length)
        {
            if (before[b] == after[a])
            {
                lines.Add(new(DiffLineKind.Same, before[b]));
                b++;
                a++;
            }
            else if (lcs[b + 1, a] >= lcs[b, a + 1])
                lines.Add(new(DiffLineKind.Removed, before[b++]));
            else
                lines.Add(new(DiffLineKind.Added, after[a++]));
        }
        lines.AddRange(before[b..].Select(l => new DiffLine(DiffLineKind.Removed, l)));
        lines.AddRange(after[a..].Select(l => new DiffLine(DiffLineKind.Added, l)));
        return lines;
    }

    private static string[] Pretty(string? json)
    {
        if (string.IsNullOrEmpty(json))
            return [];
        try
        {
            using var doc = JsonDocument.Parse(json);
            return JsonSerializer.Serialize(doc.RootElement, _indented).Split('\n');
        }
        catch (JsonException)
        {
            return json.Split('\n');
        }
    }
}
