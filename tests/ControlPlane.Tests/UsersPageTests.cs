using Microsoft.Extensions.DependencyInjection;
using Airlock.ControlPlane.Data;
using Airlock.ControlPlane.Identity;
using Airlock.Testing;
using Bunit;
using Microsoft.EntityFrameworkCore;
using MudBlazor;
using MudBlazor.Services;
using UsersPage = Airlock.ControlPlane.Components.Pages.Users.Users;

namespace Airlock.ControlPlane.Tests;

/// <summary>The Users page over a real SQLite store: changes go through the same rules and audit log as the API.</summary>
public sealed class UsersPageTests : IAsyncLifetime
{
    private TestStore? _store;
    private BunitContext? _bunit;
    private const string RootStamp = "root-admin-stamp";

    public async Task InitializeAsync()
    {
        _store = await TestStore.CreateAsync(StoreProvider.Sqlite);
        await using (var db = _store.Open())
        {
            var admin = new ConsoleUser { Id = Guid.NewGuid(), UserName = "root-admin", PasswordHash = "", Role = ConsoleRoles.Admin, CreatedAt = DateTimeOffset.UtcNow, SecurityStamp = RootStamp };
            admin.PasswordHash = UserService.HashPassword(admin, "root-admin-password");
            db.Users.Add(admin);
            await db.SaveChangesAsync();
        }
        _bunit = new BunitContext();
        _bunit.JSInterop.Mode = JSRuntimeMode.Loose;
        _bunit.Services.AddMudServices();
        _bunit.Services.AddControlPlaneCore(_store);
        _bunit.Services.AddScoped<ConsoleActor>();
        var auth = _bunit.AddAuthorization();
        auth.SetAuthorized("root-admin");
        auth.SetRoles(ConsoleRoles.Admin);
        auth.SetClaims(new System.Security.Claims.Claim(IdentityExtensions.SecurityStampClaim, RootStamp));
        _bunit.Render<MudPopoverProvider>();
    }

    public async Task DisposeAsync()
    {
        if (_bunit is not null)
            await _bunit.DisposeAsync();
        if (_store is not null)
            await _store.DisposeAsync();
    }

    private static void Type(IRenderedComponent<UsersPage> page, string testId, string value) =>
        page.Find($"[data-testid={testId}] input, input[data-testid={testId}]").Change(value);

    [Fact]
    public async Task An_admin_adds_a_user_and_disables_it_and_both_are_audited()
    {
        var page = _bunit!.Render<UsersPage>();
        page.WaitForAssertion(() => page.Find("[data-testid='user-root-admin']"));

        Type(page, "new-user-name", "dana");
        Type(page, "new-user-password", "dana-long-password");
        await page.Find("[data-testid=create-user]").ClickAsync(new());
        page.WaitForAssertion(() => Assert.Equal("active", page.Find("[data-testid=status-dana]").TextContent.Trim()));

        await page.Find("[data-testid=toggle-dana]").ClickAsync(new());
        page.WaitForAssertion(() => Assert.Equal("disabled", page.Find("[data-testid=status-dana]").TextContent.Trim()));

        await using var db = _store!.Open();
        var dana = await db.Users.SingleAsync(u => u.UserName == "dana");
        Assert.Equal((ConsoleRoles.Auditor, true), (dana.Role, dana.Disabled));
        var audit = await db.AuditLog.Where(a => a.EntityName == "dana").OrderBy(a => a.Id).ToListAsync();
        Assert.Equal(["create", "update"], audit.Select(a => a.Action));
        Assert.All(audit, a => Assert.Equal("root-admin", a.Actor));
        Assert.DoesNotContain(audit, a => (a.After ?? "").Contains("dana-long-password", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_weak_password_is_refused_with_the_reason_and_nothing_is_created()
    {
        var page = _bunit!.Render<UsersPage>();
        Type(page, "new-user-name", "eve");
        Type(page, "new-user-password", "short");
        await page.Find("[data-testid=create-user]").ClickAsync(new());
        page.WaitForAssertion(() => Assert.Contains("password: password must have at least 12 characters", page.Find("[data-testid=user-errors]").TextContent, StringComparison.Ordinal));
        await using var db = _store!.Open();
        Assert.False(await db.Users.AnyAsync(u => u.UserName == "eve"));
    }

    [Fact]
    public async Task An_admin_cannot_disable_themself()
    {
        var page = _bunit!.Render<UsersPage>();
        await page.Find("[data-testid=toggle-root-admin]").ClickAsync(new());
        page.WaitForAssertion(() => Assert.Contains("cannot disable or demote yourself", page.Find("[data-testid=user-errors]").TextContent, StringComparison.Ordinal));
        Assert.Equal("active", page.Find("[data-testid=status-root-admin]").TextContent.Trim());
    }

    [Theory]
    [InlineData("demoted")]
    [InlineData("disabled")]
    [InlineData("signed out")]
    public async Task A_tab_opened_as_admin_cannot_change_anything_once_the_admin_lost_that_access(string change)
    {
        var page = _bunit!.Render<UsersPage>();
        page.WaitForAssertion(() => page.Find("[data-testid='user-root-admin']"));
        await using (var db = _store!.Open())
        {
            var me = await db.Users.SingleAsync(u => u.UserName == "root-admin");
            switch (change)
            {
                case "demoted": me.Role = ConsoleRoles.Auditor; break;
                case "disabled": me.Disabled = true; break;
                default: me.SecurityStamp = Guid.NewGuid().ToString("N"); break;
            }
            await db.SaveChangesAsync();
        }
        // The page still shows the admin's form; the change is checked against the account as it is now.
        Type(page, "new-user-name", "mallory");
        Type(page, "new-user-password", "mallory-long-password");
        page.Find("[data-testid=new-user-role]");
        await page.Find("[data-testid=create-user]").ClickAsync(new());
        page.WaitForAssertion(() => Assert.Contains("Your access has changed", page.Find("[data-testid=user-errors]").TextContent, StringComparison.Ordinal));
        await using var check = _store!.Open();
        Assert.False(await check.Users.AnyAsync(u => u.UserName == "mallory"));
    }
}
