using Airlock.ControlPlane.Data;
using Airlock.ControlPlane.Identity;
using Airlock.Contracts.Hubs;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.SignalR;
using Microsoft.EntityFrameworkCore;

namespace Airlock.ControlPlane.Sidecars;

/// <summary>
/// The sidecars' SignalR endpoint: presence, heartbeats and recording upload; approval requests
/// arrive with their issue and are refused with a clear error until then.
/// </summary>
[Authorize(Policy = AccessPolicies.Sidecar)]
public sealed class SidecarHub(AirlockDbContext db, SidecarPresence presence, Sessions.RecordingIngest ingest, TimeProvider time, ILogger<SidecarHub> logger)
    : Hub<ISidecarClient>, ISidecarHub
{
    public static string GroupFor(Guid sidecarId) => $"sidecar:{sidecarId}";

    public override async Task OnConnectedAsync()
    {
        var id = SidecarId;
        await Groups.AddToGroupAsync(Context.ConnectionId, GroupFor(id));
        presence.HubConnected(id, Context);
        await TouchAsync(_ => { });
        logger.LogInformation("Sidecar {SidecarId} connected to the hub", id);
        await base.OnConnectedAsync();
    }

    public override Task OnDisconnectedAsync(Exception? exception)
    {
        presence.HubDisconnected(SidecarId, Context.ConnectionId);
        logger.LogInformation("Sidecar {SidecarId} disconnected from the hub", SidecarId);
        return base.OnDisconnectedAsync(exception);
    }

    public async Task Heartbeat(SidecarHeartbeat heartbeat)
    {
        await TouchAsync(s =>
        {
            s.SoftwareVersion = heartbeat.SoftwareVersion.Length <= 50 ? heartbeat.SoftwareVersion : heartbeat.SoftwareVersion[..50];
            s.AppliedVersion = Math.Max(s.AppliedVersion, heartbeat.AppliedVersion);
        });
        if (heartbeat.AgentLastUse is not { Count: > 0 } uses)
            return;
        // A sidecar reports uses, never sets them in the future: clamp to now.
        var now = time.GetUtcNow();
        // Only agents this sidecar's policy reaches: a sidecar cannot make another's agents look used.
        var reach = await SidecarReach.LoadAsync(db, SidecarId, Context.ConnectionAborted);
        var ids = uses.Keys.Take(1000).Select(k => Guid.TryParse(k, out var g) ? g : Guid.Empty).Where(reach.AgentIds.Contains).ToList();
        foreach (var agent in await db.Agents.Where(a => ids.Contains(a.Id)).ToListAsync())
        {
            var at = uses[agent.Id.ToString()] > now ? now : uses[agent.Id.ToString()];
            if (agent.LastUsedAt is null || agent.LastUsedAt < at)
                agent.LastUsedAt = at;
        }
        await db.SaveChangesAsync();
    }

    public Task<RecordingAck> UploadRecording(RecordingBatch batch) =>
        ingest.IngestAsync(SidecarId, batch, Context.ConnectionAborted);

    public Task<ApprovalTicket> RequestApproval(ApprovalRequest request) =>
        throw new HubException("approvals are not available on this control plane version");

    private Guid SidecarId => Context.User?.SidecarId() ?? throw new HubException("sidecar credential required");

    private async Task TouchAsync(Action<Data.Sidecar> update)
    {
        var sidecar = await db.Sidecars.SingleOrDefaultAsync(s => s.Id == SidecarId);
        if (sidecar is null || sidecar.RevokedAt is not null)
        {
            Context.Abort();
            return;
        }
        update(sidecar);
        sidecar.LastSeenAt = time.GetUtcNow();
        await db.SaveChangesAsync();
        presence.Notify();
    }
}
