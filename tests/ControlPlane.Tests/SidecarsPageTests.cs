using SidecarsPage = Airlock.ControlPlane.Components.Pages.Sidecars.Sidecars;
using Airlock.ControlPlane.Data;
using Airlock.ControlPlane.Sidecars;
using Airlock.Testing;
using Bunit;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using MudBlazor.Services;

namespace Airlock.ControlPlane.Tests;

/// <summary>The Sidecars page over a real SQLite store and the real presence tracker.</summary>
public sealed class SidecarsPageTests : IAsyncLifetime
{
    private TestStore? _store;
    private BunitContext? _bunit;

    public async Task InitializeAsync()
    {
        _store = await TestStore.CreateAsync(StoreProvider.Sqlite);
        await using (var db = _store.Open())
        {
            db.Users.Add(new ConsoleUser { Id = Guid.NewGuid(), UserName = "root-admin", PasswordHash = "", Role = Identity.ConsoleRoles.Admin, CreatedAt = DateTimeOffset.UtcNow, SecurityStamp = "stamp" });
            await db.SaveChangesAsync();
        }
        _bunit = new BunitContext();
        _bunit.JSInterop.Mode = JSRuntimeMode.Loose;
        _bunit.Services.AddMudServices();
        _bunit.Services.AddControlPlaneCore(_store);
        _bunit.Services.AddScoped<Identity.ConsoleActor>();
        var auth = _bunit.AddAuthorization();
        auth.SetAuthorized("root-admin");
        auth.SetRoles(Identity.ConsoleRoles.Admin);
        auth.SetPolicies(Identity.AccessPolicies.Admin, Identity.AccessPolicies.Viewer);
        auth.SetClaims(new System.Security.Claims.Claim(Identity.IdentityExtensions.SecurityStampClaim, "stamp"));
        _bunit.Render<MudBlazor.MudPopoverProvider>();
    }

    [Fact]
    public async Task An_admin_creates_a_sidecar_and_gets_a_ready_to_run_enrollment_command_once()
    {
        var page = _bunit!.Render<SidecarsPage>();
        page.Find("[data-testid=new-sidecar-name]").Change("edge-9");
        page.Find("[data-testid=create-sidecar]").Click();
        page.WaitForAssertion(() => Assert.Equal("not enrolled", page.Find("[data-testid=state-edge-9]").TextContent));
        page.Find("[data-testid=enroll-edge-9]").Click();
        var command = page.WaitForElement("[data-testid=enrollment-command]").TextContent;
        Assert.Matches(@"^dotnet Sidecar\.dll --control-plane http://localhost --enrollment-token et_\S+ --state-dir /var/lib/airlock-sidecar$", command);
        await using var db = _store!.Open();
        var token = await db.EnrollmentTokens.SingleAsync();
        Assert.DoesNotContain(token.TokenHash, command, StringComparison.Ordinal);
        Assert.Equal(["create sidecar edge-9", "create enrollment-token edge-9"],
            await db.AuditLog.OrderBy(a => a.Id).Select(a => a.Action + " " + a.EntityType + " " + a.EntityName).ToListAsync());

        // A bad name is refused with the service's own message.
        page.Find("[data-testid=new-sidecar-name]").Change("Bad Name");
        page.Find("[data-testid=create-sidecar]").Click();
        page.WaitForAssertion(() => Assert.Contains("lower-case letters", page.Find("[data-testid=sidecar-problem]").TextContent, StringComparison.Ordinal));
    }

    public async Task DisposeAsync()
    {
        if (_bunit is not null)
            await _bunit.DisposeAsync();
        if (_store is not null)
            await _store.DisposeAsync();
    }

    private async Task<Guid> AddSidecarAsync(string name, bool enrolled, long applied = 0, long current = 0)
    {
        await using var db = _store!.Open();
        var sidecar = new Data.Sidecar { Id = Guid.NewGuid(), Name = name, CreatedAt = DateTimeOffset.UtcNow, EnrolledAt = enrolled ? DateTimeOffset.UtcNow : null, AppliedVersion = applied, SoftwareVersion = "0.1.0" };
        db.Sidecars.Add(sidecar);
        for (var v = 1; v <= current; v++)
            db.SnapshotVersions.Add(new SnapshotVersion { SidecarId = sidecar.Id, Version = v, ContentHash = $"h{v}", CreatedAt = DateTimeOffset.UtcNow });
        await db.SaveChangesAsync();
        return sidecar.Id;
    }

    [Fact]
    public async Task With_no_sidecars_it_says_how_to_add_one()
    {
        var page = _bunit!.Render<SidecarsPage>();
        page.WaitForAssertion(() => Assert.Contains("No sidecars yet", page.Find("[data-testid=no-sidecars]").TextContent, StringComparison.Ordinal));
        await Task.CompletedTask;
    }

    [Fact]
    public async Task It_shows_state_and_versions_and_follows_presence_live()
    {
        var edge1 = await AddSidecarAsync("edge-1", enrolled: true, applied: 3, current: 3);
        await AddSidecarAsync("edge-2", enrolled: false);
        var page = _bunit!.Render<SidecarsPage>();

        page.WaitForAssertion(() => Assert.Equal("offline", page.Find("[data-testid=state-edge-1]").TextContent.Trim()));
        Assert.Equal("not enrolled", page.Find("[data-testid=state-edge-2]").TextContent.Trim());
        Assert.Equal("3 / 3", page.Find("[data-testid=versions-edge-1]").TextContent.Trim());
        Assert.Empty(page.FindAll("[data-testid=drift-edge-1]"));

        // A snapshot stream opens: the page changes without being re-rendered by the test.
        var presence = _bunit.Services.GetRequiredService<SidecarPresence>();
        using var cancel = new CancellationTokenSource();
        var stream = presence.StreamOpened(edge1, cancel);
        page.WaitForAssertion(() => Assert.Equal("online", page.Find("[data-testid=state-edge-1]").TextContent.Trim()), TimeSpan.FromSeconds(5));

        // A new version is compiled but not yet applied: drift is shown.
        await using (var db = _store!.Open())
        {
            db.SnapshotVersions.Add(new SnapshotVersion { SidecarId = edge1, Version = 4, ContentHash = "h4", CreatedAt = DateTimeOffset.UtcNow });
            await db.SaveChangesAsync();
        }
        presence.Notify();
        page.WaitForAssertion(() => Assert.Equal("3 / 4", page.Find("[data-testid=versions-edge-1]").TextContent.Trim()), TimeSpan.FromSeconds(5));
        Assert.Single(page.FindAll("[data-testid=drift-edge-1]"));

        stream.Dispose();
        page.WaitForAssertion(() => Assert.Equal("offline", page.Find("[data-testid=state-edge-1]").TextContent.Trim()), TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task A_revoked_sidecar_is_shown_as_revoked()
    {
        await AddSidecarAsync("edge-1", enrolled: true);
        await using (var db = _store!.Open())
        {
            var s = await db.Sidecars.SingleAsync();
            s.RevokedAt = DateTimeOffset.UtcNow;
            await db.SaveChangesAsync();
        }
        var page = _bunit!.Render<SidecarsPage>();
        page.WaitForAssertion(() => Assert.Equal("revoked", page.Find("[data-testid=state-edge-1]").TextContent.Trim()));
    }
}
