using Airlock.ControlPlane.Data;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;

namespace Airlock.ControlPlane.Identity;

/// <summary>
/// <see cref="Refused"/> covers a wrong password, an unknown or disabled account and a throttled
/// address alike: the answer does not tell which (no user-name discovery).
/// </summary>
public enum SignInOutcome { Success, Refused }

public sealed record SignInResult(SignInOutcome Outcome, ConsoleUser? User);

/// <summary>
/// Local console accounts: hashed passwords (ASP.NET Identity's PBKDF2 hasher) and guessing limits:
/// <list type="number">
/// <item>per (account, client address), <see cref="SignInThrottle"/>: five failures, counted before
/// the check, shut that address out of that account for 15 minutes;</item>
/// <item>per account, across addresses: after <see cref="SlowdownAfterFailures"/> consecutive
/// failures (counted atomically in the store), attempts on that account are checked one at a time,
/// each after <see cref="SlowdownDelay"/> — a distributed guesser is slowed to a crawl, and the
/// administrator still signs in (a moment later).</item>
/// </list>
/// </summary>
public sealed class UserService(AirlockDbContext db, TimeProvider time, SignInThrottle throttle)
{
    public const int SlowdownAfterFailures = 20;
    public static readonly TimeSpan SlowdownDelay = TimeSpan.FromSeconds(1);
    public const int MinPasswordLength = 12;

    private static readonly PasswordHasher<ConsoleUser> _hasher = new();
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<Guid, SemaphoreSlim> _slowLanes = new();

    public async Task<SignInResult> SignInAsync(string userName, string password, string clientAddress, CancellationToken ct)
    {
        if (!throttle.TryBegin(userName, clientAddress))
        {
            SpendAsMuchAsACheck(password);
            return new SignInResult(SignInOutcome.Refused, null);
        }
        var succeeded = false;
        try
        {
            var user = await db.Users.AsNoTracking().SingleOrDefaultAsync(u => u.UserName == userName, ct);
            // A single sign-on account has no password: it signs in only through its provider.
            if (user is null || user.Disabled || user.SingleSignOn)
            {
                SpendAsMuchAsACheck(password);
                return new SignInResult(SignInOutcome.Refused, null);
            }
            SemaphoreSlim? lane = null;
            if (user.FailedSignIns >= SlowdownAfterFailures)
            {
                lane = _slowLanes.GetOrAdd(user.Id, _ => new SemaphoreSlim(1, 1));
                await lane.WaitAsync(ct);
            }
            try
            {
                if (lane is not null)
                    await Task.Delay(SlowdownDelay, time, ct);
                var verdict = _hasher.VerifyHashedPassword(user, user.PasswordHash, password);
                if (verdict == PasswordVerificationResult.Failed)
                {
                    // Atomic in the store: parallel failures all count.
                    await db.Users.Where(u => u.Id == user.Id).ExecuteUpdateAsync(u => u.SetProperty(x => x.FailedSignIns, x => x.FailedSignIns + 1), ct);
                    return new SignInResult(SignInOutcome.Refused, null);
                }
                var tracked = await db.Users.SingleAsync(u => u.Id == user.Id, ct);
                if (verdict == PasswordVerificationResult.SuccessRehashNeeded)
                    tracked.PasswordHash = _hasher.HashPassword(tracked, password);
                tracked.FailedSignIns = 0;
                tracked.LockedUntil = null;
                await db.SaveChangesAsync(ct);
                succeeded = true;
                return new SignInResult(SignInOutcome.Success, tracked);
            }
            finally
            {
                lane?.Release();
            }
        }
        finally
        {
            throttle.End(userName, clientAddress, succeeded);
        }
    }

    /// <summary>Where a console user's own password change is throttled from: like a sign-in, wrong current passwords count.</summary>
    public const string PasswordChangeSource = "console:password-change";

    /// <summary>
    /// A signed-in user changes their own password: the current one is checked as a sign-in is (throttled,
    /// failures counted), the new one must be valid and different. Every session of the user then ends
    /// (new security stamp), this one too. Null on success; otherwise what is wrong, for the form.
    /// </summary>
    public async Task<string?> ChangeOwnPasswordAsync(string userName, string? current, string? next, CancellationToken ct)
    {
        if (await db.Users.AsNoTracking().AnyAsync(u => u.UserName == userName && u.ExternalIssuer != null, ct))
            return "you sign in with single sign-on: change your password at your identity provider";
        if (ValidatePassword(next) is { } weak)
            return $"new password: {weak}";
        if (string.Equals(current, next, StringComparison.Ordinal))
            return "new password: choose one different from the current password";
        var check = await SignInAsync(userName, current ?? "", PasswordChangeSource, ct);
        if (check.Outcome != SignInOutcome.Success)
            return "current password: not correct (after five wrong tries this form is shut for 15 minutes)";
        var user = await db.Users.SingleAsync(u => u.UserName == userName, ct);
        user.PasswordHash = HashPassword(user, next!);
        user.SecurityStamp = ConsoleUser.NewSecurityStamp(); // every session of the user ends, in every browser
        db.Record(time.GetUtcNow(), userName, "password-change", "user", userName, null, new { password = AuditLog.Redacted });
        await db.SaveChangesAsync(ct);
        return null;
    }

    /// <summary>The same work as a real check, so that timing does not tell unknown, disabled or throttled accounts apart.</summary>
    private static void SpendAsMuchAsACheck(string password) =>
        _hasher.VerifyHashedPassword(new ConsoleUser { UserName = "", PasswordHash = "", Role = "" }, _dummyHash, password);

    public static string HashPassword(ConsoleUser user, string password) => _hasher.HashPassword(user, password);

    public static string? ValidatePassword(string? password) =>
        password is null || password.Length < MinPasswordLength
            ? $"password must have at least {MinPasswordLength} characters"
            : null;

    private static readonly string _dummyHash =
        _hasher.HashPassword(new ConsoleUser { UserName = "", PasswordHash = "", Role = "" }, "not-a-real-password");
}
