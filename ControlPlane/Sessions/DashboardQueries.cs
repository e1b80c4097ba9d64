using Airlock.ControlPlane.Data;
using Airlock.ControlPlane.Policies;
using Airlock.ControlPlane.Sidecars;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;

namespace Airlock.ControlPlane.Sessions;

/// <summary>One step of the getting-started checklist, done or not, with the page that does it.</summary>
public sealed record ChecklistStep(string Title, string Hint, string Href, bool Done);

public sealed record LiveSessionRow(Guid Id, string Agent, string Target, DateTimeOffset StartedAt, long Statements);

/// <summary>The statements of one hour, by outcome.</summary>
public sealed record HourTally(DateTimeOffset Hour, long Allowed, long Masked, long Blocked, long Held);

public sealed record Dashboard(
    IReadOnlyList<ChecklistStep> Checklist,
    int RefusedLast24Hours,
    IReadOnlyList<RefusedConnection> LatestRefused,
    int LiveSessions,
    IReadOnlyList<LiveSessionRow> RecentLive,
    int PendingApprovals,
    IReadOnlyList<HourTally> Last24Hours,
    IReadOnlyList<SidecarView> Sidecars,
    IReadOnlyList<AuditEntry> LatestAudit)
{
    public bool GettingStarted => Checklist.Any(s => !s.Done);
}

/// <summary>What the dashboard shows, in a handful of small queries (counts and the latest few rows; nothing grows with history).</summary>
public sealed class DashboardQueries(AirlockDbContext db, SidecarService sidecars, IOpenIddictApplicationManager applications, TimeProvider time)
{
    public async Task<Dashboard> LoadAsync(CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var liveQuery = db.Sessions.AsNoTracking().Where(s => s.Status == SessionStatuses.Live);
        var live = await liveQuery.CountAsync(ct);
        var recent = await liveQuery.OrderByDescending(s => s.StartedAt).Take(8)
            .Select(s => new LiveSessionRow(s.Id, s.Agent, s.Target, s.StartedAt, s.StatementCount)).ToListAsync(ct);
        var pending = await db.Approvals.AsNoTracking().CountAsync(a => a.Status == ApprovalStatus.Pending, ct);
        var sidecarViews = await sidecars.ListAsync(ct);
        var audit = await db.AuditLog.AsNoTracking().OrderByDescending(a => a.Id).Take(8).ToListAsync(ct);
        var since = now.AddHours(-24);
        var refused = await db.RefusedConnections.AsNoTracking().CountAsync(r => r.At >= since, ct);
        var latestRefused = await db.RefusedConnections.AsNoTracking().Where(r => r.At >= since).OrderByDescending(r => r.Id).Take(5).ToListAsync(ct);
        return new Dashboard(await ChecklistAsync(sidecarViews, ct), refused, latestRefused, live, recent, pending, await TallyAsync(now, ct), sidecarViews, audit);
    }

    /// <summary>The last 24 whole and current hours, oldest first; hours with nothing are zeros.</summary>
    private async Task<IReadOnlyList<HourTally>> TallyAsync(DateTimeOffset now, CancellationToken ct)
    {
        var last = StatementTally.HourOf(now);
        var first = last - 23;
        var rows = await db.StatementStats.AsNoTracking().Where(s => s.Hour >= first && s.Hour <= last).ToListAsync(ct);
        long Count(long hour, StatementOutcome outcome) => rows.Where(r => r.Hour == hour && r.Outcome == outcome).Sum(r => r.Count);
        return Enumerable.Range(0, 24).Select(i => first + i).Select(h => new HourTally(
            DateTimeOffset.FromUnixTimeSeconds(h * 3600),
            Count(h, StatementOutcome.Allowed), Count(h, StatementOutcome.Masked), Count(h, StatementOutcome.Blocked), Count(h, StatementOutcome.Held))).ToList();
    }

    /// <summary>From an empty store to an agent's first recorded, policed session.</summary>
    private async Task<IReadOnlyList<ChecklistStep>> ChecklistAsync(IReadOnlyList<SidecarView> sidecarViews, CancellationToken ct)
    {
        var targets = await db.Targets.AsNoTracking().ToListAsync(ct);
        var roles = await db.Roles.AsNoTracking().Select(r => new { r.Name, r.Grants }).ToListAsync(ct);
        var reaching = roles.Where(r => r.Grants.Any(g => targets.Any(t => SnapshotCompiler.Grants(g, t)))).Select(r => r.Name).ToHashSet(StringComparer.Ordinal);
        var agentRoles = await db.Agents.AsNoTracking().Select(a => a.Role!.Name).ToListAsync(ct);
        var credentials = await applications.CountAsync(ct) > 0 || await db.TrustedIssuers.AsNoTracking().AnyAsync(ct);
        var recorded = await db.Sessions.AsNoTracking().AnyAsync(ct);
        return
        [
            new("Enroll a sidecar", "Create one under Sidecars and start it with the one-time command shown.", "/sidecars",
                sidecarViews.Any(s => s.Status == "enrolled")),
            new("Add a target", "The database agents will reach, served by that sidecar; its credential stays with Airlock.", "/targets", targets.Count > 0),
            new("Create a role that reaches it", "Start from the agent-safe baseline and grant the target.", "/roles", reaching.Count > 0),
            new("Create an agent with that role", "One agent per automation, owned by a person.", "/agents", agentRoles.Any(reaching.Contains)),
            new("Give the agent a credential", "A client secret, a public key (private_key_jwt), or a federation binding.", "/agents", credentials),
            new("Connect through the sidecar", "psql or any PostgreSQL client, with the agent's token as the password; the session is recorded.", "/sessions", recorded),
        ];
    }
}
