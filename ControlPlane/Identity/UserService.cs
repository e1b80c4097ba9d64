using Airlock.ControlPlane.Data;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;

namespace Airlock.ControlPlane.Identity;

public enum SignInOutcome { Success, Invalid, LockedOut }

public sealed record SignInResult(SignInOutcome Outcome, ConsoleUser? User, DateTimeOffset? LockedUntil = null);

/// <summary>Local console accounts: hashed passwords (ASP.NET Identity's PBKDF2 hasher) and lockout.</summary>
public sealed class UserService(AirlockDbContext db, TimeProvider time)
{
    public const int MaxFailedSignIns = 5;
    public static readonly TimeSpan LockoutDuration = TimeSpan.FromMinutes(15);
    public const int MinPasswordLength = 12;

    private static readonly PasswordHasher<ConsoleUser> _hasher = new();

    public async Task<SignInResult> SignInAsync(string userName, string password, CancellationToken ct)
    {
        var user = await db.Users.SingleOrDefaultAsync(u => u.UserName == userName, ct);
        var now = time.GetUtcNow();
        if (user is null || user.Disabled)
        {
            // Spend the same work as a real check so that timing does not reveal user names.
            _hasher.VerifyHashedPassword(new ConsoleUser { UserName = "", PasswordHash = "", Role = "" }, _dummyHash, password);
            return new SignInResult(SignInOutcome.Invalid, null);
        }
        if (user.LockedUntil is { } until && until > now)
            return new SignInResult(SignInOutcome.LockedOut, null, until);

        var verdict = _hasher.VerifyHashedPassword(user, user.PasswordHash, password);
        if (verdict == PasswordVerificationResult.Failed)
        {
            user.FailedSignIns++;
            if (user.FailedSignIns >= MaxFailedSignIns)
            {
                user.LockedUntil = now + LockoutDuration;
                user.FailedSignIns = 0;
            }
            await db.SaveChangesAsync(ct);
            return user.LockedUntil > now
                ? new SignInResult(SignInOutcome.LockedOut, null, user.LockedUntil)
                : new SignInResult(SignInOutcome.Invalid, null);
        }
        if (verdict == PasswordVerificationResult.SuccessRehashNeeded)
            user.PasswordHash = _hasher.HashPassword(user, password);
        user.FailedSignIns = 0;
        user.LockedUntil = null;
        await db.SaveChangesAsync(ct);
        return new SignInResult(SignInOutcome.Success, user);
    }

    public static string HashPassword(ConsoleUser user, string password) => _hasher.HashPassword(user, password);

    public static string? ValidatePassword(string? password) =>
        password is null || password.Length < MinPasswordLength
            ? $"password must have at least {MinPasswordLength} characters"
            : null;

    private static readonly string _dummyHash =
        _hasher.HashPassword(new ConsoleUser { UserName = "", PasswordHash = "", Role = "" }, "not-a-real-password");
}
