using Airlock.ControlPlane.Data;
using Airlock.ControlPlane.Identity;
using Airlock.Contracts.Hubs;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.SignalR;
using Microsoft.EntityFrameworkCore;

namespace Airlock.ControlPlane.Sidecars;

/// <summary>
/// The sidecars' SignalR endpoint: presence, heartbeats, recording upload and approval requests
/// (a connecting sidecar is sent again every decision on a statement it holds that it has not settled).
/// </summary>
[Authorize(Policy = AccessPolicies.Sidecar)]
public sealed class SidecarHub(AirlockDbContext db, SidecarPresence presence, Sessions.RecordingIngest ingest, Approvals.ApprovalService approvals, TimeProvider time, ILogger<SidecarHub> logger)
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
        foreach (var decision in await approvals.UnsettledDecisionsAsync(id, Context.ConnectionAborted))
            await Clients.Caller.ApprovalDecided(decision);
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

    public async Task<ApprovalTicket> RequestApproval(ApprovalRequest request)
    {
        try
        {
            return await approvals.RaiseAsync(SidecarId, request, Context.ConnectionAborted);
        }
        catch (Approvals.ApprovalRefusedException e)
        {
            logger.LogWarning("Sidecar {SidecarId} raised an approval request that was refused: {Problem}", SidecarId, e.Message);
            throw new HubException(e.Message);
        }
    }

    public async Task ApprovalSettled(ApprovalSettlement settlement)
    {
        var name = Context.User?.Identity?.Name ?? "sidecar";
        await approvals.SettleAsync(SidecarId, settlement, name.StartsWith("sidecar:", StringComparison.Ordinal) ? name["sidecar:".Length..] : name, Context.ConnectionAborted);
    }

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
