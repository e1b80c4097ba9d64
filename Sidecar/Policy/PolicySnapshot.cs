namespace Airlock.Sidecar.Policy;

/// <summary>
/// Everything one sidecar needs to enforce policy, compiled by the control plane. Immutable; the
/// sidecar swaps whole snapshots atomically. Lists are sorted by name so that the canonical JSON of
/// equal content is byte-identical (the content hash depends on it).
/// </summary>
public sealed record PolicySnapshot(
    string SidecarId,
    string SidecarName,
    IReadOnlyList<TargetPolicy> Targets,
    IReadOnlyList<RolePolicy> Roles,
    IReadOnlyList<AgentPolicy> Agents,
    IReadOnlyList<SnapshotKey> SnapshotKeys,
    Identity.IdentityPolicy? Identity = null,
    IReadOnlyList<TemporaryGrant>? Grants = null);

/// <summary>
/// An approved, time-boxed elevation: until <see cref="ExpiresAt"/> the agent reaches
/// <see cref="Target"/> and its statements there are judged by <see cref="Rules"/> (the elevated
/// role's) instead of its own role's. The sidecar enforces the expiry by its own clock; masking
/// stays its own role's.
/// </summary>
public sealed record TemporaryGrant(long RequestId, string AgentId, string Agent, string Target, string Role, DateTimeOffset ExpiresAt, IReadOnlyList<RulePolicy> Rules)
{
    /// <summary>The grant of <paramref name="agentId"/> on <paramref name="target"/> in force at <paramref name="now"/> (the longest-lasting), or null.</summary>
    public static TemporaryGrant? Active(PolicySnapshot policy, string agentId, string target, DateTimeOffset now)
    {
        TemporaryGrant? active = null;
        foreach (var g in policy.Grants ?? [])
            if (g.AgentId == agentId && g.Target == target && g.ExpiresAt > now && (active is null || g.ExpiresAt > active.ExpiresAt))
                active = g;
        return active;
    }

    /// <summary>
    /// The role whose rules judge <paramref name="agent"/>'s statements on <paramref name="target"/> at <paramref name="now"/>:
    /// a temporary grant's in force (given in <paramref name="grant"/>), else the agent's own; null when the policy has neither.
    /// It may not reach the target: the caller decides what that means (refused at connect, nothing allowed later).
    /// </summary>
    public static RolePolicy? RoleInForce(PolicySnapshot policy, AgentPolicy agent, string target, DateTimeOffset now, out TemporaryGrant? grant)
    {
        grant = Active(policy, agent.Id, target, now);
        return grant?.AsRole() ?? policy.Roles.FirstOrDefault(r => r.Name == agent.Role);
    }

    /// <summary>The grant as a role the rule set compiles (its rules, on its one target).</summary>
    public RolePolicy AsRole() => new($"{Role} (grant #{RequestId})", [Target], Rules);
}

/// <summary>A target served by this sidecar.</summary>
/// <param name="ListenPort">Port of the sidecar's listener for this target.</param>
/// <param name="SealedMaskingKey">The target's key for the <c>hash</c> masking strategy, sealed to this sidecar like a stored credential.</param>
public sealed record TargetPolicy(
    string Name,
    string Kind,
    IReadOnlyDictionary<string, string> Labels,
    int ListenPort,
    UpstreamPolicy Upstream,
    bool AllowCleartextOnLoopback = false,
    string? SealedMaskingKey = null);

/// <summary>How the sidecar reaches the target.</summary>
/// <param name="CredentialReference"><c>env:NAME</c> or <c>file:/path</c>, resolved only at the sidecar.</param>
/// <param name="SealedCredential">A stored credential sealed to this sidecar's sealing key (see <see cref="CredentialSeal"/>).</param>
/// <param name="Auth">
/// Authentication methods the sidecar may use upstream (libpq <c>require_auth</c> names); null: the
/// default — SCRAM-SHA-256 only, or none only when no credential is configured.
/// </param>
public sealed record UpstreamPolicy(
    string Host,
    int Port,
    string Database,
    string Username,
    string TlsMode,
    string? CredentialReference,
    string? SealedCredential,
    IReadOnlyList<string>? Auth = null);

/// <summary>A role as far as it reaches this sidecar's targets.</summary>
public sealed record RolePolicy(string Name, IReadOnlyList<string> Targets, IReadOnlyList<RulePolicy> Rules);

/// <summary>A rule: what it matches, what it does (see <see cref="Guardrails.RuleSet"/>).</summary>
public sealed record RulePolicy(
    string Name,
    string Action,
    IReadOnlyList<string> Targets,
    RuleMatch Match,
    string? Message,
    MaskSpec? Mask,
    ApprovalSpec? Approval);

/// <summary>What a rule matches: every criterion given must hold (any listed value of it); none given matches every statement (but an allowing rule matches an <c>unknown</c> statement only when it lists that class).</summary>
/// <param name="Functions">Functions called (folded: lower case, no <c>pg_catalog.</c>).</param>
/// <param name="Flags">Classifier flags in snake_case (<c>unfiltered_write</c>, <c>file_access</c> …).</param>
public sealed record RuleMatch(
    IReadOnlyList<string> Classes,
    IReadOnlyList<string> Commands,
    IReadOnlyList<string> Tables,
    string? Pattern,
    IReadOnlyList<string>? Functions = null,
    IReadOnlyList<string>? Flags = null);

/// <param name="Mode">How far a masked column may be used (<see cref="Masking.MaskModes"/>): <c>default</c>, <c>strict</c> or <c>output_only</c>.</param>
public sealed record MaskSpec(IReadOnlyList<string> Columns, IReadOnlyList<string> Detectors, string Strategy, int? KeepLast, string? Mode = null);

/// <param name="Approvals">How many approvers of <paramref name="Group"/> (any Approver or Admin when null) must approve.</param>
/// <param name="TimeoutSeconds">How long a request waits for its decision.</param>
/// <param name="WindowMinutes">Fail-fast only: how long after approval the identical statement runs (any number of times); null: once.</param>
public sealed record ApprovalSpec(string Mode, int Approvals, string? Group, int TimeoutSeconds, int? WindowMinutes = null);

public sealed record AgentPolicy(string Id, string Name, string Role, bool Enabled);

/// <summary>A control-plane snapshot signing key (SPKI, DER) the sidecar trusts.</summary>
public sealed record SnapshotKey(string KeyId, byte[] PublicKey);

/// <summary>Names shared by the policy document and the snapshot.</summary>
public static class RuleActions
{
    public const string Allow = "allow";
    public const string Block = "block";
    public const string RequireApproval = "require_approval";
    public const string Mask = "mask";

    public static IReadOnlyList<string> All { get; } = [Allow, Block, RequireApproval, Mask];
}

public static class StatementClasses
{
    public static IReadOnlyList<string> All { get; } = ["read", "write", "ddl", "dcl", "admin", "unknown"];
}

public static class UpstreamTlsModes
{
    public static IReadOnlyList<string> All { get; } = ["disable", "prefer", "require", "verify-full"];
}

/// <summary>libpq's <c>require_auth</c> names of the methods the sidecar speaks upstream.</summary>
public static class UpstreamAuthMethods
{
    public const string Password = "password";
    public static IReadOnlyList<string> All { get; } = ["scram-sha-256", "md5", Password, "none"];
}

public static class MaskStrategies
{
    public static IReadOnlyList<string> All { get; } = ["redact", "partial", "hash", "null"];
}

/// <summary>The two ways a <c>require_approval</c> rule treats a statement.</summary>
public static class ApprovalModes
{
    /// <summary>The sidecar keeps the statement and runs it the moment it is approved.</summary>
    public const string Hold = "hold";

    /// <summary>An immediate error naming the request; the identical statement re-sent within the approval's window runs.</summary>
    public const string FailFast = "fail-fast";

    public static IReadOnlyList<string> All { get; } = [Hold, FailFast];
}
