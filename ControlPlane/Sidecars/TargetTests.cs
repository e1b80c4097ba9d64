using Airlock.ControlPlane.Data;
using Airlock.Contracts.Hubs;
using Microsoft.AspNetCore.SignalR;
using Microsoft.EntityFrameworkCore;

namespace Airlock.ControlPlane.Sidecars;

/// <summary>What became of a connection test: the sidecar's answer, or why there is none.</summary>
public sealed record TargetTestOutcome(string Target, string Sidecar, bool? Succeeded, string Detail, double? Milliseconds);

/// <summary>
/// "Can the sidecar reach this target and log in?" — asked of the sidecar that serves it, answered
/// from there (never from the control plane, which may not reach the database at all). The request
/// and the answer go through the store, so a test asked on one replica is answered whichever
/// replica the sidecar is connected to.
/// </summary>
public sealed class TargetTests(AirlockDbContext db, IHubContext<SidecarHub, ISidecarClient> hub, SidecarPresence presence, TimeProvider time)
{
    public static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);

    /// <summary>Asks, waits for the answer (up to <see cref="Wait"/>), and says what came of it; null when the target does not exist.</summary>
    public async Task<TargetTestOutcome?> TestAsync(string targetName, string actor, CancellationToken ct)
    {
        var target = await db.Targets.AsNoTracking().Include(t => t.Sidecar).SingleOrDefaultAsync(t => t.Name == targetName, ct);
        if (target?.Sidecar is not { } sidecar)
            return null;
        var now = time.GetUtcNow();
        if (sidecar.RevokedAt is not null || (!presence.IsOnline(sidecar.Id) && !(sidecar.LastSeenAt > now - Sessions.SessionControl.RecentlySeen)))
            return new TargetTestOutcome(target.Name, sidecar.Name, null, $"sidecar \"{sidecar.Name}\" is not connected, so it cannot test the connection; start it (see Sidecars)", null);
        var test = new TargetConnectionTest { Target = target.Name, SidecarId = sidecar.Id, RequestedBy = actor, RequestedAt = now };
        db.TargetConnectionTests.Add(test);
        db.Record(now, actor, "test-connection", "target", target.Name, null, new { sidecar = sidecar.Name });
        await db.SaveChangesAsync(ct);
        await hub.Clients.Group(SidecarHub.GroupFor(sidecar.Id)).TestTarget(new TargetTestRequest(test.Id, target.Name));

        var deadline = time.GetUtcNow() + Wait;
        while (time.GetUtcNow() < deadline)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(200), time, ct);
            var answer = await db.TargetConnectionTests.AsNoTracking().SingleAsync(t => t.Id == test.Id, ct);
            if (answer.CompletedAt is not null)
                return new TargetTestOutcome(target.Name, sidecar.Name, answer.Succeeded, answer.Detail ?? "", answer.Milliseconds);
        }
        return new TargetTestOutcome(target.Name, sidecar.Name, null, $"sidecar \"{sidecar.Name}\" did not answer within {Wait.TotalSeconds:F0} s", null);
    }

    /// <summary>The sidecar's answer: taken only from the sidecar that was asked, once.</summary>
    public async Task RecordAsync(Guid sidecarId, TargetTestResult result, CancellationToken ct)
    {
        var detail = result.Detail.Length <= 1000 ? result.Detail : result.Detail[..1000];
        var now = time.GetUtcNow();
        await db.TargetConnectionTests
            .Where(t => t.Id == result.RequestId && t.SidecarId == sidecarId && t.CompletedAt == null)
            .ExecuteUpdateAsync(u => u.SetProperty(t => t.CompletedAt, now).SetProperty(t => t.Succeeded, result.Succeeded)
                .SetProperty(t => t.Detail, detail).SetProperty(t => t.Milliseconds, Math.Max(0, result.Milliseconds)), ct);
    }
}
