using Airlock.ControlPlane.Data;
using Airlock.ControlPlane.Identity;
using Airlock.ControlPlane.Policies;
using Airlock.Testing;
using Bunit;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using MudBlazor.Services;
using TargetsPage = Airlock.ControlPlane.Components.Pages.Targets.Targets;

namespace Airlock.ControlPlane.Tests;

/// <summary>
/// The Targets page over a real SQLite store — the logic every policy page shares (<c>PolicyPage</c>):
/// the validator's messages at their fields, a save based on the version shown, the conflict named.
/// </summary>
public sealed class TargetsPageTests : IAsyncLifetime
{
    private TestStore? _store;
    private BunitContext? _bunit;

    public async Task InitializeAsync()
    {
        _store = await TestStore.CreateAsync(StoreProvider.Sqlite);
        await using (var db = _store.Open())
        {
            db.Users.Add(new ConsoleUser { Id = Guid.NewGuid(), UserName = "root-admin", PasswordHash = "", Role = ConsoleRoles.Admin, CreatedAt = DateTimeOffset.UtcNow, SecurityStamp = "stamp" });
            db.Sidecars.Add(new Data.Sidecar { Id = Guid.NewGuid(), Name = "edge-1", CreatedAt = DateTimeOffset.UtcNow, EnrolledAt = DateTimeOffset.UtcNow });
            await db.SaveChangesAsync();
        }
        _bunit = new BunitContext();
        _bunit.JSInterop.Mode = JSRuntimeMode.Loose;
        _bunit.Services.AddMudServices();
        _bunit.Services.AddControlPlaneCore(_store);
        _bunit.Services.AddScoped<ConsoleActor>();
        _bunit.Services.AddScoped<Sidecars.TargetTests>();
        var auth = _bunit.AddAuthorization();
        auth.SetAuthorized("root-admin");
        auth.SetRoles(ConsoleRoles.Admin);
        auth.SetPolicies(AccessPolicies.Admin, AccessPolicies.Viewer);
        auth.SetClaims(new System.Security.Claims.Claim(IdentityExtensions.SecurityStampClaim, "stamp"));
        _bunit.Render<MudBlazor.MudPopoverProvider>();
    }

    public async Task DisposeAsync()
    {
        if (_bunit is not null)
            await _bunit.DisposeAsync();
        if (_store is not null)
            await _store.DisposeAsync();
    }

    private static void Type(IRenderedComponent<TargetsPage> page, string testId, string value) =>
        page.Find($"[data-testid={testId}] input, input[data-testid={testId}]").Change(value);

    private async Task<EditResult> EditAsOtherAdminAsync(Action<TargetSpec> change)
    {
        using var scope = _bunit!.Services.CreateScope();
        return await scope.ServiceProvider.GetRequiredService<PolicyStore>().EditAsync(new PolicyEdit(PolicyObjectKind.Target, "orders", null, doc =>
        {
            change(doc.Targets!.Single(t => t.Name == "orders"));
            return null;
        }), "bea", default);
    }

    [Fact]
    public async Task A_new_target_with_a_bad_port_shows_the_message_at_the_field_and_a_good_one_is_saved_and_audited()
    {
        var page = _bunit!.Render<TargetsPage>();
        page.WaitForAssertion(() => page.Find("[data-testid=no-targets]"));
        await page.Find("[data-testid=new-target]").ClickAsync(new());
        Type(page, "target-name", "orders");
        Type(page, "target-listen-port", "70000");
        Type(page, "target-host", "db.internal");
        Type(page, "target-password", "upstream-secret");
        await page.Find("[data-testid=target-save]").ClickAsync(new());
        page.WaitForAssertion(() => Assert.Contains("between 1 and 65535", page.Find("[data-testid=target-form]").TextContent, StringComparison.Ordinal));
        Assert.Empty(page.FindAll("[data-testid=target-error]")); // placed at its field, not in the list of others

        Type(page, "target-listen-port", "6432");
        await page.Find("[data-testid=target-save]").ClickAsync(new());
        page.WaitForAssertion(() => Assert.Equal("stored", page.Find("[data-testid=target-credential-orders]").TextContent.Trim()));
        Assert.DoesNotContain("upstream-secret", page.Markup, StringComparison.Ordinal);
        await using var db = _store!.Open();
        var audit = await db.AuditLog.SingleAsync(a => a.EntityType == "target");
        Assert.Equal(("root-admin", "create"), (audit.Actor, audit.Action));
        Assert.DoesNotContain("upstream-secret", audit.After, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Saving_over_another_admins_change_is_refused_naming_them_and_reload_shows_theirs()
    {
        using (var scope = _bunit!.Services.CreateScope())
            Assert.Equal(EditStatus.Applied, (await scope.ServiceProvider.GetRequiredService<PolicyStore>().EditAsync(new PolicyEdit(PolicyObjectKind.Target, "orders", null, doc =>
            {
                doc.Targets!.Add(new TargetSpec { Name = "orders", Sidecar = "edge-1", ListenPort = 6432, Upstream = new UpstreamSpec { Host = "db", Credential = "env:PW" } });
                return null;
            }), "root-admin", default)).Status);

        var page = _bunit.Render<TargetsPage>();
        page.WaitForAssertion(() => page.Find("[data-testid=edit-target-orders]"));
        await page.Find("[data-testid=edit-target-orders]").ClickAsync(new());
        Type(page, "target-host", "mine.internal");

        Assert.Equal(EditStatus.Applied, (await EditAsOtherAdminAsync(t => t.Upstream!.Host = "theirs.internal")).Status);
        await page.Find("[data-testid=target-save]").ClickAsync(new());
        page.WaitForAssertion(() => Assert.Contains("bea changed it at", page.Find("[data-testid=target-problem]").TextContent, StringComparison.Ordinal));
        await using (var db = _store!.Open())
            Assert.Equal("theirs.internal", (await db.Targets.SingleAsync()).UpstreamHost);

        await page.Find("[data-testid=target-reload]").ClickAsync(new());
        page.WaitForAssertion(() => Assert.Equal("theirs.internal", page.Find("input[data-testid=target-host], [data-testid=target-host] input").GetAttribute("value")));
        Type(page, "target-host", "mine.internal");
        await page.Find("[data-testid=target-save]").ClickAsync(new());
        page.WaitForAssertion(() => Assert.Empty(page.FindAll("[data-testid=target-problem]")));
        await using var check = _store!.Open();
        Assert.Equal("mine.internal", (await check.Targets.SingleAsync()).UpstreamHost);
    }
}
