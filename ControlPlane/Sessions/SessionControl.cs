using Airlock.ControlPlane.Data;
using Airlock.ControlPlane.Sidecars;
using Airlock.Contracts.Hubs;
using Microsoft.AspNetCore.SignalR;
using Microsoft.EntityFrameworkCore;

namespace Airlock.ControlPlane.Sessions;

/// <summary>Commands to live sessions: terminate, through the sidecar that serves the session.</summary>
public sealed class SessionControl(AirlockDbContext db, IHubContext<SidecarHub, ISidecarClient> hub, SidecarPresence presence, TimeProvider time)
{
    /// <summary>A sidecar heartbeats every few seconds: one seen this recently is connected to some replica.</summary>
    public static readonly TimeSpan RecentlySeen = TimeSpan.FromSeconds(45);

    /// <summary>Asks the session's sidecar to close it; false when the session is not live or its sidecar is offline.</summary>
    public async Task<bool> TerminateAsync(Guid sessionId, string reason, string actor, CancellationToken ct)
    {
        var session = await db.Sessions.AsNoTracking().SingleOrDefaultAsync(s => s.Id == sessionId, ct);
        if (session is null || session.Status != SessionStatuses.Live)
            return false;
        // Connected here, or (with several replicas) seen lately by another: the hub group reaches it through the backplane.
        var recently = time.GetUtcNow() - RecentlySeen;
        if (!presence.IsOnline(session.SidecarId) && !await db.Sidecars.AsNoTracking().AnyAsync(s => s.Id == session.SidecarId && s.LastSeenAt > recently && s.RevokedAt == null, ct))
            return false;
        db.Record(time.GetUtcNow(), actor, "terminate", "session", sessionId.ToString(), null, new { reason });
        await db.SaveChangesAsync(ct);
        await hub.Clients.Group(SidecarHub.GroupFor(session.SidecarId)).TerminateSession(new TerminateSessionCommand(sessionId, reason, actor));
        return true;
    }
}
