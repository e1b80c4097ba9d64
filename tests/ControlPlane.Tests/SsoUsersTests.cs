using Airlock.ControlPlane.Identity;
using Airlock.Testing;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Airlock.ControlPlane.Tests;

public sealed class SsoUsersOnSqliteTests() : SsoUsersTests(StoreProvider.Sqlite);

public sealed class SsoUsersOnPostgresTests() : SsoUsersTests(StoreProvider.Postgres);

/// <summary>Single sign-on accounts in the store: found by issuer and subject, never by a name the provider chose.</summary>
public abstract class SsoUsersTests(StoreProvider provider) : StoreTestBase(provider)
{
    private const string Issuer = "https://idp.example/";
    private static readonly ConsoleSsoOptions _options = new() { Authority = Issuer, ClientId = "c", AdminGroups = ["admins"], AuditorGroups = ["readers"] };

    private Task<SsoSignIn> SignInAsync(string subject, string? name, params string[] groups) =>
        WithScope(sp => new SsoUsers(sp.GetRequiredService<Data.AirlockDbContext>(), TimeProvider.System).SignInAsync(Issuer, subject, name, groups, _options, default));

    [Fact]
    public async Task A_name_a_local_account_has_in_any_letter_case_is_refused_and_nothing_is_created()
    {
        // StoreTestBase's local account is "alice".
        Assert.Equal(SsoRefusal.NameTaken, (await SignInAsync("sub-1", "Alice", "admins")).Refusal);
        Assert.Equal(SsoRefusal.NameTaken, (await SignInAsync("sub-1", "alice", "admins")).Refusal);
        Assert.Equal(1, await WithDb(db => db.Users.CountAsync()));
    }

    [Fact]
    public async Task The_account_follows_the_provider_by_subject_whatever_name_it_later_gives()
    {
        var first = await SignInAsync("sub-2", "olga", "admins", "dba");
        Assert.Equal(("olga", ConsoleRoles.Admin), (first.User!.UserName, first.User.Role));
        Assert.Equal(["admins", "dba"], first.User.Groups);

        // The same subject under another name and with less: the same account, with the lesser role.
        var again = await SignInAsync("sub-2", "olga-renamed", "readers");
        Assert.Equal(("olga", ConsoleRoles.Auditor), (again.User!.UserName, again.User.Role));
        Assert.Equal(SsoRefusal.NoRole, (await SignInAsync("sub-2", "olga", "marketing")).Refusal);

        await WithDb(db => db.Users.Where(u => u.UserName == "olga").ExecuteUpdateAsync(u => u.SetProperty(x => x.Disabled, true)));
        Assert.Equal(SsoRefusal.Disabled, (await SignInAsync("sub-2", "olga", "admins")).Refusal);
        Assert.Equal(["create", "update"], await WithDb(db => db.AuditLog.Where(a => a.EntityName == "olga").OrderBy(a => a.Id).Select(a => a.Action).ToListAsync()));
    }

    [Fact]
    public async Task A_local_account_cannot_take_a_single_sign_on_accounts_name_in_another_case_nor_it_a_password()
    {
        Assert.NotNull((await SignInAsync("sub-5", "olga", "admins")).User);
        var admin = () => Services.CreateScope().ServiceProvider.GetRequiredService<UserAdministration>();
        var lookalike = await admin().CreateAsync("Olga", "a-long-enough-password", ConsoleRoles.Admin, disabled: false, "alice", default);
        Assert.Equal(409, lookalike.Status);
        var password = await admin().UpdateAsync("olga", "weak", null, null, "alice", default);
        Assert.Equal("this account signs in with single sign-on and has no password", Assert.Single(password.Errors).Message);
    }

    [Fact]
    public async Task Approver_groups_are_names_only_and_at_most_fifty()
    {
        var groups = Enumerable.Range(0, 120).Select(i => $"g{i:D3}").Append("admins").Append("not a name!").ToArray();
        var user = (await SignInAsync("sub-3", "many", groups)).User!;
        Assert.Equal(50, user.Groups.Count);
        Assert.DoesNotContain("not a name!", user.Groups);
        Assert.Equal(SsoRefusal.NoUserName, (await SignInAsync("sub-4", "no spaces allowed", "admins")).Refusal);
        Assert.Equal(SsoRefusal.NoUserName, (await SignInAsync("sub-4", null, "admins")).Refusal);
    }
}
