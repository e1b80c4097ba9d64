namespace Airlock.ControlPlane.Data;

// One class per table. JSON-valued properties are stored as text on both providers (see
// AirlockDbContext) so that SQLite and PostgreSQL share one model.

/// <summary>A person who signs in to the console.</summary>
public sealed class ConsoleUser
{
    public Guid Id { get; set; }
    public required string UserName { get; set; }
    public required string PasswordHash { get; set; }
    public required string Role { get; set; }
    public int FailedSignIns { get; set; }
    public DateTimeOffset? LockedUntil { get; set; }
    public bool Disabled { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    /// <summary>
    /// Changes whenever what the user may do changes (password, role, disablement, sign-out): a cookie or console circuit issued under another stamp is no longer honoured.
    /// </summary>
    public string SecurityStamp { get; set; } = NewSecurityStamp();
    /// <summary>Approver groups the user belongs to (a rule's <c>approval.group</c> names one).</summary>
    public List<string> Groups { get; set; } = [];
    /// <summary>For a person who signs in through single sign-on: the provider's issuer and their subject there. Such an account has no password.</summary>
    public string? ExternalIssuer { get; set; }
    public string? ExternalSubject { get; set; }

    public bool SingleSignOn => ExternalIssuer is not null;

    public static string NewSecurityStamp() => Guid.NewGuid().ToString("N");
}

/// <summary>An admin API key: only its SHA-256 hash is stored.</summary>
public sealed class ApiKey
{
    public Guid Id { get; set; }
    public required string Name { get; set; }
    /// <summary>The first characters of the key, to recognise it in lists.</summary>
    public required string Prefix { get; set; }
    public required string KeyHash { get; set; }
    public required string Role { get; set; }
    public required string CreatedBy { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset? LastUsedAt { get; set; }
    public DateTimeOffset? RevokedAt { get; set; }
}

/// <summary>An automation agent: one identity, exactly one role.</summary>
public sealed class Agent
{
    public Guid Id { get; set; }
    public required string Name { get; set; }
    public string Description { get; set; } = "";
    public required string Owner { get; set; }
    public Guid RoleId { get; set; }
    public Role? Role { get; set; }
    public bool Enabled { get; set; } = true;
    public DateTimeOffset CreatedAt { get; set; }
    /// <summary>When Airlock's token endpoint last issued this agent a token.</summary>
    public DateTimeOffset? LastTokenIssuedAt { get; set; }
    /// <summary>When a sidecar last accepted a token of this agent (reported with heartbeats).</summary>
    public DateTimeOffset? LastUsedAt { get; set; }
}

public sealed class Role
{
    public Guid Id { get; set; }
    public required string Name { get; set; }
    public string Description { get; set; } = "";
    /// <summary>A named rule template the role starts from (<c>agent-safe</c>), or null.</summary>
    public string? Baseline { get; set; }
    /// <summary>Targets granted, by name or label selector.</summary>
    public List<GrantData> Grants { get; set; } = [];
    public List<Rule> Rules { get; set; } = [];
}

/// <summary>Either <see cref="Target"/> or <see cref="Selector"/> is set.</summary>
public sealed record GrantData(string? Target, Dictionary<string, string>? Selector);

/// <summary>A blocking, masking or approval rule of a role, optionally narrowed to some of its targets.</summary>
public sealed class Rule
{
    public Guid Id { get; set; }
    public Guid RoleId { get; set; }
    public required string Name { get; set; }
    public int Position { get; set; }
    public required string Action { get; set; }
    public List<string> Targets { get; set; } = [];
    public RuleMatchData Match { get; set; } = new([], [], [], null);
    public string? Message { get; set; }
    public MaskData? Mask { get; set; }
    public ApprovalData? Approval { get; set; }
}

public sealed record RuleMatchData(List<string> Classes, List<string> Commands, List<string> Tables, string? Pattern, List<string>? Functions = null, List<string>? Flags = null);

public sealed record MaskData(List<string> Columns, List<string> Detectors, string Strategy, int? KeepLast, string? Mode = null);

public sealed record ApprovalData(string Mode, int Approvals, string? Group, int TimeoutSeconds, int? WindowMinutes = null);

public sealed class Target
{
    public Guid Id { get; set; }
    public required string Name { get; set; }
    public required string Kind { get; set; }
    public Dictionary<string, string> Labels { get; set; } = [];
    public Guid? SidecarId { get; set; }
    public Sidecar? Sidecar { get; set; }
    public int ListenPort { get; set; }
    /// <summary>Agents on the sidecar's host may send their token without TLS.</summary>
    public bool AllowCleartextOnLoopback { get; set; }
    public required string UpstreamHost { get; set; }
    public int UpstreamPort { get; set; }
    public string UpstreamDatabase { get; set; } = "";
    public string UpstreamUsername { get; set; } = "";
    public string UpstreamTlsMode { get; set; } = "prefer";
    /// <summary>
    /// Upstream authentication methods the sidecar may use, comma-separated libpq <c>require_auth</c>
    /// names (<c>scram-sha-256</c>, <c>md5</c>, <c>password</c>, <c>none</c>); empty: SCRAM only, or
    /// <c>none</c> only when the target has no credential.
    /// </summary>
    public string UpstreamAuth { get; set; } = "";
    /// <summary><c>env:NAME</c> or <c>file:/path</c>, resolved only at the sidecar.</summary>
    public string? CredentialReference { get; set; }
    /// <summary>A stored credential, encrypted with ASP.NET Data Protection.</summary>
    public string? CredentialProtected { get; set; }
    /// <summary>The stored credential sealed to <see cref="SealedForKey"/> (the sidecar's sealing key hash).</summary>
    public string? CredentialSealed { get; set; }
    public string? SealedForKey { get; set; }
    /// <summary>The target's key for the <c>hash</c> masking strategy (random, made at first compile), protected at rest like a credential.</summary>
    public string? MaskingKeyProtected { get; set; }
    /// <summary>The masking key sealed to <see cref="MaskingKeySealedFor"/> (the sidecar's sealing key hash).</summary>
    public string? MaskingKeySealed { get; set; }
    public string? MaskingKeySealedFor { get; set; }
}

public sealed class Sidecar
{
    public Guid Id { get; set; }
    public required string Name { get; set; }
    public string Description { get; set; } = "";
    public string? CredentialHash { get; set; }
    public byte[]? SigningPublicKey { get; set; }
    public byte[]? SealingPublicKey { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset? EnrolledAt { get; set; }
    public DateTimeOffset? RevokedAt { get; set; }
    public DateTimeOffset? LastSeenAt { get; set; }
    public long AppliedVersion { get; set; }
    public string? SoftwareVersion { get; set; }
    public string? Address { get; set; }
}

public sealed class EnrollmentToken
{
    public Guid Id { get; set; }
    public Guid SidecarId { get; set; }
    public required string TokenHash { get; set; }
    public required string CreatedBy { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset ExpiresAt { get; set; }
    public DateTimeOffset? UsedAt { get; set; }
}

/// <summary>Every distinct snapshot content compiled for a sidecar gets the next version.</summary>
public sealed class SnapshotVersion
{
    public long Id { get; set; }
    public Guid SidecarId { get; set; }
    public long Version { get; set; }
    public required string ContentHash { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
}

/// <summary>A control-plane signing key; the private half is Data-Protection encrypted.</summary>
public sealed class SigningKey
{
    public required string Id { get; set; }
    /// <summary><see cref="SigningKeyPurposes.Snapshot"/> (ECDSA P-256) or <see cref="SigningKeyPurposes.Token"/> (agent JWTs).</summary>
    public string Purpose { get; set; } = SigningKeyPurposes.Snapshot;
    /// <summary>ES256 or RS256.</summary>
    public string Algorithm { get; set; } = "ES256";
    public required byte[] PublicKey { get; set; }
    public required string PrivateKeyProtected { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    /// <summary>
    /// When this key starts signing. A rotated-in key is published in snapshots (signed by the
    /// current key) for an overlap period first, so connected sidecars learn it before it signs.
    /// </summary>
    public DateTimeOffset ActivatesAt { get; set; }
}

/// <summary>One admin change: who, when, what, before and after (secrets redacted).</summary>
public sealed class AuditEntry
{
    public long Id { get; set; }
    public DateTimeOffset At { get; set; }
    public required string Actor { get; set; }
    public required string Action { get; set; }
    public required string EntityType { get; set; }
    public required string EntityName { get; set; }
    public string? Before { get; set; }
    public string? After { get; set; }
}

public static class SigningKeyPurposes
{
    public const string Snapshot = "snapshot";
    public const string Token = "token";
}

/// <summary>
/// An external OIDC issuer whose tokens may stand for agents (GitHub Actions, a Kubernetes cluster,
/// GitLab …). Keys come from <see cref="StaticJwks"/> (air-gapped) or are fetched by discovery and
/// cached in <see cref="FetchedJwks"/>.
/// </summary>
public sealed class TrustedIssuer
{
    public Guid Id { get; set; }
    public required string Name { get; set; }
    public required string Issuer { get; set; }
    /// <summary><c>oidc</c> (JWTs, validated by sidecars) or <c>saml</c> (assertions, exchanged at the token endpoint).</summary>
    public string Kind { get; set; } = TrustedIssuerKinds.Oidc;
    /// <summary>SAML only: the IdP's signing certificate (PEM); the only key its assertions may be signed with.</summary>
    public string? Certificate { get; set; }
    public List<string> Audiences { get; set; } = [];
    /// <summary>A JWKS document (JSON) given in the policy; when set, nothing is fetched.</summary>
    public string? StaticJwks { get; set; }
    public List<BindingData> Bindings { get; set; } = [];
    public string? FetchedJwks { get; set; }
    public DateTimeOffset? FetchedAt { get; set; }
    public DateTimeOffset? LastAttemptAt { get; set; }
    public string? LastError { get; set; }
}

public static class TrustedIssuerKinds
{
    public const string Oidc = "oidc";
    public const string Saml = "saml";
}

/// <summary>A SAML assertion already exchanged for a token: its id is kept until it expires (one-time use).</summary>
public sealed class UsedAssertion
{
    public required string Id { get; set; }
    public DateTimeOffset ExpiresAt { get; set; }
}

public sealed record BindingData(string Name, string Agent, List<ConditionData> Conditions);

public sealed record ConditionData(string Claim, string Match, List<string> Values);

/// <summary>A recorded session as the control plane stores it; its events are in <see cref="SessionSegment"/> rows.</summary>
public sealed class RecordedSession
{
    public Guid Id { get; set; }
    public Guid SidecarId { get; set; }
    /// <summary>The recording sidecar's name and the public key its heads verify with, kept with the session: deleting or re-enrolling the sidecar leaves its recordings verifiable.</summary>
    public string SidecarName { get; set; } = "";
    public byte[]? SigningPublicKey { get; set; }
    public string Agent { get; set; } = "";
    public string Role { get; set; } = "";
    public string Target { get; set; } = "";
    public string ClientAddress { get; set; } = "";
    public DateTimeOffset StartedAt { get; set; }
    public DateTimeOffset? EndedAt { get; set; }
    /// <summary><see cref="SessionStatuses"/>.</summary>
    public string Status { get; set; } = SessionStatuses.Live;
    public string? EndReason { get; set; }
    public long EventCount { get; set; }
    public long StatementCount { get; set; }
    public long LastSeq { get; set; }
    public string LastHash { get; set; } = Contracts.Recording.EventChain.GenesisHash;
    /// <summary>The highest event covered by a verified sidecar signature.</summary>
    public long SignedThrough { get; set; }
    /// <summary><see cref="Contracts.Recording.SessionVerification"/>: <c>verified</c> (every event hashed and linked, a signature covers its end), <c>incomplete</c> or <c>broken</c>.</summary>
    public string Verification { get; set; } = Contracts.Recording.SessionVerification.Incomplete;
    public long? BrokenAt { get; set; }
    public string? VerificationDetail { get; set; }
    /// <summary>
    /// Null when the session's target is one the recording sidecar serves and its agent one that
    /// sidecar's policy knows; otherwise what does not add up. The session is stored anyway (evidence
    /// is never refused), and shown as not attributable.
    /// </summary>
    public string? AttributionProblem { get; set; }
}

/// <summary>A connection test of a target, asked of its sidecar, and its result once the sidecar answered.</summary>
public sealed class TargetConnectionTest
{
    public long Id { get; set; }
    public required string Target { get; set; }
    public Guid SidecarId { get; set; }
    public required string RequestedBy { get; set; }
    public DateTimeOffset RequestedAt { get; set; }
    public DateTimeOffset? CompletedAt { get; set; }
    public bool? Succeeded { get; set; }
    public string? Detail { get; set; }
    public double? Milliseconds { get; set; }
}

/// <summary>A connection a sidecar refused at startup, as the sidecar reported it (its fields capped).</summary>
public sealed class RefusedConnection
{
    public long Id { get; set; }
    public Guid SidecarId { get; set; }
    public string SidecarName { get; set; } = "";
    public DateTimeOffset At { get; set; }
    public string Target { get; set; } = "";
    /// <summary>The user name the client gave: unverified.</summary>
    public string? Agent { get; set; }
    public string Client { get; set; } = "";
    public string SqlState { get; set; } = "";
    public string Reason { get; set; } = "";
}

/// <summary>What a recorded statement came to, for the dashboard's tally.</summary>
public enum StatementOutcome
{
    /// <summary>Ran, nothing masked.</summary>
    Allowed,
    /// <summary>Ran, with values masked in its result.</summary>
    Masked,
    /// <summary>Refused by a rule.</summary>
    Blocked,
    /// <summary>Held or refused for approval (counted once per approval request raised).</summary>
    Held,
}

/// <summary>How many recorded statements of one hour (Unix hours) came to one outcome.</summary>
public sealed class StatementStat
{
    public long Hour { get; set; }
    public StatementOutcome Outcome { get; set; }
    public long Count { get; set; }
}

public static class SessionStatuses
{
    public const string Live = "live";
    public const string Ended = "ended";
    public const string Interrupted = "interrupted";
}

/// <summary>
/// A run of consecutive events of one session (<see cref="FirstSeq"/> to <see cref="LastSeq"/>),
/// stored as the evidence records the sidecar hashed and uploaded (<see cref="Contracts.Recording.RecordCodec"/>),
/// byte for byte: verifying a stored session re-reads exactly what was verified on ingest. A row holds
/// at most <see cref="Sessions.RecordingIngest.SegmentBytes"/> unless one event alone is larger.
/// </summary>
public sealed class SessionSegment
{
    public Guid SessionId { get; set; }
    public long FirstSeq { get; set; }
    public long LastSeq { get; set; }
    public required byte[] Records { get; set; }
}

/// <summary>
/// One recorded event in the first storage layout (a row per event); start-up moves such rows into
/// <see cref="SessionSegment"/>s (<see cref="Sessions.LegacyEventUpgrade"/>), nothing writes them any more.
/// </summary>
public sealed class SessionEvent
{
    public Guid SessionId { get; set; }
    public long Seq { get; set; }
    public DateTimeOffset Time { get; set; }
    public required string Type { get; set; }
    /// <summary>The payload, or empty when it is stored in <see cref="PayloadChunks"/> parts (<see cref="SessionEventChunk"/>).</summary>
    public required byte[] Payload { get; set; }
    public int PayloadChunks { get; set; }
    public required string PrevHash { get; set; }
    public required string Hash { get; set; }
}

/// <summary>Part <see cref="Index"/> of a large event payload in the first storage layout; the parts in order are the payload the hash covers.</summary>
public sealed class SessionEventChunk
{
    public Guid SessionId { get; set; }
    public long Seq { get; set; }
    public int Index { get; set; }
    public required byte[] Data { get; set; }
}

/// <summary>A chain head signed by the sidecar's enrolled key.</summary>
public sealed class SessionHead
{
    public Guid SessionId { get; set; }
    public long Seq { get; set; }
    public required string Hash { get; set; }
    public required byte[] Signature { get; set; }
}

/// <summary>What an approval request asks for.</summary>
public enum ApprovalKind
{
    /// <summary>One statement (or the statements of one message), bound to its fingerprint.</summary>
    Statement,
    /// <summary>A time-boxed grant: extra rights (another role's) for an agent on a target.</summary>
    Grant,
}

/// <summary>Where an approval request stands. Only <see cref="Pending"/> takes votes; the rest are final but for <see cref="Approved"/>, which a fail-fast run or a held execution may move to <see cref="Executed"/>.</summary>
public enum ApprovalStatus
{
    Pending,
    Approved,
    Denied,
    Expired,
    Cancelled,
    Executed,
    /// <summary>An approved grant an Admin took back.</summary>
    Revoked,
}

/// <summary>A just-in-time approval request: a held or refused statement, or a time-boxed grant.</summary>
public sealed class Approval
{
    public long Id { get; set; }
    public ApprovalKind Kind { get; set; }
    public ApprovalStatus Status { get; set; }
    /// <summary>The sidecar that raised a statement request (and waits for its decision); null for a grant.</summary>
    public Guid? SidecarId { get; set; }
    public Guid? SessionId { get; set; }
    public required string Agent { get; set; }
    /// <summary>The agent's owner when the request was raised: never an approver of it.</summary>
    public required string AgentOwner { get; set; }
    public required string Role { get; set; }
    public required string Target { get; set; }
    /// <summary>The person who asked (a grant's requester); null for a statement raised by a sidecar.</summary>
    public string? RequestedBy { get; set; }
    public List<string> Statements { get; set; } = [];
    public List<string?> Parameters { get; set; } = [];
    public string Classification { get; set; } = "";
    public string Rule { get; set; } = "";
    public string Fingerprint { get; set; } = "";
    public string Mode { get; set; } = "";
    public string? Group { get; set; }
    public int Required { get; set; } = 1;
    /// <summary>Fail-fast: minutes the approval covers re-runs (null: one run). Grant: its length in minutes.</summary>
    public int? WindowMinutes { get; set; }
    /// <summary>A grant's extra role.</summary>
    public string? GrantRole { get; set; }
    public string? Reason { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset ExpiresAt { get; set; }
    public DateTimeOffset? DecidedAt { get; set; }
    public string? DecidedBy { get; set; }
    public string? Comment { get; set; }
    /// <summary>Fail-fast: the end of the window the approval covers; grant: when it lapses.</summary>
    public DateTimeOffset? ValidUntil { get; set; }
    /// <summary>How many runs an approval covered.</summary>
    public int Uses { get; set; }
    /// <summary>The sidecar acknowledged the decision (a held statement's wait ended with it).</summary>
    public bool Settled { get; set; }
    public string? Settlement { get; set; }
    public List<ApprovalVote> Votes { get; set; } = [];
}

/// <summary>One person's vote on an approval request.</summary>
public sealed class ApprovalVote
{
    public long Id { get; set; }
    public long ApprovalId { get; set; }
    public required string Voter { get; set; }
    public bool Approve { get; set; }
    public string? Comment { get; set; }
    public DateTimeOffset At { get; set; }
}

/// <summary>An outgoing webhook: approval events are POSTed to <see cref="Url"/>, signed with its secret.</summary>
public sealed class Webhook
{
    public Guid Id { get; set; }
    public required string Name { get; set; }
    public required string Url { get; set; }
    /// <summary><c>json</c> (Airlock's own payload, HMAC-signed) or <c>slack</c> (a Slack-compatible message, signed the same way).</summary>
    public string Format { get; set; } = "json";
    /// <summary>The HMAC secret, protected at rest like a credential.</summary>
    public required string SecretProtected { get; set; }
    public bool Enabled { get; set; } = true;
    public DateTimeOffset CreatedAt { get; set; }
}

/// <summary>One event for one webhook: sent, retried with backoff, and kept as the delivery log.</summary>
public sealed class WebhookDelivery
{
    public long Id { get; set; }
    public Guid WebhookId { get; set; }
    public required string Event { get; set; }
    public long ApprovalId { get; set; }
    /// <summary>The exact body sent (and signed).</summary>
    public required string Payload { get; set; }
    public WebhookDeliveryStatus Status { get; set; }
    public int Attempts { get; set; }
    public DateTimeOffset NextAttemptAt { get; set; }
    public int? LastStatusCode { get; set; }
    public string? LastError { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset? DeliveredAt { get; set; }
}

public enum WebhookDeliveryStatus
{
    Pending,
    Delivered,
    /// <summary>Every attempt failed; kept in the log.</summary>
    Failed,
}
