using Airlock.ControlPlane.Approvals;
using Airlock.ControlPlane.Components.Shared;
using Airlock.ControlPlane.Data;
using Airlock.ControlPlane.Identity;
using Airlock.Contracts.Hubs;
using Airlock.Testing;
using Bunit;
using Microsoft.Extensions.DependencyInjection;
using MudBlazor;
using MudBlazor.Services;
using ApprovalsPage = Airlock.ControlPlane.Components.Pages.Approvals.Approvals;

namespace Airlock.ControlPlane.Tests;

/// <summary>The approval page and the app bar's count over a real SQLite store, as an approver sees them.</summary>
public sealed class ApprovalComponentTests : IAsyncLifetime
{
    private TestStore? _store;
    private BunitContext? _bunit;
    private readonly Guid _sidecar = Guid.NewGuid();

    public async Task InitializeAsync()
    {
        _store = await TestStore.CreateAsync(StoreProvider.Sqlite);
        await using (var db = _store.Open())
        {
            db.Sidecars.Add(new Data.Sidecar { Id = _sidecar, Name = "edge-1", CreatedAt = DateTimeOffset.UtcNow });
            db.Targets.Add(new Target { Id = Guid.NewGuid(), Name = "orders", Kind = "postgres", SidecarId = _sidecar, ListenPort = 6432, UpstreamHost = "db" });
            var role = new Role
            {
                Id = Guid.NewGuid(), Name = "deployer", Grants = [new GrantData("orders", null)],
                Rules = [new Rule { Id = Guid.NewGuid(), Name = "hold-deletes", Action = "require_approval", Approval = new ApprovalData("hold", 1, null, 600) }],
            };
            db.Roles.Add(role);
            db.Agents.Add(new Agent { Id = Guid.NewGuid(), Name = "ci", Owner = "olivia", RoleId = role.Id, CreatedAt = DateTimeOffset.UtcNow });
            foreach (var name in new[] { "alice", "olivia" })
                db.Users.Add(new ConsoleUser { Id = Guid.NewGuid(), UserName = name, PasswordHash = "x", Role = ConsoleRoles.Approver, CreatedAt = DateTimeOffset.UtcNow, SecurityStamp = $"{name}-stamp" });
            await db.SaveChangesAsync();
        }
        _bunit = new BunitContext();
        _bunit.JSInterop.Mode = JSRuntimeMode.Loose;
        _bunit.Services.AddMudServices();
        _bunit.Services.AddControlPlaneCore(_store);
        _bunit.Services.AddScoped<ConsoleActor>();
    }

    private void SignedInAs(string user)
    {
        var auth = _bunit!.AddAuthorization();
        auth.SetAuthorized(user);
        auth.SetRoles(ConsoleRoles.Approver);
        auth.SetClaims(new System.Security.Claims.Claim(IdentityExtensions.SecurityStampClaim, $"{user}-stamp"));
        _bunit.Render<MudPopoverProvider>();
        _bunit.Render<MudSnackbarProvider>();
    }

    public async Task DisposeAsync()
    {
        if (_bunit is not null)
            await _bunit.DisposeAsync();
        if (_store is not null)
            await _store.DisposeAsync();
    }

    private async Task<long> RaiseAsync(string sql = "DELETE FROM orders WHERE id = $1")
    {
        using var scope = _bunit!.Services.CreateScope();
        var ticket = await scope.ServiceProvider.GetRequiredService<ApprovalService>().RaiseAsync(_sidecar,
            new ApprovalRequest(Guid.NewGuid(), "ci", "deployer", "orders", [sql], "write", "hold-deletes", new string('a', 64), "hold", ["7"]), default);
        return ticket.RequestId;
    }

    [Fact]
    public async Task A_request_raised_while_the_page_is_open_appears_highlighted_and_alice_approves_it()
    {
        SignedInAs("alice");
        var page = _bunit!.Render<ApprovalsPage>();
        page.WaitForAssertion(() => page.Find("[data-testid=no-pending]"));
        var id = await RaiseAsync();
        page.WaitForAssertion(() => Assert.Equal("pending", page.Find($"[data-testid=approval-{id}]").GetAttribute("data-status")));
        var sql = page.Find($"[data-testid=approval-sql-{id}]");
        Assert.Equal("DELETE FROM orders WHERE id = $1", sql.TextContent);
        Assert.Contains(sql.QuerySelectorAll("span"), s => s.TextContent == "DELETE" && s.GetAttribute("style")!.Contains("font-weight", StringComparison.Ordinal));
        Assert.Contains("$1 = 7", page.Find($"[data-testid=approval-parameters-{id}]").TextContent, StringComparison.Ordinal);

        await page.Find($"[data-testid=approve-{id}]").ClickAsync(new());
        page.WaitForAssertion(() => page.Find("[data-testid=no-pending]"));
        using var scope = _bunit.Services.CreateScope();
        Assert.Equal(("approved", "alice"), await StatusAsync(scope, id));
    }

    [Fact]
    public async Task The_owner_gets_the_reason_and_the_request_stays_pending()
    {
        SignedInAs("olivia");
        var id = await RaiseAsync();
        var page = _bunit!.Render<ApprovalsPage>(p => p.Add(x => x.Id, id));
        await page.Find($"[data-testid=approve-{id}]").ClickAsync(new());
        page.WaitForAssertion(() => Assert.Contains("you own agent 'ci'", page.Find("[data-testid=approval-error]").TextContent, StringComparison.Ordinal));
        using var scope = _bunit.Services.CreateScope();
        Assert.Equal(("pending", (string?)null), await StatusAsync(scope, id));
    }

    [Fact]
    public async Task The_app_bars_count_follows_requests_without_a_reload_and_leaves_out_the_owners_own()
    {
        SignedInAs("alice");
        var badge = _bunit!.Render<ApprovalBadge>();
        badge.WaitForAssertion(() => Assert.Equal("0", badge.Find("[data-testid=approval-count]").GetAttribute("data-count")));
        var first = await RaiseAsync();
        badge.WaitForAssertion(() => Assert.Equal("1", badge.Find("[data-testid=approval-count]").GetAttribute("data-count")));
        await RaiseAsync("DELETE FROM orders WHERE id = 8");
        badge.WaitForAssertion(() => Assert.Equal("2", badge.Find("[data-testid=approval-count]").GetAttribute("data-count")));
        using (var scope = _bunit.Services.CreateScope())
            await scope.ServiceProvider.GetRequiredService<ApprovalService>().VoteAsync(first, "alice", true, null, default);
        badge.WaitForAssertion(() => Assert.Equal("1", badge.Find("[data-testid=approval-count]").GetAttribute("data-count")));
    }

    private static async Task<(string, string?)> StatusAsync(IServiceScope scope, long id)
    {
        var view = (await scope.ServiceProvider.GetRequiredService<ApprovalService>().GetAsync(id, default))!;
        return (view.Status, view.DecidedBy);
    }
}
