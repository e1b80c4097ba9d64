using Airlock.ControlPlane.Data;
using Airlock.ControlPlane.Identity;
using Airlock.Sidecar.Policy;
using Airlock.Sidecar.Policy.Guardrails;
using Airlock.Sidecar.Policy.Identity;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Airlock.ControlPlane.Policies;

public sealed class SnapshotOptions
{
    /// <summary>How long a sidecar may enforce a snapshot without hearing from the control plane.</summary>
    [System.ComponentModel.DataAnnotations.Range(10, 7 * 24 * 3600)]
    public int TtlSeconds { get; set; } = 6 * 3600;

    /// <summary>Re-sign and resend this often (default: a quarter of the TTL).</summary>
    public int? RefreshSeconds { get; set; }

    public TimeSpan Refresh => TimeSpan.FromSeconds(RefreshSeconds ?? Math.Max(1, TtlSeconds / 4));
}

/// <summary>
/// Compiles what concerns one sidecar — its targets, the roles that reach them, their agents and
/// rules — into a <see cref="PolicySnapshot"/>, assigns a version per distinct content and signs it.
/// </summary>
public sealed class SnapshotCompiler(
    AirlockDbContext db,
    SnapshotSigningKeys keys,
    IDataProtectionProvider dataProtection,
    IOptions<SnapshotOptions> options,
    IOptions<AgentTokenOptions> tokenOptions,
    TimeProvider time)
{
    private readonly IDataProtector _credentials = dataProtection.CreateProtector(PolicyStore.CredentialPurpose);
    private readonly IDataProtector _maskingKeys = dataProtection.CreateProtector(MaskingKeyPurpose);
    public const string MaskingKeyPurpose = "Airlock.Target.MaskingKey.v1";

    // Versions are assigned under one lock per process so two streams of one sidecar never race
    // for the same number; the unique index backs this up across replicas.
    private static readonly SemaphoreSlim _versionLock = new(1, 1);

    public async Task<SignedSnapshot?> CompileAndSignAsync(Guid sidecarId, CancellationToken ct)
    {
        var sidecar = await db.Sidecars.SingleOrDefaultAsync(s => s.Id == sidecarId, ct);
        if (sidecar is null || sidecar.RevokedAt is not null || sidecar.SealingPublicKey is null)
            return null;

        var snapshot = await CompileAsync(sidecar, ct);
        var payload = SnapshotCodec.Encode(snapshot);
        var hash = SnapshotCodec.Hash(payload);

        long version;
        await _versionLock.WaitAsync(ct);
        try
        {
            var latest = await db.SnapshotVersions.AsNoTracking()
                .Where(v => v.SidecarId == sidecarId).OrderByDescending(v => v.Version).FirstOrDefaultAsync(ct);
            if (latest is not null && latest.ContentHash == hash)
            {
                version = latest.Version;
            }
            else
            {
                version = (latest?.Version ?? 0) + 1;
                db.SnapshotVersions.Add(new SnapshotVersion { SidecarId = sidecarId, Version = version, ContentHash = hash, CreatedAt = time.GetUtcNow() });
                await db.SaveChangesAsync(ct);
            }
        }
        finally
        {
            _versionLock.Release();
        }

        var (keyId, key) = await keys.GetSigningKeyAsync(ct);
        using (key)
            return SnapshotCodec.Sign(snapshot, version, time.GetUtcNow(), options.Value.TtlSeconds, keyId, key);
    }

    public async Task<long> CurrentVersionAsync(Guid sidecarId, CancellationToken ct) =>
        await db.SnapshotVersions.Where(v => v.SidecarId == sidecarId).MaxAsync(v => (long?)v.Version, ct) ?? 0;

    private async Task<PolicySnapshot> CompileAsync(Data.Sidecar sidecar, CancellationToken ct)
    {
        var targets = await db.Targets.Where(t => t.SidecarId == sidecar.Id).OrderBy(t => t.Name).ToListAsync(ct);
        var roles = await db.Roles.AsNoTracking().Include(r => r.Rules).OrderBy(r => r.Name).ToListAsync(ct);
        var agents = await db.Agents.AsNoTracking().Include(a => a.Role).OrderBy(a => a.Name).ToListAsync(ct);

        var sealingKeyId = Secrets.KeyFingerprint(sidecar.SealingPublicKey!);
        var sealedAny = false;
        var targetPolicies = new List<TargetPolicy>();
        foreach (var t in targets)
        {
            if (t.CredentialProtected is not null && t.SealedForKey != sealingKeyId)
            {
                // Seal once per (credential, sidecar key) and keep it: a fresh seal every compile
                // would change the content hash and bump the version for nothing.
                t.CredentialSealed = CredentialSeal.Seal(_credentials.Unprotect(t.CredentialProtected), sidecar.Id.ToString(), sidecar.SealingPublicKey!);
                t.SealedForKey = sealingKeyId;
                sealedAny = true;
            }
            if (t.MaskingKeyProtected is null || t.MaskingKeySealedFor != sealingKeyId)
            {
                // One random key per target for the hash masking strategy: equal values hash alike across
                // the target's tables (joins work), and differently on every other target.
                t.MaskingKeyProtected ??= _maskingKeys.Protect(Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)));
                t.MaskingKeySealed = CredentialSeal.Seal(_maskingKeys.Unprotect(t.MaskingKeyProtected), sidecar.Id.ToString(), sidecar.SealingPublicKey!);
                t.MaskingKeySealedFor = sealingKeyId;
                sealedAny = true;
            }
            targetPolicies.Add(new TargetPolicy(
                t.Name,
                t.Kind,
                new SortedDictionary<string, string>(t.Labels, StringComparer.Ordinal),
                t.ListenPort,
                new UpstreamPolicy(t.UpstreamHost, t.UpstreamPort, t.UpstreamDatabase, t.UpstreamUsername, t.UpstreamTlsMode,
                    t.CredentialReference, t.CredentialProtected is null ? null : t.CredentialSealed,
                    t.UpstreamAuth.Length == 0 ? null : [.. t.UpstreamAuth.Split(',')]),
                t.AllowCleartextOnLoopback,
                t.MaskingKeySealed));
        }
        if (sealedAny)
            await db.SaveChangesAsync(ct);

        var roleReach = new List<RolePolicy>();
        foreach (var role in roles)
        {
            var reached = targets.Where(t => role.Grants.Any(g => Grants(g, t))).Select(t => t.Name).ToList();
            if (reached.Count == 0)
                continue;
            var rules = RulesFor(role, reached);
            roleReach.Add(new RolePolicy(role.Name, reached, rules));
        }

        // Approved time-boxed grants on this sidecar's targets, each with its elevated role's rules for its target.
        var now = time.GetUtcNow();
        var served = targets.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        var grantRows = await db.Approvals.AsNoTracking()
            .Where(a => a.Kind == ApprovalKind.Grant && a.Status == ApprovalStatus.Approved && a.ValidUntil > now)
            .OrderBy(a => a.Id).ToListAsync(ct);
        var grants = new List<TemporaryGrant>();
        foreach (var g in grantRows.Where(g => served.Contains(g.Target)))
        {
            var agent = agents.FirstOrDefault(a => a.Name == g.Agent);
            var elevated = roles.FirstOrDefault(r => r.Name == g.GrantRole);
            if (agent is null || elevated is null)
                continue; // renamed or removed since: the grant lapses with them
            grants.Add(new TemporaryGrant(g.Id, agent.Id.ToString(), agent.Name, g.Target, elevated.Name, g.ValidUntil!.Value, RulesFor(elevated, [g.Target])));
        }

        var reachingRoles = roleReach.Select(r => r.Name).ToHashSet(StringComparer.Ordinal);
        var granted = grants.Select(g => g.AgentId).ToHashSet(StringComparer.Ordinal);
        var agentPolicies = agents
            .Where(a => a.Role is not null && (reachingRoles.Contains(a.Role.Name) || granted.Contains(a.Id.ToString())))
            .Select(a => new AgentPolicy(a.Id.ToString(), a.Name, a.Role!.Name, a.Enabled))
            .ToList();

        return new PolicySnapshot(
            sidecar.Id.ToString(),
            sidecar.Name,
            targetPolicies,
            roleReach,
            agentPolicies,
            await keys.GetPublishedKeysAsync(ct),
            await CompileIdentityAsync(agentPolicies, ct),
            grants.Count == 0 ? null : grants);
    }

    /// <summary>
    /// The identity part of a snapshot as a sidecar serving every agent would get it, with those
    /// agents: what the console's "test a token" box validates a pasted token against.
    /// </summary>
    public async Task<(IdentityPolicy Identity, IReadOnlyList<AgentPolicy> Agents)> CompileIdentityForEveryAgentAsync(CancellationToken ct)
    {
        var rows = await db.Agents.AsNoTracking().Include(a => a.Role).OrderBy(a => a.Name).ToListAsync(ct);
        // Ids formatted here, as the snapshot does (in SQL a provider may format a GUID otherwise).
        var agents = rows.Select(a => new AgentPolicy(a.Id.ToString(), a.Name, a.Role!.Name, a.Enabled)).ToList();
        return (await CompileIdentityAsync(agents, ct), agents);
    }

    /// <summary>Airlock's JWKS, and each trusted issuer with its keys and the bindings to agents this sidecar knows.</summary>
    private async Task<IdentityPolicy> CompileIdentityAsync(List<AgentPolicy> agents, CancellationToken ct)
    {
        var known = agents.Select(a => a.Name).ToHashSet(StringComparer.Ordinal);
        // SAML providers are exchanged at the control plane's token endpoint; sidecars see only JWT issuers.
        var issuers = await db.TrustedIssuers.AsNoTracking().Where(t => t.Kind == TrustedIssuerKinds.Oidc).OrderBy(t => t.Name).ToListAsync(ct);
        var trusted = issuers
            .Select(t => new TrustedIssuerPolicy(
                t.Name,
                t.Issuer,
                [.. t.Audiences],
                Jwks.Parse(t.StaticJwks ?? t.FetchedJwks),
                t.Bindings.Where(b => known.Contains(b.Agent))
                    .Select(b => new BindingPolicy(b.Name, b.Agent, b.Conditions.Select(c => new ClaimCondition(c.Claim, c.Match, [.. c.Values])).ToList()))
                    .ToList()))
            .Where(t => t.Bindings.Count > 0)
            .ToList();
        var o = tokenOptions.Value;
        return new IdentityPolicy(o.Issuer!, o.Audience, await keys.GetTokenJwksAsync(ct), trusted);
    }

    /// <summary>
    /// The rules of <paramref name="role"/> as a snapshot carries them for the targets it reaches: its
    /// baseline's rules first, then its own in order (a rule narrowed to targets applies only to those).
    /// The simulator uses the same.
    /// </summary>
    public static List<RulePolicy> RulesFor(Role role, IReadOnlyCollection<string> reached)
    {
        var baseline = role.Baseline is { } name ? Baselines.Rules(name) ?? [] : [];
        return baseline.Concat(role.Rules
                .OrderBy(r => r.Position)
                .Where(r => r.Targets.Count == 0 || r.Targets.Any(reached.Contains))
                .Select(r => new RulePolicy(
                    r.Name,
                    r.Action,
                    r.Targets.Where(reached.Contains).ToList(),
                    new RuleMatch(r.Match.Classes, r.Match.Commands, r.Match.Tables, r.Match.Pattern, r.Match.Functions ?? [], r.Match.Flags ?? []),
                    r.Message,
                    r.Mask is { } m ? new MaskSpec(m.Columns, m.Detectors, m.Strategy, m.KeepLast, m.Mode) : null,
                    r.Approval is { } a ? new ApprovalSpec(a.Mode, a.Approvals, a.Group, a.TimeoutSeconds, a.WindowMinutes) : null)))
            .ToList();
    }

    /// <summary>A grant reaches a target by name, or by a selector whose every label matches.</summary>
    public static bool Grants(GrantData grant, Target target) =>
        grant.Target is not null
            ? string.Equals(grant.Target, target.Name, StringComparison.Ordinal)
            : grant.Selector is { Count: > 0 } selector
              && selector.All(kv => target.Labels.TryGetValue(kv.Key, out var v) && string.Equals(v, kv.Value, StringComparison.Ordinal));
}
