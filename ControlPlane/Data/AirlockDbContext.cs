using System.Text.Json;
using Microsoft.AspNetCore.DataProtection.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.ChangeTracking;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;

namespace Airlock.ControlPlane.Data;

/// <summary>
/// The one EF Core model. Each provider has a subclass only so that it can own its migrations
/// (<see cref="SqliteAirlockDbContext"/>, <see cref="PostgresAirlockDbContext"/>).
/// </summary>
public abstract class AirlockDbContext(DbContextOptions options) : DbContext(options), IDataProtectionKeyContext
{
    public DbSet<ConsoleUser> Users => Set<ConsoleUser>();
    public DbSet<ApiKey> ApiKeys => Set<ApiKey>();
    public DbSet<Agent> Agents => Set<Agent>();
    public DbSet<Role> Roles => Set<Role>();
    public DbSet<Rule> Rules => Set<Rule>();
    public DbSet<Target> Targets => Set<Target>();
    public DbSet<Sidecar> Sidecars => Set<Sidecar>();
    public DbSet<EnrollmentToken> EnrollmentTokens => Set<EnrollmentToken>();
    public DbSet<SnapshotVersion> SnapshotVersions => Set<SnapshotVersion>();
    public DbSet<SigningKey> SigningKeys => Set<SigningKey>();
    public DbSet<AuditEntry> AuditLog => Set<AuditEntry>();
    public DbSet<StatementStat> StatementStats => Set<StatementStat>();
    public DbSet<RefusedConnection> RefusedConnections => Set<RefusedConnection>();
    public DbSet<TargetConnectionTest> TargetConnectionTests => Set<TargetConnectionTest>();
    public DbSet<TrustedIssuer> TrustedIssuers => Set<TrustedIssuer>();
    public DbSet<UsedAssertion> UsedAssertions => Set<UsedAssertion>();
    public DbSet<RecordedSession> Sessions => Set<RecordedSession>();
    public DbSet<SessionSegment> SessionSegments => Set<SessionSegment>();
    public DbSet<SessionEvent> SessionEvents => Set<SessionEvent>();
    public DbSet<SessionHead> SessionHeads => Set<SessionHead>();
    public DbSet<SessionEventChunk> SessionEventChunks => Set<SessionEventChunk>();
    public DbSet<DataProtectionKey> DataProtectionKeys => Set<DataProtectionKey>();
    public DbSet<Approval> Approvals => Set<Approval>();
    public DbSet<ApprovalVote> ApprovalVotes => Set<ApprovalVote>();
    public DbSet<Webhook> Webhooks => Set<Webhook>();
    public DbSet<WebhookDelivery> WebhookDeliveries => Set<WebhookDelivery>();

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        // OpenIddict's applications (one per agent with a credential), authorizations, scopes, tokens.
        modelBuilder.UseOpenIddict();
        modelBuilder.Entity<ConsoleUser>(e =>
        {
            e.HasIndex(u => u.UserName).IsUnique();
            e.Property(u => u.UserName).HasMaxLength(100);
            e.Property(u => u.Role).HasMaxLength(20);
            Json(e.Property(u => u.Groups));
            e.Ignore(u => u.SingleSignOn);
            e.HasIndex(u => new { u.ExternalIssuer, u.ExternalSubject }).IsUnique();
        });
        modelBuilder.Entity<Approval>(e =>
        {
            e.HasIndex(a => new { a.Status, a.ExpiresAt });
            e.HasIndex(a => a.Fingerprint);
            e.Property(a => a.Kind).HasConversion<string>().HasMaxLength(20);
            e.Property(a => a.Status).HasConversion<string>().HasMaxLength(20);
            Json(e.Property(a => a.Statements));
            Json(e.Property(a => a.Parameters));
            e.HasMany(a => a.Votes).WithOne().HasForeignKey(v => v.ApprovalId).OnDelete(DeleteBehavior.Cascade);
        });
        modelBuilder.Entity<ApprovalVote>(e => e.HasIndex(v => new { v.ApprovalId, v.Voter }).IsUnique());
        modelBuilder.Entity<Webhook>(e =>
        {
            e.HasIndex(w => w.Name).IsUnique();
            e.Property(w => w.Name).HasMaxLength(100);
        });
        modelBuilder.Entity<WebhookDelivery>(e =>
        {
            e.HasIndex(d => new { d.Status, d.NextAttemptAt });
            e.HasIndex(d => d.WebhookId);
            e.Property(d => d.Status).HasConversion<string>().HasMaxLength(20);
        });
        modelBuilder.Entity<ApiKey>(e =>
        {
            e.HasIndex(k => k.KeyHash).IsUnique();
            e.Property(k => k.Name).HasMaxLength(100);
        });
        modelBuilder.Entity<Agent>(e =>
        {
            e.HasIndex(a => a.Name).IsUnique();
            e.Property(a => a.Name).HasMaxLength(100);
            e.HasOne(a => a.Role).WithMany().HasForeignKey(a => a.RoleId).OnDelete(DeleteBehavior.Restrict);
        });
        modelBuilder.Entity<Role>(e =>
        {
            e.HasIndex(r => r.Name).IsUnique();
            e.Property(r => r.Name).HasMaxLength(100);
            Json(e.Property(r => r.Grants));
            e.HasMany(r => r.Rules).WithOne().HasForeignKey(r => r.RoleId).OnDelete(DeleteBehavior.Cascade);
        });
        modelBuilder.Entity<Rule>(e =>
        {
            e.HasIndex(r => new { r.RoleId, r.Name }).IsUnique();
            e.Property(r => r.Name).HasMaxLength(100);
            Json(e.Property(r => r.Targets));
            Json(e.Property(r => r.Match));
            Json(e.Property(r => r.Mask));
            Json(e.Property(r => r.Approval));
        });
        modelBuilder.Entity<Target>(e =>
        {
            e.HasIndex(t => t.Name).IsUnique();
            e.Property(t => t.Name).HasMaxLength(100);
            Json(e.Property(t => t.Labels));
            e.HasOne(t => t.Sidecar).WithMany().HasForeignKey(t => t.SidecarId).OnDelete(DeleteBehavior.Restrict);
        });
        modelBuilder.Entity<Sidecar>(e =>
        {
            e.HasIndex(s => s.Name).IsUnique();
            e.HasIndex(s => s.CredentialHash).IsUnique();
            e.Property(s => s.Name).HasMaxLength(100);
        });
        modelBuilder.Entity<EnrollmentToken>(e => e.HasIndex(t => t.TokenHash).IsUnique());
        modelBuilder.Entity<SnapshotVersion>(e => e.HasIndex(v => new { v.SidecarId, v.Version }).IsUnique());
        modelBuilder.Entity<AuditEntry>(e =>
        {
            e.HasIndex(a => a.At);
            // An object's version is its latest entry; the audit page filters by object and by actor.
            e.HasIndex(a => new { a.EntityType, a.EntityName, a.Id });
            e.HasIndex(a => new { a.Actor, a.Id });
        });
        modelBuilder.Entity<SigningKey>(e => e.HasIndex(k => k.Purpose));
        modelBuilder.Entity<StatementStat>(e => e.HasKey(s => new { s.Hour, s.Outcome }));
        modelBuilder.Entity<TargetConnectionTest>(e =>
        {
            e.Property(t => t.Target).HasMaxLength(100);
            e.Property(t => t.Detail).HasMaxLength(1000);
        });
        modelBuilder.Entity<RefusedConnection>(e =>
        {
            e.HasIndex(r => r.At);
            e.Property(r => r.SidecarName).HasMaxLength(63);
            e.Property(r => r.Target).HasMaxLength(100);
            e.Property(r => r.Agent).HasMaxLength(100);
            e.Property(r => r.Client).HasMaxLength(64);
            e.Property(r => r.SqlState).HasMaxLength(5);
            e.Property(r => r.Reason).HasMaxLength(500);
        });
        modelBuilder.Entity<RecordedSession>(e =>
        {
            e.HasIndex(s => s.StartedAt);
            e.HasIndex(s => new { s.Agent, s.StartedAt });
            e.HasIndex(s => new { s.Target, s.StartedAt });
            e.HasIndex(s => s.Status);
        });
        modelBuilder.Entity<SessionSegment>(e => e.HasKey(x => new { x.SessionId, x.FirstSeq }));
        modelBuilder.Entity<SessionEvent>(e => e.HasKey(x => new { x.SessionId, x.Seq }));
        modelBuilder.Entity<SessionHead>(e => e.HasKey(x => new { x.SessionId, x.Seq }));
        modelBuilder.Entity<SessionEventChunk>(e => e.HasKey(x => new { x.SessionId, x.Seq, x.Index }));
        modelBuilder.Entity<UsedAssertion>(e =>
        {
            e.Property(u => u.Id).HasMaxLength(200);
            e.HasIndex(u => u.ExpiresAt);
        });
        modelBuilder.Entity<TrustedIssuer>(e =>
        {
            e.HasIndex(t => t.Name).IsUnique();
            e.Property(t => t.Name).HasMaxLength(100);
            Json(e.Property(t => t.Audiences));
            Json(e.Property(t => t.Bindings));
        });
    }

    protected override void ConfigureConventions(ModelConfigurationBuilder configurationBuilder)
    {
        // SQLite cannot compare or order DateTimeOffset text; a UTC tick count works on both
        // sides of the comparison. PostgreSQL keeps timestamptz (overridden there).
        configurationBuilder.Properties<DateTimeOffset>().HaveConversion<DateTimeOffsetToBinaryConverter>();
    }

    private static readonly JsonSerializerOptions _json = new(JsonSerializerDefaults.Web);

    /// <summary>Stores a value as JSON text and compares it by its JSON, so equal content is "unchanged".</summary>
    private static void Json<T>(PropertyBuilder<T> property)
    {
        property.HasConversion(
            v => JsonSerializer.Serialize(v, _json),
            s => JsonSerializer.Deserialize<T>(s, _json)!,
            new ValueComparer<T>(
                (a, b) => JsonSerializer.Serialize(a, _json) == JsonSerializer.Serialize(b, _json),
                v => JsonSerializer.Serialize(v, _json).GetHashCode(StringComparison.Ordinal),
                v => JsonSerializer.Deserialize<T>(JsonSerializer.Serialize(v, _json), _json)!));
    }
}

public sealed class SqliteAirlockDbContext(DbContextOptions<SqliteAirlockDbContext> options) : AirlockDbContext(options);

public sealed class PostgresAirlockDbContext(DbContextOptions<PostgresAirlockDbContext> options) : AirlockDbContext(options)
{
    protected override void ConfigureConventions(ModelConfigurationBuilder configurationBuilder)
    {
        // timestamptz natively; no conversion.
    }
}
