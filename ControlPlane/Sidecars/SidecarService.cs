using System.Security.Cryptography;
using Airlock.ControlPlane.Data;
using Airlock.ControlPlane.Identity;
using Airlock.ControlPlane.Policies;
using Airlock.Contracts;
using Microsoft.EntityFrameworkCore;

namespace Airlock.ControlPlane.Sidecars;

public sealed record SidecarView(
    string Name,
    string Description,
    string Status,
    bool Online,
    long AppliedVersion,
    long CurrentVersion,
    DateTimeOffset? LastSeenAt,
    string? SoftwareVersion,
    string? Address,
    DateTimeOffset? EnrolledAt,
    DateTimeOffset? RevokedAt)
{
    public bool Drift => Status == "enrolled" && AppliedVersion != CurrentVersion;
}

public sealed record EnrollmentTokenView(Guid Id, string Sidecar, DateTimeOffset CreatedAt, DateTimeOffset ExpiresAt, DateTimeOffset? UsedAt, string CreatedBy);

/// <summary>Thrown for requests that are well-formed but cannot be done; mapped to a problem response.</summary>
public sealed class ApiProblemException(int status, string title, string detail) : Exception(detail)
{
    public int Status { get; } = status;
    public string Title { get; } = title;
}

/// <summary>Sidecar lifecycle: create, enrollment tokens, enroll, revoke, delete, status.</summary>
public sealed class SidecarService(
    AirlockDbContext db,
    SidecarPresence presence,
    PolicyChangeNotifier notifier,
    SnapshotSigningKeys keys,
    IConfiguration configuration,
    TimeProvider time)
{
    public static readonly TimeSpan DefaultTokenLifetime = TimeSpan.FromHours(1);
    public static readonly TimeSpan MaxTokenLifetime = TimeSpan.FromDays(7);

    public async Task<IReadOnlyList<SidecarView>> ListAsync(CancellationToken ct)
    {
        var sidecars = await db.Sidecars.AsNoTracking().OrderBy(s => s.Name).ToListAsync(ct);
        var versions = await db.SnapshotVersions.GroupBy(v => v.SidecarId).Select(g => new { g.Key, Max = g.Max(v => v.Version) }).ToDictionaryAsync(x => x.Key, x => x.Max, ct);
        return sidecars.Select(s => ToView(s, versions.GetValueOrDefault(s.Id))).ToList();
    }

    public async Task<SidecarView> GetAsync(string name, CancellationToken ct)
    {
        var s = await FindAsync(name, ct);
        var current = await db.SnapshotVersions.Where(v => v.SidecarId == s.Id).MaxAsync(v => (long?)v.Version, ct) ?? 0;
        return ToView(s, current);
    }

    public async Task<SidecarView> CreateAsync(string? name, string? description, string actor, CancellationToken ct)
    {
        if (name is null || !System.Text.RegularExpressions.Regex.IsMatch(name, "^[a-z0-9][a-z0-9._-]{0,62}$"))
            throw new ApiProblemException(400, "Invalid sidecar name", "name: lower-case letters, digits, '.', '_' and '-', at most 63 characters");
        if (await db.Sidecars.AnyAsync(s => s.Name == name, ct))
            throw new ApiProblemException(409, "Sidecar exists", $"sidecar '{name}' already exists");
        var sidecar = new Data.Sidecar { Id = Guid.NewGuid(), Name = name, Description = description ?? "", CreatedAt = time.GetUtcNow() };
        db.Sidecars.Add(sidecar);
        db.Record(sidecar.CreatedAt, actor, "create", "sidecar", name, null, new { name, description });
        await db.SaveChangesAsync(ct);
        presence.Notify();
        return ToView(sidecar, 0);
    }

    /// <summary>
    /// Issues a one-time enrollment token; only its hash is stored. For a sidecar that is already
    /// enrolled the token would hand its identity — and the target credentials sealed to it — to
    /// whoever uses it, so that takes <paramref name="reenroll"/>, and is audited as such.
    /// </summary>
    public async Task<(string Token, EnrollmentTokenView View)> CreateEnrollmentTokenAsync(string name, TimeSpan? lifetime, string actor, CancellationToken ct, bool reenroll = false)
    {
        var sidecar = await FindAsync(name, ct);
        if (sidecar.RevokedAt is not null)
            throw new ApiProblemException(409, "Sidecar revoked", $"sidecar '{name}' was revoked; create a new sidecar instead");
        if (sidecar.EnrolledAt is not null && !reenroll)
            throw new ApiProblemException(409, "Sidecar already enrolled",
                $"sidecar '{name}' is already enrolled: a new token would let whoever uses it take over that sidecar's identity and the credentials sealed to it. " +
                "To replace the sidecar on purpose (lost state, new host), create the token with \"reenroll\": true; the running sidecar is locked out when it is used.");
        var life = lifetime ?? DefaultTokenLifetime;
        if (life <= TimeSpan.Zero || life > MaxTokenLifetime)
            throw new ApiProblemException(400, "Invalid lifetime", $"ttlMinutes must be between 1 and {MaxTokenLifetime.TotalMinutes}");
        var token = Secrets.New(Secrets.EnrollmentTokenPrefix);
        var now = time.GetUtcNow();
        var entity = new EnrollmentToken { Id = Guid.NewGuid(), SidecarId = sidecar.Id, TokenHash = Secrets.Hash(token), CreatedBy = actor, CreatedAt = now, ExpiresAt = now + life };
        db.EnrollmentTokens.Add(entity);
        db.Record(now, actor, sidecar.EnrolledAt is null ? "create" : "create-reenrollment", "enrollment-token", name, null, new { sidecar = name, token = AuditLog.Redacted, entity.ExpiresAt });
        await db.SaveChangesAsync(ct);
        // The sidecar may have enrolled between the check above and this save: then this plain
        // token would outlive that enrollment's sweep. Take it back.
        if (!reenroll && await db.Sidecars.AsNoTracking().AnyAsync(s => s.Id == sidecar.Id && s.EnrolledAt != null, ct))
        {
            await db.EnrollmentTokens.Where(t => t.Id == entity.Id).ExecuteDeleteAsync(ct);
            throw new ApiProblemException(409, "Sidecar already enrolled", $"sidecar '{name}' was enrolled while this token was being created; create it with \"reenroll\": true to replace that sidecar");
        }
        return (token, new EnrollmentTokenView(entity.Id, name, now, entity.ExpiresAt, null, actor));
    }

    public async Task<IReadOnlyList<EnrollmentTokenView>> ListEnrollmentTokensAsync(string name, CancellationToken ct)
    {
        var sidecar = await FindAsync(name, ct);
        var tokens = await db.EnrollmentTokens.AsNoTracking().Where(t => t.SidecarId == sidecar.Id).ToListAsync(ct);
        return tokens.OrderBy(t => t.CreatedAt).Select(t => new EnrollmentTokenView(t.Id, name, t.CreatedAt, t.ExpiresAt, t.UsedAt, t.CreatedBy)).ToList();
    }

    public async Task DeleteEnrollmentTokenAsync(string name, Guid id, string actor, CancellationToken ct)
    {
        var sidecar = await FindAsync(name, ct);
        var token = await db.EnrollmentTokens.SingleOrDefaultAsync(t => t.Id == id && t.SidecarId == sidecar.Id, ct)
            ?? throw new ApiProblemException(404, "Not found", $"enrollment token {id} of sidecar '{name}' does not exist");
        db.EnrollmentTokens.Remove(token);
        db.Record(time.GetUtcNow(), actor, "delete", "enrollment-token", name, new { token.Id, token.ExpiresAt }, null);
        await db.SaveChangesAsync(ct);
    }

    /// <summary>Trades a valid one-time token for a credential; the token is spent even if the sidecar later fails.</summary>
    public async Task<EnrollResponse> EnrollAsync(EnrollRequest request, CancellationToken ct)
    {
        static ApiProblemException Refused(string detail) => new(401, "Enrollment refused", detail);
        if (string.IsNullOrEmpty(request.Token) || !request.Token.StartsWith(Secrets.EnrollmentTokenPrefix, StringComparison.Ordinal))
            throw Refused("the enrollment token is malformed");
        ValidatePublicKey(request.SigningPublicKey, "signingPublicKey");
        ValidatePublicKey(request.SealingPublicKey, "sealingPublicKey");

        var now = time.GetUtcNow();
        var hash = Secrets.Hash(request.Token);
        var token = await db.EnrollmentTokens.SingleOrDefaultAsync(t => t.TokenHash == hash, ct) ?? throw Refused("the enrollment token is not valid");
        if (token.UsedAt is not null)
            throw Refused("the enrollment token was already used; create a new one");
        if (token.ExpiresAt <= now)
            throw Refused($"the enrollment token expired at {token.ExpiresAt:O}; create a new one");
        var sidecar = await db.Sidecars.SingleAsync(s => s.Id == token.SidecarId, ct);
        if (sidecar.RevokedAt is not null)
            throw Refused($"sidecar '{sidecar.Name}' was revoked");

        // A token issued while the sidecar was not yet enrolled cannot replace it once it is (each
        // enrollment spends every outstanding token, so this only guards against a race).
        if (sidecar.EnrolledAt is { } enrolledAt && token.CreatedAt < enrolledAt)
            throw Refused($"sidecar '{sidecar.Name}' was enrolled after this token was issued; re-enrolling takes a token created with \"reenroll\": true");

        // One transaction: a failure anywhere below spends nothing (the sidecar may try again with the
        // same token), and a success leaves the identity stored, the token spent and the others swept
        // together. The sidecar's row is written first: it serialises enrollments of one sidecar (a
        // second waits for the first, then finds the credential changed), and every later lock is taken
        // in the same order, so two enrollments cannot deadlock.
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var previousKey = sidecar.SigningPublicKey;
        var credential = Secrets.New(Secrets.SidecarCredentialPrefix);
        var seen = sidecar.CredentialHash;
        var softwareVersion = request.SoftwareVersion.Length <= 50 ? request.SoftwareVersion : request.SoftwareVersion[..50];
        var enrolled = await db.Sidecars.Where(s => s.Id == sidecar.Id && s.CredentialHash == seen).ExecuteUpdateAsync(u => u
            .SetProperty(s => s.CredentialHash, Secrets.Hash(credential))
            .SetProperty(s => s.SigningPublicKey, request.SigningPublicKey)
            .SetProperty(s => s.SealingPublicKey, request.SealingPublicKey)
            .SetProperty(s => s.EnrolledAt, now)
            .SetProperty(s => s.SoftwareVersion, softwareVersion), ct);
        if (enrolled != 1)
            throw Refused($"sidecar '{sidecar.Name}' was enrolled by another request at the same moment; the enrollment token was already used");
        // Single use: the conditional update succeeds for one caller only.
        var spent = await db.EnrollmentTokens.Where(t => t.Id == token.Id && t.UsedAt == null)
            .ExecuteUpdateAsync(u => u.SetProperty(t => t.UsedAt, now), ct);
        if (spent != 1)
            throw Refused("the enrollment token was already used; create a new one");
        // Enrolling spends every other outstanding token of this sidecar: none can take it over later.
        await db.EnrollmentTokens.Where(t => t.SidecarId == sidecar.Id && t.UsedAt == null)
            .ExecuteUpdateAsync(u => u.SetProperty(t => t.UsedAt, now), ct);
        db.Entry(sidecar).State = EntityState.Detached;
        // Recordings keep the key they were signed with (see RecordedSession.SigningPublicKey): re-enrolling leaves them verifiable.
        db.Record(now, $"sidecar:{sidecar.Name}", previousKey is null ? "enroll" : "reenroll", "sidecar", sidecar.Name,
            previousKey is null ? null : new { signingKey = Secrets.KeyFingerprint(previousKey) },
            new { credential = AuditLog.Redacted, signingKey = Secrets.KeyFingerprint(request.SigningPublicKey), sealingKey = Secrets.KeyFingerprint(request.SealingPublicKey) });
        await db.SaveChangesAsync(ct);
        await transaction.CommitAsync(ct);
        if (previousKey is not null)
        {
            presence.Disconnect(sidecar.Id); // the replaced sidecar's connections end; its credential no longer works
            notifier.Publish(); // credentials are sealed again, to the new key
        }
        presence.Notify();

        var grpc = configuration["Airlock:PublicGrpcUrl"] ?? configuration["Kestrel:Endpoints:Grpc:Url"] ?? "http://127.0.0.1:5081";
        var published = await keys.GetPublishedKeysAsync(ct);
        return new EnrollResponse(sidecar.Id.ToString(), sidecar.Name, credential, grpc,
            published.Select(k => new SnapshotKeyDto(k.KeyId, k.PublicKey)).ToList());
    }

    /// <summary>Revokes a sidecar: its credential stops working and its open connections are closed.</summary>
    public async Task RevokeAsync(string name, string actor, CancellationToken ct)
    {
        var sidecar = await FindAsync(name, ct);
        if (sidecar.RevokedAt is not null)
            return;
        sidecar.RevokedAt = time.GetUtcNow();
        db.Record(sidecar.RevokedAt.Value, actor, "revoke", "sidecar", name, null, null);
        await db.SaveChangesAsync(ct);
        presence.Disconnect(sidecar.Id);
        notifier.Publish();
    }

    public async Task DeleteAsync(string name, string actor, CancellationToken ct)
    {
        var sidecar = await FindAsync(name, ct);
        var targets = await db.Targets.Where(t => t.SidecarId == sidecar.Id).Select(t => t.Name).ToListAsync(ct);
        if (targets.Count > 0)
            throw new ApiProblemException(409, "Sidecar in use", $"sidecar '{name}' still serves targets: {string.Join(", ", targets)}");
        await db.EnrollmentTokens.Where(t => t.SidecarId == sidecar.Id).ExecuteDeleteAsync(ct);
        await db.SnapshotVersions.Where(v => v.SidecarId == sidecar.Id).ExecuteDeleteAsync(ct);
        db.Sidecars.Remove(sidecar);
        db.Record(time.GetUtcNow(), actor, "delete", "sidecar", name, new { name }, null);
        await db.SaveChangesAsync(ct);
        presence.Disconnect(sidecar.Id);
    }

    private async Task<Data.Sidecar> FindAsync(string name, CancellationToken ct) =>
        await db.Sidecars.SingleOrDefaultAsync(s => s.Name == name, ct)
        ?? throw new ApiProblemException(404, "Not found", $"sidecar '{name}' does not exist");

    private SidecarView ToView(Data.Sidecar s, long current) => new(
        s.Name,
        s.Description,
        s.RevokedAt is not null ? "revoked" : s.EnrolledAt is not null ? "enrolled" : "pending",
        s.RevokedAt is null && presence.IsOnline(s.Id),
        s.AppliedVersion,
        current,
        s.LastSeenAt,
        s.SoftwareVersion,
        s.Address,
        s.EnrolledAt,
        s.RevokedAt);

    private static void ValidatePublicKey(byte[]? spki, string field)
    {
        try
        {
            using var key = ECDiffieHellman.Create();
            key.ImportSubjectPublicKeyInfo(spki ?? throw new CryptographicException(), out _);
            if (key.KeySize != 256)
                throw new CryptographicException();
        }
        catch (Exception e) when (e is CryptographicException or PlatformNotSupportedException)
        {
            throw new ApiProblemException(400, "Invalid public key", $"{field} must be a P-256 SubjectPublicKeyInfo (DER)");
        }
    }
}
