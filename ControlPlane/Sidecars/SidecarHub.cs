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
public sealed class SidecarHub(AirlockDbContext db, SidecarPresence presence, Sessions.RecordingIngest ingest, Approvals.ApprovalService approvals, TargetTests targetTests, TimeProvider time, ILogger<SidecarHub> logger)
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
        var uses = heartbeat.AgentLastUse is { Count: > 0 } reported ? reported : null;
        if (heartbeat.Refusals is not { Count: > 0 } && heartbeat.RefusalsNotReported <= 0 && heartbeat.Statements is not { IsEmpty: false } && uses is null)
            return;
        // Everything a heartbeat brings lands together or not at all: one the sidecar sends again (it failed) adds it once.
        await using var tx = await db.Database.BeginTransactionAsync(Context.ConnectionAborted);
        await StoreRefusalsAsync(heartbeat);
        if (heartbeat.Statements is { IsEmpty: false } counts)
            await Sessions.StatementTally.AddAsync(db, Sessions.StatementTally.HourOf(time.GetUtcNow()), counts, Context.ConnectionAborted);
        if (uses is not null)
            await RecordUsesAsync(uses);
        await tx.CommitAsync(Context.ConnectionAborted);
    }

    private async Task RecordUsesAsync(IReadOnlyDictionary<string, DateTimeOffset> uses)
    {
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

    /// <summary>
    /// Keeps the connections the sidecar says it refused, for the console. The sidecar's word, capped:
    /// at most 100 a heartbeat, each field cut to its column, the time clamped to now.
    /// </summary>
    public const int MaxRefusalsPerHeartbeat = 100;
    public const int MaxRefusalsPerMinute = 1000;

    /// <summary>How far back a refusal's time is believed: sidecars report them with their next heartbeat.</summary>
    public static readonly TimeSpan MaxRefusalAge = TimeSpan.FromSeconds(20);

    private async Task StoreRefusalsAsync(SidecarHeartbeat heartbeat)
    {
        if (heartbeat.Refusals is not { Count: > 0 } && heartbeat.RefusalsNotReported <= 0)
            return;
        var now = time.GetUtcNow();
        // A sidecar that reports faster than heartbeats come is not believed past this a minute.
        var lastMinute = now.AddMinutes(-1);
        if (await db.RefusedConnections.CountAsync(r => r.SidecarId == SidecarId && r.At >= lastMinute, Context.ConnectionAborted) >= MaxRefusalsPerMinute)
            return;
        var name = (await db.Sidecars.AsNoTracking().Where(s => s.Id == SidecarId).Select(s => s.Name).SingleAsync(Context.ConnectionAborted));
        // Only refusals at this sidecar's own targets: it cannot pin refusals on another's.
        var served = (await db.Targets.AsNoTracking().Where(t => t.SidecarId == SidecarId).Select(t => t.Name).ToListAsync(Context.ConnectionAborted)).ToHashSet(StringComparer.Ordinal);
        static string Cut(string? value, int max) => value is null ? "" : value.Length <= max ? value : value[..max];
        foreach (var r in (heartbeat.Refusals ?? []).Take(MaxRefusalsPerHeartbeat).Where(r => served.Contains(r.Target)))
            db.RefusedConnections.Add(new RefusedConnection
            {
                // Reported within a heartbeat or two, in UTC: a time back-dated (or in another offset) would
                // leave the minute the limit counts at once.
                SidecarId = SidecarId, SidecarName = name, At = (r.At > now ? now : r.At < now - MaxRefusalAge ? now - MaxRefusalAge : r.At).ToUniversalTime(), Target = Cut(r.Target, 100),
                Agent = r.Agent is null ? null : Cut(r.Agent, 100), Client = Cut(r.Client, 64), SqlState = Cut(r.SqlState, 5), Reason = Cut(r.Reason, 500),
            });
        if (heartbeat.RefusalsNotReported > 0)
            db.RefusedConnections.Add(new RefusedConnection
            {
                SidecarId = SidecarId, SidecarName = name, At = now, Target = "", Client = "", SqlState = "",
                Reason = $"{Math.Min(heartbeat.RefusalsNotReported, 1_000_000_000)} more refused connections were not reported (the sidecar's report queue was full)",
            });
        await db.SaveChangesAsync(Context.ConnectionAborted);
    }

    public Task TargetTested(TargetTestResult result) => targetTests.RecordAsync(SidecarId, result, Context.ConnectionAborted);

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
