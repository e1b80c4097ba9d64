using System.Text.RegularExpressions;
using Airlock.ControlPlane.Data;
using Airlock.ControlPlane.Policies;
using Microsoft.EntityFrameworkCore;

namespace Airlock.ControlPlane.Identity;

public sealed record UserView(string UserName, string Role, bool Disabled, bool LockedOut, DateTimeOffset CreatedAt, IReadOnlyList<string> Groups, string? SingleSignOn = null);

/// <summary>The outcome of a user change: the user, or the problems (with field paths), or not found / conflict.</summary>
public sealed record UserChange(UserView? User, IReadOnlyList<PolicyError> Errors, int Status);

/// <summary>
/// Console accounts, managed by Admins through the REST API and the Users page alike: one set of
/// rules, one audit trail.
/// </summary>
public sealed partial class UserAdministration(AirlockDbContext db, TimeProvider time, SignInThrottle throttle)
{
    [GeneratedRegex("^[A-Za-z0-9._@-]{1,100}$")]
    private static partial Regex UserNamePattern();

    public async Task<IReadOnlyList<UserView>> ListAsync(CancellationToken ct) =>
        (await db.Users.AsNoTracking().OrderBy(u => u.UserName).ToListAsync(ct)).Select(ToView).ToList();

    public async Task<UserChange> CreateAsync(string? userName, string? password, string? role, bool disabled, string actor, CancellationToken ct, IReadOnlyList<string>? groups = null)
    {
        var errors = new List<PolicyError>();
        if (userName is null || !UserNamePattern().IsMatch(userName))
            errors.Add(new("userName", "1–100 letters, digits, '.', '_', '@' or '-'"));
        if (UserService.ValidatePassword(password) is { } weak)
            errors.Add(new("password", weak));
        if (role is null || !ConsoleRoles.IsKnown(role))
            errors.Add(new("role", $"must be one of: {string.Join(", ", ConsoleRoles.All)}"));
        ValidateGroups(groups, errors);
        if (errors.Count > 0)
            return new UserChange(null, errors, 400);
        // Case aside too: a local "Olga" must not stand beside "olga" (of single sign-on, or not).
        var folded = userName!.ToLowerInvariant();
        if (await db.Users.AnyAsync(u => u.UserName.ToLower() == folded, ct))
            return new UserChange(null, [new("userName", $"user '{userName}' already exists (names are compared ignoring case)")], 409);

        var now = time.GetUtcNow();
        var user = new ConsoleUser { Id = Guid.NewGuid(), UserName = userName!, PasswordHash = "", Role = role!, Disabled = disabled, CreatedAt = now, Groups = [.. (groups ?? []).Distinct()] };
        user.PasswordHash = UserService.HashPassword(user, password!);
        db.Users.Add(user);
        db.Record(now, actor, "create", "user", user.UserName, null, new { user.UserName, user.Role, user.Disabled, user.Groups, password = AuditLog.Redacted });
        await db.SaveChangesAsync(ct);
        return new UserChange(ToView(user), [], 201);
    }

    /// <summary>Changes the role, the disabled flag or the password (which also lifts a lockout); null leaves a field alone.</summary>
    public async Task<UserChange> UpdateAsync(string userName, string? password, string? role, bool? disabled, string actor, CancellationToken ct, IReadOnlyList<string>? groups = null)
    {
        var user = await db.Users.SingleOrDefaultAsync(u => u.UserName == userName, ct);
        if (user is null)
            return new UserChange(null, [new("userName", $"user '{userName}' does not exist")], 404);
        var errors = new List<PolicyError>();
        if (password is not null && user.SingleSignOn)
            errors.Add(new("password", "this account signs in with single sign-on and has no password"));
        else if (password is not null && UserService.ValidatePassword(password) is { } weak)
            errors.Add(new("password", weak));
        if (user.SingleSignOn && ((role is not null && role != user.Role) || groups is not null))
            errors.Add(new("role", "this account's role and groups come from its groups at the identity provider, at every sign-in: change them there (or disable the account here)"));
        if (role is not null && !ConsoleRoles.IsKnown(role))
            errors.Add(new("role", $"must be one of: {string.Join(", ", ConsoleRoles.All)}"));
        if (userName == actor && (disabled == true || (role is not null && role != ConsoleRoles.Admin && user.Role == ConsoleRoles.Admin)))
            errors.Add(new("userName", "you cannot disable or demote yourself; ask another Admin"));
        ValidateGroups(groups, errors);
        if (errors.Count > 0)
            return new UserChange(null, errors, 400);

        var before = new { user.UserName, user.Role, user.Disabled, Groups = user.Groups.ToList() };
        // What the user may do changes: every cookie and console tab issued before ends.
        if (password is not null || (disabled == true && !user.Disabled))
            user.SecurityStamp = ConsoleUser.NewSecurityStamp();
        if (password is not null)
            throttle.Forget(user.UserName); // a reset password starts with a clean slate everywhere
        user.Role = role ?? user.Role;
        user.Disabled = disabled ?? user.Disabled;
        if (groups is not null)
            user.Groups = [.. groups.Distinct()];
        if (password is not null)
        {
            user.PasswordHash = UserService.HashPassword(user, password);
            user.LockedUntil = null;
            user.FailedSignIns = 0;
        }
        db.Record(time.GetUtcNow(), actor, "update", "user", user.UserName, before,
            new { user.UserName, user.Role, user.Disabled, user.Groups, password = password is null ? null : AuditLog.Redacted });
        await db.SaveChangesAsync(ct);
        return new UserChange(ToView(user), [], 200);
    }

    /// <summary>Ends every session of the user (cookies and console tabs): done at every sign-out.</summary>
    public async Task RenewSecurityStampAsync(string userName, string actor, CancellationToken ct)
    {
        var user = await db.Users.SingleOrDefaultAsync(u => u.UserName == userName, ct);
        if (user is null)
            return;
        user.SecurityStamp = ConsoleUser.NewSecurityStamp();
        db.Record(time.GetUtcNow(), actor, "sign-out", "user", userName, null, null);
        await db.SaveChangesAsync(ct);
    }

    public async Task<UserChange> DeleteAsync(string userName, string actor, CancellationToken ct)
    {
        var user = await db.Users.SingleOrDefaultAsync(u => u.UserName == userName, ct);
        if (user is null)
            return new UserChange(null, [new("userName", $"user '{userName}' does not exist")], 404);
        if (userName == actor)
            return new UserChange(null, [new("userName", "you cannot delete yourself")], 400);
        var owned = await db.Agents.Where(a => a.Owner == userName).Select(a => a.Name).ToListAsync(ct);
        if (owned.Count > 0)
            return new UserChange(null, [new("userName", $"'{userName}' owns agents: {string.Join(", ", owned)}; give them another owner first")], 409);
        db.Users.Remove(user);
        db.Record(time.GetUtcNow(), actor, "delete", "user", userName, new { user.UserName, user.Role }, null);
        await db.SaveChangesAsync(ct);
        return new UserChange(null, [], 204);
    }

    private UserView ToView(ConsoleUser u) => new(u.UserName, u.Role, u.Disabled, u.LockedUntil > time.GetUtcNow(), u.CreatedAt, u.Groups, u.ExternalIssuer);

    private static void ValidateGroups(IReadOnlyList<string>? groups, List<PolicyError> errors)
    {
        if (groups is null)
            return;
        if (groups.Count > 50)
            errors.Add(new("groups", "at most 50 groups"));
        for (var i = 0; i < groups.Count; i++)
            if (groups[i] is null || !ConsoleGroupName.IsValid(groups[i]))
                errors.Add(new($"groups[{i}]", ConsoleGroupName.Rule));
    }
}
