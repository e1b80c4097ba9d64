using Airlock.ControlPlane.Data;
using Airlock.ControlPlane.Policies;
using Microsoft.EntityFrameworkCore;

namespace Airlock.ControlPlane.Sidecars;

/// <summary>
/// What one sidecar's policy snapshot reaches: the targets it serves and the agents whose role
/// grants one of them. What a sidecar reports about sessions and agents is believed only within
/// this reach — a sidecar cannot attribute a session to a target it does not serve, nor mark an
/// agent it does not know as used.
/// </summary>
public sealed record SidecarReach(IReadOnlySet<string> Targets, IReadOnlySet<string> AgentNames, IReadOnlySet<Guid> AgentIds)
{
    public static async Task<SidecarReach> LoadAsync(AirlockDbContext db, Guid sidecarId, CancellationToken ct)
    {
        var targets = await db.Targets.AsNoTracking().Where(t => t.SidecarId == sidecarId).ToListAsync(ct);
        var roles = await db.Roles.AsNoTracking().ToListAsync(ct);
        var reaching = roles.Where(r => targets.Any(t => r.Grants.Any(g => SnapshotCompiler.Grants(g, t)))).Select(r => r.Id).ToList();
        // Agents a time-boxed grant lets in (until a day after it lapses, so a session it opened is still theirs to report).
        var since = DateTimeOffset.UtcNow.AddDays(-1);
        var names = targets.Select(t => t.Name).ToList();
        var granted = await db.Approvals.AsNoTracking()
            .Where(a => a.Kind == ApprovalKind.Grant && (a.Status == ApprovalStatus.Approved || a.Status == ApprovalStatus.Revoked) && a.ValidUntil > since && names.Contains(a.Target))
            .Select(a => a.Agent).ToListAsync(ct);
        var agents = await db.Agents.AsNoTracking().Where(a => reaching.Contains(a.RoleId) || granted.Contains(a.Name)).Select(a => new { a.Id, a.Name }).ToListAsync(ct);
        return new SidecarReach(
            targets.Select(t => t.Name).ToHashSet(StringComparer.Ordinal),
            agents.Select(a => a.Name).ToHashSet(StringComparer.Ordinal),
            agents.Select(a => a.Id).ToHashSet());
    }

    /// <summary>Null when a session of <paramref name="agent"/> on <paramref name="target"/> is within reach; else what is not.</summary>
    public string? Problem(string sidecarName, string agent, string target) =>
        !Targets.Contains(target) ? $"sidecar '{sidecarName}' does not serve target '{target}'"
        : !AgentNames.Contains(agent) ? $"agent '{agent}' is not one sidecar '{sidecarName}' knows (no role of it grants a target of that sidecar)"
        : null;
}
