using System.Security.Claims;
using Airlock.ControlPlane.Data;
using Airlock.ControlPlane.Identity;
using Airlock.ControlPlane.Sessions;
using Airlock.ControlPlane.Sidecars;
using Airlock.Contracts.Hubs;
using Airlock.Testing;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.SignalR;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.ControlPlane.Tests;

/// <summary>What a sidecar reports is believed only within its reach.</summary>
public sealed class SidecarHubTests : IAsyncLifetime
{
    private TestStore? _store;
    private readonly Guid _edge1 = Guid.NewGuid();
    private readonly Guid _edge2 = Guid.NewGuid();
    private readonly Guid _ownAgent = Guid.NewGuid();
    private readonly Guid _otherAgent = Guid.NewGuid();

    public async Task InitializeAsync()
    {
        _store = await TestStore.CreateAsync(StoreProvider.Sqlite);
        await using var db = _store.Open();
        db.Sidecars.Add(new Data.Sidecar { Id = _edge1, Name = "edge-1", CreatedAt = DateTimeOffset.UtcNow });
        db.Sidecars.Add(new Data.Sidecar { Id = _edge2, Name = "edge-2", CreatedAt = DateTimeOffset.UtcNow });
        db.Targets.Add(new Target { Id = Guid.NewGuid(), Name = "orders", Kind = "postgres", SidecarId = _edge1, ListenPort = 6432, UpstreamHost = "db" });
        db.Targets.Add(new Target { Id = Guid.NewGuid(), Name = "billing", Kind = "postgres", SidecarId = _edge2, ListenPort = 6432, UpstreamHost = "db" });
        var ordersRole = new Role { Id = Guid.NewGuid(), Name = "orders-reader", Grants = [new GrantData("orders", null)] };
        var billingRole = new Role { Id = Guid.NewGuid(), Name = "billing-reader", Grants = [new GrantData("billing", null)] };
        db.Roles.AddRange(ordersRole, billingRole);
        db.Agents.Add(new Agent { Id = _ownAgent, Name = "orders-bot", Owner = "admin", RoleId = ordersRole.Id, CreatedAt = DateTimeOffset.UtcNow });
        db.Agents.Add(new Agent { Id = _otherAgent, Name = "billing-bot", Owner = "admin", RoleId = billingRole.Id, CreatedAt = DateTimeOffset.UtcNow });
        await db.SaveChangesAsync();
    }

    public async Task DisposeAsync()
    {
        if (_store is not null)
            await _store.DisposeAsync();
    }

    [Fact]
    public async Task A_heartbeat_reports_last_use_only_for_agents_the_sidecar_reaches()
    {
        var used = DateTimeOffset.UtcNow.AddMinutes(-1);
        await using (var db = _store!.Open())
        {
            using var hub = Hub(db);
            await hub.Heartbeat(new SidecarHeartbeat("test", 1, DateTimeOffset.UtcNow, new Dictionary<string, DateTimeOffset>
            {
                [_ownAgent.ToString()] = used,
                [_otherAgent.ToString()] = used, // edge-1 does not serve billing: not believed
            }));
        }
        await using var check = _store!.Open();
        Assert.NotNull((await check.Agents.SingleAsync(a => a.Id == _ownAgent)).LastUsedAt);
        Assert.Null((await check.Agents.SingleAsync(a => a.Id == _otherAgent)).LastUsedAt);
    }

    /// <summary>The hub as edge-1 calls it; a heartbeat touches no approval and no connection test.</summary>
    private SidecarHub Hub(AirlockDbContext db) =>
        new(db, new SidecarPresence(), new RecordingIngest(db, new SessionNotifier(), NullLogger<RecordingIngest>.Instance), approvals: null!, targetTests: null!, TimeProvider.System, NullLogger<SidecarHub>.Instance)
        {
            Context = new SidecarContext(_edge1),
        };

    [Fact]
    public async Task A_heartbeat_brings_refused_connections_capped_and_statement_counts()
    {
        var future = DateTimeOffset.UtcNow.AddDays(1);
        var refusals = Enumerable.Range(0, 150).Select(i => new RefusedConnectionReport(
            i == 0 ? future : i == 1 ? DateTimeOffset.UtcNow.AddDays(-3) : DateTimeOffset.UtcNow, "orders", i == 0 ? new string('a', 500) : "ci", "127.0.0.1:5000", "42501", i == 0 ? new string('r', 5000) : "not granted")).ToList();
        // Refusals pinned on another sidecar's target are not believed.
        refusals.Insert(1, new RefusedConnectionReport(DateTimeOffset.UtcNow, "billing", "billing-bot", "127.0.0.1:1", "28P01", "made up"));
        await using (var db = _store!.Open())
        {
            using var hub = Hub(db);
            await hub.Heartbeat(new SidecarHeartbeat("test", 1, DateTimeOffset.UtcNow, null, refusals, RefusalsNotReported: 12, Statements: new StatementCounts(5, 1, 2, 1)));
            // A hostile count neither overflows the hour nor wipes it.
            await hub.Heartbeat(new SidecarHeartbeat("test", 1, DateTimeOffset.UtcNow, Statements: new StatementCounts(long.MaxValue, -7, 0, 0)));
            await hub.Heartbeat(new SidecarHeartbeat("test", 1, DateTimeOffset.UtcNow, Statements: new StatementCounts(long.MaxValue, 0, 0, 0)));
        }
        await using var check = _store!.Open();
        var stored = await check.RefusedConnections.OrderBy(r => r.Id).ToListAsync();
        Assert.Equal(SidecarHub.MaxRefusalsPerHeartbeat, stored.Count); // the first 100 less billing's, and a line for what was not reported
        Assert.DoesNotContain(stored, r => r.Target == "billing");
        Assert.All(stored, r => Assert.Equal("edge-1", r.SidecarName));
        Assert.True(stored[0].At <= DateTimeOffset.UtcNow, "a time in the future is clamped to now");
        Assert.True(stored[1].At >= DateTimeOffset.UtcNow.AddMinutes(-2), "a time long past is clamped to the last moments");
        Assert.Equal(100, stored[0].Agent!.Length);
        Assert.Equal(500, stored[0].Reason.Length);
        Assert.Equal("12 more refused connections were not reported (the sidecar's report queue was full)", stored[^1].Reason);
        var counts = await check.StatementStats.ToDictionaryAsync(s => s.Outcome, s => s.Count);
        Assert.Equal((5 + 2 * StatementTally.MaxPerHeartbeat, 1L, 2L, 1L), (counts[StatementOutcome.Allowed], counts[StatementOutcome.Masked], counts[StatementOutcome.Blocked], counts[StatementOutcome.Held]));
    }

    [Fact]
    public async Task Back_dated_refusals_still_count_towards_the_sidecars_limit_a_minute()
    {
        // 12 heartbeats of 100 refusals, all claiming to be days old: the limit (1,000 a minute) still holds.
        await using (var db = _store!.Open())
        {
            using var hub = Hub(db);
            for (var beat = 0; beat < 12; beat++)
                await hub.Heartbeat(new SidecarHeartbeat("test", 1, DateTimeOffset.UtcNow, null,
                    Enumerable.Range(0, 100).Select(_ => new RefusedConnectionReport(DateTimeOffset.UtcNow.AddDays(-3), "orders", "ci", "127.0.0.1:1", "28P01", "x")).ToList()));
        }
        await using var check = _store!.Open();
        Assert.Equal(SidecarHub.MaxRefusalsPerMinute, await check.RefusedConnections.CountAsync());
    }

    private sealed class SidecarContext(Guid sidecar) : HubCallerContext
    {
        public override string ConnectionId => "test";
        public override string? UserIdentifier => null;
        public override ClaimsPrincipal? User { get; } = new(new ClaimsIdentity([new Claim(BearerSecretHandler.SidecarIdClaim, sidecar.ToString())], "test"));
        public override IDictionary<object, object?> Items { get; } = new Dictionary<object, object?>();
        public override IFeatureCollection Features { get; } = new FeatureCollection();
        public override CancellationToken ConnectionAborted => CancellationToken.None;
        public override void Abort() { }
    }
}
