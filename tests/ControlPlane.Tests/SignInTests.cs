using Airlock.ControlPlane.Data;
using Airlock.ControlPlane.Identity;
using Airlock.Testing;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Airlock.ControlPlane.Tests;

/// <summary>Password guessing against the real sign-in service and store: counted atomically, per address, slowed per account.</summary>
public sealed class SignInTests : IAsyncLifetime
{
    private TestStore? _store;
    private ServiceProvider? _services;
    private const string Password = "the-right-long-password";

    public async Task InitializeAsync()
    {
        _store = await TestStore.CreateAsync(StoreProvider.Sqlite);
        _services = ControlPlaneServices.Build(_store);
        await using var db = _store.Open();
        var user = new ConsoleUser { Id = Guid.NewGuid(), UserName = "root", PasswordHash = "", Role = ConsoleRoles.Admin, CreatedAt = DateTimeOffset.UtcNow };
        user.PasswordHash = UserService.HashPassword(user, Password);
        db.Users.Add(user);
        await db.SaveChangesAsync();
    }

    public async Task DisposeAsync()
    {
        if (_services is not null)
            await _services.DisposeAsync();
        if (_store is not null)
            await _store.DisposeAsync();
    }

    private async Task<SignInOutcome> SignInAsync(string user, string password, string address)
    {
        using var scope = _services!.CreateScope();
        return (await scope.ServiceProvider.GetRequiredService<UserService>().SignInAsync(user, password, address, default)).Outcome;
    }

    private async Task<int> FailuresAsync()
    {
        await using var db = _store!.Open();
        return (await db.Users.SingleAsync(u => u.UserName == "root")).FailedSignIns;
    }

    [Fact]
    public async Task Parallel_guesses_from_one_address_check_at_most_five_passwords_then_that_address_is_shut_out()
    {
        var outcomes = await Task.WhenAll(Enumerable.Range(0, 40).Select(_ => Task.Run(() => SignInAsync("root", "guess-guess-guess", "203.0.113.7"))));
        Assert.All(outcomes, o => Assert.Equal(SignInOutcome.Refused, o));
        Assert.Equal(SignInThrottle.MaxFailures, await FailuresAsync());
        // The right password from that address: refused, like any other answer (nothing to tell them apart).
        Assert.Equal(SignInOutcome.Refused, await SignInAsync("root", Password, "203.0.113.7"));
        Assert.Equal(SignInOutcome.Refused, await SignInAsync("no-such-user", Password, "203.0.113.7"));
        // The administrator, elsewhere, is not locked out.
        Assert.Equal(SignInOutcome.Success, await SignInAsync("root", Password, "198.51.100.1"));
        Assert.Equal(0, await FailuresAsync());
    }

    [Fact]
    public async Task Guesses_spread_over_many_addresses_are_slowed_per_account_and_the_right_password_still_works()
    {
        for (var i = 0; i < UserService.SlowdownAfterFailures; i++)
            Assert.Equal(SignInOutcome.Refused, await SignInAsync("root", "guess-guess-guess", $"203.0.113.{i}"));
        Assert.Equal(UserService.SlowdownAfterFailures, await FailuresAsync());

        // From now on the account's attempts are checked one at a time, each after a pause.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var outcomes = await Task.WhenAll(Enumerable.Range(0, 3).Select(i => SignInAsync("root", "guess-guess-guess", $"198.51.100.{i}")));
        Assert.All(outcomes, o => Assert.Equal(SignInOutcome.Refused, o));
        Assert.True(clock.Elapsed >= 3 * UserService.SlowdownDelay - TimeSpan.FromMilliseconds(100), $"three attempts took {clock.Elapsed}");
        Assert.Equal(SignInOutcome.Success, await SignInAsync("root", Password, "192.0.2.1"));
    }

    [Fact]
    public async Task An_admin_resetting_the_password_clears_the_addresses_shut_out()
    {
        for (var i = 0; i < SignInThrottle.MaxFailures; i++)
            await SignInAsync("root", "guess-guess-guess", "203.0.113.7");
        using (var scope = _services!.CreateScope())
            Assert.Equal(200, (await scope.ServiceProvider.GetRequiredService<UserAdministration>().UpdateAsync("root", "a-new-long-password", null, null, "other-admin", default)).Status);
        Assert.Equal(SignInOutcome.Success, await SignInAsync("root", "a-new-long-password", "203.0.113.7"));
    }

    [Fact]
    public async Task A_sign_in_without_the_accounts_current_stamp_does_not_count()
    {
        await using var db = _store!.Open();
        var user = await db.Users.SingleAsync(u => u.UserName == "root");
        System.Security.Claims.ClaimsPrincipal Principal(params System.Security.Claims.Claim[] extra) => new(new System.Security.Claims.ClaimsIdentity(
            [new(System.Security.Claims.ClaimTypes.Name, "root"), new(System.Security.Claims.ClaimTypes.Role, ConsoleRoles.Admin), .. extra], "test"));
        Assert.NotEmpty(user.SecurityStamp);
        Assert.NotNull(await ConsoleSessionCheck.CurrentAsync(db, Principal(new System.Security.Claims.Claim(IdentityExtensions.SecurityStampClaim, user.SecurityStamp)), default));
        Assert.Null(await ConsoleSessionCheck.CurrentAsync(db, Principal(), default)); // a cookie from before stamps, or forged without one
        Assert.Null(await ConsoleSessionCheck.CurrentAsync(db, Principal(new System.Security.Claims.Claim(IdentityExtensions.SecurityStampClaim, "")), default));
        Assert.Null(await ConsoleSessionCheck.CurrentAsync(db, Principal(new System.Security.Claims.Claim(IdentityExtensions.SecurityStampClaim, "an-older-stamp")), default));
    }
}
