using Airlock.ControlPlane.Approvals;
using Airlock.ControlPlane.Data;
using Airlock.ControlPlane.Identity;
using Airlock.Contracts.Hubs;
using Airlock.Testing;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Airlock.ControlPlane.Tests;

public sealed class ApprovalServiceOnSqliteTests() : ApprovalServiceTests(StoreProvider.Sqlite);

public sealed class ApprovalServiceOnPostgresTests() : ApprovalServiceTests(StoreProvider.Postgres);

/// <summary>
/// The approval contract over a real store: who may vote, how many decide, one decision per request,
/// fail-fast reuse, expiry and settlement — on both providers (the conditional updates are SQL).
/// </summary>
public abstract class ApprovalServiceTests(StoreProvider provider) : IAsyncLifetime
{
    private TestStore? _store;
    private ServiceProvider? _services;
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 5, 9, 0, 0, TimeSpan.Zero));
    private readonly Guid _sidecar = Guid.NewGuid();
    private readonly Guid _stranger = Guid.NewGuid();

    public async Task InitializeAsync()
    {
        _store = await TestStore.CreateAsync(provider);
        _services = new ServiceCollection().AddControlPlaneCore(_store, _time).BuildServiceProvider();
        await using var db = _store.Open();
        db.Sidecars.Add(new Data.Sidecar { Id = _sidecar, Name = "edge-1", CreatedAt = _time.GetUtcNow() });
        db.Sidecars.Add(new Data.Sidecar { Id = _stranger, Name = "edge-2", CreatedAt = _time.GetUtcNow() });
        db.Targets.Add(new Target { Id = Guid.NewGuid(), Name = "orders", Kind = "postgres", SidecarId = _sidecar, ListenPort = 6432, UpstreamHost = "db" });
        var role = new Role
        {
            Id = Guid.NewGuid(),
            Name = "deployer",
            Grants = [new GrantData("orders", null)],
            Rules =
            [
                new Rule { Id = Guid.NewGuid(), Name = "hold-deletes", Action = "require_approval", Position = 0, Approval = new ApprovalData("hold", 1, null, 60) },
                new Rule { Id = Guid.NewGuid(), Name = "two-dbas", Action = "require_approval", Position = 1, Approval = new ApprovalData("hold", 2, "dba", 60) },
                new Rule { Id = Guid.NewGuid(), Name = "once", Action = "require_approval", Position = 2, Approval = new ApprovalData("fail-fast", 1, null, 60) },
                new Rule { Id = Guid.NewGuid(), Name = "window", Action = "require_approval", Position = 3, Approval = new ApprovalData("fail-fast", 1, null, 60, 10) },
                new Rule { Id = Guid.NewGuid(), Name = "plain", Action = "allow", Position = 4 },
            ],
        };
        db.Roles.Add(role);
        db.Agents.Add(new Agent { Id = Guid.NewGuid(), Name = "ci", Owner = "olivia", RoleId = role.Id, CreatedAt = _time.GetUtcNow() });
        foreach (var (name, userRole, groups) in new[]
        {
            ("alice", ConsoleRoles.Approver, new List<string> { "dba" }), ("bob", ConsoleRoles.Admin, new List<string> { "dba" }),
            ("olivia", ConsoleRoles.Approver, new List<string> { "dba" }), ("carol", ConsoleRoles.Approver, new List<string>()),
            ("audrey", ConsoleRoles.Auditor, new List<string> { "dba" }),
        })
            db.Users.Add(new ConsoleUser { Id = Guid.NewGuid(), UserName = name, PasswordHash = "x", Role = userRole, Groups = groups, CreatedAt = _time.GetUtcNow() });
        await db.SaveChangesAsync();
    }

    public async Task DisposeAsync()
    {
        if (_services is not null)
            await _services.DisposeAsync();
        if (_store is not null)
            await _store.DisposeAsync();
    }

    private async Task<T> WithAsync<T>(Func<ApprovalService, Task<T>> act)
    {
        await using var scope = _services!.CreateAsyncScope();
        return await act(scope.ServiceProvider.GetRequiredService<ApprovalService>());
    }

    private static ApprovalRequest Request(string rule, string fingerprint = "aa", string agent = "ci", string target = "orders") =>
        new(Guid.NewGuid(), agent, "deployer", target, ["DELETE FROM t WHERE id = $1"], "write", rule, fingerprint.PadRight(64, '0'), "hold", ["5"]);

    private Task<ApprovalTicket> RaiseAsync(ApprovalRequest request, Guid? sidecar = null) => WithAsync(s => s.RaiseAsync(sidecar ?? _sidecar, request, default));

    private Task<ApprovalChange> VoteAsync(long id, string voter, bool approve = true) => WithAsync(s => s.VoteAsync(id, voter, approve, null, default));

    [Theory]
    [InlineData("olivia", 403, "you own agent 'ci'")]
    [InlineData("carol", 403, "approver group 'dba'")]
    [InlineData("audrey", 403, "Approver or Admin role")]
    [InlineData("apikey:ops", 403, "an API key cannot")]
    [InlineData("nobody", 403, "an API key cannot")]
    public async Task Who_may_not_vote_is_refused_and_the_request_stays_pending(string voter, int status, string because)
    {
        var ticket = await RaiseAsync(Request("two-dbas"));
        var vote = await VoteAsync(ticket.RequestId, voter);
        Assert.Equal(status, vote.Status);
        Assert.Contains(because, vote.Problem, StringComparison.Ordinal);
        Assert.Equal(("pending", 0), await StatusAsync(ticket.RequestId));
    }

    [Fact]
    public async Task Two_of_the_group_decide_one_vote_each_and_a_decided_request_takes_no_more()
    {
        var ticket = await RaiseAsync(Request("two-dbas"));
        Assert.Equal(200, (await VoteAsync(ticket.RequestId, "alice")).Status);
        Assert.Equal(409, (await VoteAsync(ticket.RequestId, "alice")).Status);
        Assert.Equal(("pending", 1), await StatusAsync(ticket.RequestId));
        var decided = await VoteAsync(ticket.RequestId, "bob");
        Assert.Equal(("approved", 2, "bob"), (decided.Approval!.Status, decided.Approval.Approvals, decided.Approval.DecidedBy));
        Assert.Equal(409, (await VoteAsync(ticket.RequestId, "carol")).Status);
        await using var db = _store!.Open();
        var audit = await db.AuditLog.Where(a => a.EntityType == "approval" && a.EntityName == ticket.RequestId.ToString()).OrderBy(a => a.Id).Select(a => a.Action).ToListAsync();
        Assert.Equal(["approval.raised", "approval.vote", "approval.vote", "approval.approved"], audit);
    }

    [Fact]
    public async Task One_deny_decides()
    {
        var ticket = await RaiseAsync(Request("two-dbas"));
        Assert.Equal(200, (await VoteAsync(ticket.RequestId, "alice")).Status);
        Assert.Equal("denied", (await VoteAsync(ticket.RequestId, "bob", approve: false)).Approval!.Status);
    }

    [Fact]
    public async Task A_sidecar_is_believed_only_within_its_reach_and_the_rule_settings_are_the_stores()
    {
        await Assert.ThrowsAsync<ApprovalRefusedException>(() => RaiseAsync(Request("hold-deletes"), _stranger));
        await Assert.ThrowsAsync<ApprovalRefusedException>(() => RaiseAsync(Request("plain")));
        await Assert.ThrowsAsync<ApprovalRefusedException>(() => RaiseAsync(Request("no-such-rule")));
        await Assert.ThrowsAsync<ApprovalRefusedException>(() => RaiseAsync(Request("hold-deletes") with { Fingerprint = "not hex" }));
        // The sidecar says fail-fast and one approval; the rule says hold and two of dba.
        var ticket = await RaiseAsync(Request("two-dbas") with { Mode = "fail-fast" });
        var view = (await WithAsync(s => s.GetAsync(ticket.RequestId, default)))!;
        Assert.Equal(("hold", 2, "dba", "olivia"), (view.Mode, view.Required, view.Group, view.AgentOwner));
        Assert.Equal(_time.GetUtcNow().AddSeconds(60), ticket.ExpiresAt);
    }

    [Fact]
    public async Task A_fail_fast_approval_covers_its_fingerprint_once_or_for_its_window()
    {
        var once = await RaiseAsync(Request("once", "b1"));
        Assert.Equal(once.RequestId, (await RaiseAsync(Request("once", "b1"))).RequestId); // pending: the same request
        Assert.NotEqual(once.RequestId, (await RaiseAsync(Request("once", "b2"))).RequestId); // other values: another
        await VoteAsync(once.RequestId, "alice");
        Assert.Equal(ApprovalOutcomes.Approved, (await RaiseAsync(Request("once", "b1"))).Status);
        var after = await RaiseAsync(Request("once", "b1"));
        Assert.Equal(ApprovalOutcomes.Pending, after.Status);
        Assert.NotEqual(once.RequestId, after.RequestId);
        Assert.Equal(ApprovalOutcomes.Pending, (await RaiseAsync(Request("once", "b1", agent: "ci", target: "orders") with { Session = Guid.NewGuid() })).Status);

        var window = await RaiseAsync(Request("window", "c1"));
        await VoteAsync(window.RequestId, "alice");
        for (var i = 0; i < 3; i++)
            Assert.Equal(ApprovalOutcomes.Approved, (await RaiseAsync(Request("window", "c1"))).Status);
        _time.Advance(TimeSpan.FromMinutes(11));
        Assert.Equal(ApprovalOutcomes.Pending, (await RaiseAsync(Request("window", "c1"))).Status);
        Assert.Equal(3, (await WithAsync(s => s.GetAsync(window.RequestId, default)))!.Uses);
    }

    [Fact]
    public async Task Expiry_decides_once_and_a_late_vote_is_refused()
    {
        var ticket = await RaiseAsync(Request("hold-deletes"));
        _time.Advance(TimeSpan.FromSeconds(61));
        Assert.Equal(409, (await VoteAsync(ticket.RequestId, "alice")).Status);
        Assert.Equal(1, await WithAsync(s => s.ExpireDueAsync(default)));
        Assert.Equal(0, await WithAsync(s => s.ExpireDueAsync(default)));
        Assert.Equal(("expired", 0), await StatusAsync(ticket.RequestId));
    }

    [Fact]
    public async Task A_decision_is_sent_again_until_its_sidecar_settles_it_and_settling_twice_changes_nothing()
    {
        var ticket = await RaiseAsync(Request("hold-deletes"));
        await VoteAsync(ticket.RequestId, "alice");
        var unsettled = await WithAsync(s => s.UnsettledDecisionsAsync(_sidecar, default));
        Assert.Equal([(ticket.RequestId, "approved", "alice")], unsettled.Select(d => (d.RequestId, d.Outcome, d.Votes!.Single().Voter)));
        Assert.Empty(await WithAsync(s => s.UnsettledDecisionsAsync(_stranger, default)));
        await WithAsync(async s => { await s.SettleAsync(_stranger, new ApprovalSettlement(ticket.RequestId, "executed"), "edge-2", default); return 0; });
        Assert.Single(await WithAsync(s => s.UnsettledDecisionsAsync(_sidecar, default))); // not the other sidecar's to settle
        for (var i = 0; i < 2; i++)
            await WithAsync(async s => { await s.SettleAsync(_sidecar, new ApprovalSettlement(ticket.RequestId, "executed"), "edge-1", default); return 0; });
        Assert.Empty(await WithAsync(s => s.UnsettledDecisionsAsync(_sidecar, default)));
        var view = (await WithAsync(s => s.GetAsync(ticket.RequestId, default)))!;
        Assert.Equal(("executed", 1), (view.Status, view.Uses));
    }

    [Fact]
    public async Task A_grant_is_asked_by_the_owner_approved_by_someone_else_and_revoked_at_once()
    {
        Assert.Equal(403, (await WithAsync(s => s.RequestGrantAsync("carol", "ci", "orders", "deployer", 30, null, default))).Status);
        var asked = await WithAsync(s => s.RequestGrantAsync("olivia", "ci", "orders", "deployer", 30, "migration", default));
        Assert.Equal(201, asked.Status);
        var id = asked.Approval!.Id;
        Assert.Equal(403, (await VoteAsync(id, "olivia")).Status);
        var approver = await VoteAsync(id, "carol"); // an Approver does not decide a grant: it changes what the agent may do
        Assert.Equal(403, approver.Status);
        Assert.Contains("an Admin decides it", approver.Problem, StringComparison.Ordinal);
        var approved = await VoteAsync(id, "bob");
        Assert.Equal(_time.GetUtcNow().AddMinutes(30), approved.Approval!.ValidUntil);
        Assert.Single(await WithAsync(s => s.GrantsAsync(activeOnly: true, default)));
        Assert.Equal(200, (await WithAsync(s => s.RevokeGrantAsync(id, "bob", default))).Status);
        Assert.Empty(await WithAsync(s => s.GrantsAsync(activeOnly: true, default)));
        Assert.Equal(409, (await WithAsync(s => s.RevokeGrantAsync(id, "bob", default))).Status);
    }

    private async Task<(string Status, int Approvals)> StatusAsync(long id)
    {
        var view = (await WithAsync(s => s.GetAsync(id, default)))!;
        return (view.Status, view.Approvals);
    }
}
