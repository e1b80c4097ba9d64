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
            using var hub = new SidecarHub(db, new SidecarPresence(), new RecordingIngest(db, new SessionNotifier(), NullLogger<RecordingIngest>.Instance), approvals: null!, TimeProvider.System, NullLogger<SidecarHub>.Instance) // a heartbeat touches no approval
            {
                Context = new SidecarContext(_edge1),
            };
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
