using Airlock.ControlPlane.Data;
using Microsoft.EntityFrameworkCore;

namespace Airlock.ControlPlane.Identity;

/// <summary>
/// First start on an empty store: creates the bootstrap console admin and an admin API key, from
/// <c>AIRLOCK_BOOTSTRAP_ADMIN_PASSWORD</c> / <c>AIRLOCK_BOOTSTRAP_API_KEY</c> when set (automation),
/// else generated and printed once on standard output — never to the log.
/// </summary>
internal sealed class Bootstrapper(AirlockDbContext db, IConfiguration configuration, TimeProvider time, ILogger<Bootstrapper> logger)
{
    public const string AdminUserName = "admin";

    public async Task RunAsync(CancellationToken ct)
    {
        if (await db.Users.AnyAsync(ct) || await db.ApiKeys.AnyAsync(ct))
            return;

        var now = time.GetUtcNow();
        var password = configuration["AIRLOCK_BOOTSTRAP_ADMIN_PASSWORD"];
        var generatedPassword = string.IsNullOrEmpty(password);
        if (generatedPassword)
            password = Secrets.NewPassword();
        else if (UserService.ValidatePassword(password) is { } problem)
            throw new StartupException($"AIRLOCK_BOOTSTRAP_ADMIN_PASSWORD: {problem}");

        var apiKey = configuration["AIRLOCK_BOOTSTRAP_API_KEY"];
        var generatedKey = string.IsNullOrEmpty(apiKey);
        if (generatedKey)
            apiKey = Secrets.New(Secrets.ApiKeyPrefix);
        else if (!apiKey!.StartsWith(Secrets.ApiKeyPrefix, StringComparison.Ordinal) || apiKey.Length < 32)
            throw new StartupException($"AIRLOCK_BOOTSTRAP_API_KEY: must start with '{Secrets.ApiKeyPrefix}' and have at least 32 characters");

        var admin = new ConsoleUser { Id = Guid.NewGuid(), UserName = AdminUserName, PasswordHash = "", Role = ConsoleRoles.Admin, CreatedAt = now };
        admin.PasswordHash = UserService.HashPassword(admin, password!);
        db.Users.Add(admin);
        db.ApiKeys.Add(new ApiKey
        {
            Id = Guid.NewGuid(),
            Name = "bootstrap",
            Prefix = apiKey![..8],
            KeyHash = Secrets.Hash(apiKey),
            Role = ConsoleRoles.Admin,
            CreatedBy = "bootstrap",
            CreatedAt = now,
        });
        db.AuditLog.Add(new AuditEntry { At = now, Actor = "bootstrap", Action = "create", EntityType = "user", EntityName = AdminUserName });
        db.AuditLog.Add(new AuditEntry { At = now, Actor = "bootstrap", Action = "create", EntityType = "api-key", EntityName = "bootstrap" });
        await db.SaveChangesAsync(ct);

        logger.LogInformation("Empty store: created bootstrap admin '{User}' and API key 'bootstrap'", AdminUserName);
        if (generatedPassword || generatedKey)
        {
            // Printed once, to the terminal only. Store them now: they are not shown again.
            Console.WriteLine("=== Airlock bootstrap credentials (shown once) ===");
            if (generatedPassword)
                Console.WriteLine($"console admin: {AdminUserName} / {password}");
            if (generatedKey)
                Console.WriteLine($"admin API key: {apiKey}");
            Console.WriteLine("==================================================");
        }
    }
}
