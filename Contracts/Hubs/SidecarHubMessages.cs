namespace Airlock.Contracts.Hubs;

/// <param name="AgentLastUse">Agent id → when a token of that agent was last accepted, since the previous heartbeat.</param>
/// <param name="Refusals">Connections refused at startup since the previous heartbeat (at most 100).</param>
/// <param name="RefusalsNotReported">Refusals the sidecar counted but could not keep for reporting (its queue was full).</param>
/// <param name="Statements">What the statements recorded since the previous heartbeat came to (the dashboard's tally).</param>
public sealed record SidecarHeartbeat(
    string SoftwareVersion, long AppliedVersion, DateTimeOffset SentAt, IReadOnlyDictionary<string, DateTimeOffset>? AgentLastUse = null,
    IReadOnlyList<RefusedConnectionReport>? Refusals = null, long RefusalsNotReported = 0, StatementCounts? Statements = null);

/// <summary>
/// Statements by what they came to: ran (<paramref name="Allowed"/>), ran with values masked
/// (<paramref name="Masked"/>), refused by a rule (<paramref name="Blocked"/>), held or refused for an
/// approval request (<paramref name="Held"/>, once per request raised).
/// </summary>
public sealed record StatementCounts(long Allowed, long Masked, long Blocked, long Held)
{
    public bool IsEmpty => Allowed == 0 && Masked == 0 && Blocked == 0 && Held == 0;
}

/// <summary>
/// A connection a sidecar refused before a session began. <paramref name="Agent"/> is the user name
/// the client gave (unverified: the refusal may be exactly that it is not who it claims).
/// </summary>
public sealed record RefusedConnectionReport(DateTimeOffset At, string Target, string? Agent, string Client, string SqlState, string Reason);

/// <summary>One recording event as the sidecar spooled it: hashes are lower-case hex SHA-256.</summary>
public sealed record RecordingEvent(
    Guid Session,
    long Seq,
    DateTimeOffset Time,
    string Type,
    byte[] Payload,
    string PrevHash,
    string Hash);

/// <summary>A signature by the sidecar's enrolled key over a session's chain head.</summary>
public sealed record ChainHeadSignature(Guid Session, long Seq, string Hash, byte[] Signature);

/// <summary>
/// Consecutive events of one session, in sequence order, as whole event records of the evidence
/// format (<see cref="Recording.RecordCodec"/>) — the bytes the sidecar hashed and spooled, which the
/// control plane verifies and stores as they are.
/// </summary>
public sealed record RecordingSegment(Guid Session, byte[] Records);

public sealed record RecordingBatch(IReadOnlyList<RecordingSegment> Segments, IReadOnlyList<ChainHeadSignature> Heads);

/// <summary>
/// Per session, the highest sequence number durably stored by the control plane; and for each session
/// it did not store whole, why (for the sidecar's log — the control plane logs it too). A control plane
/// of an earlier version sends no reasons.
/// </summary>
public sealed record RecordingAck(IReadOnlyDictionary<Guid, long> StoredThrough, IReadOnlyDictionary<Guid, string>? Refused = null);

/// <summary>
/// A statement (or several, sent in one message) that a <c>require_approval</c> rule holds or refused,
/// raised by the sidecar. The control plane believes none of it beyond the sidecar's reach: it looks up
/// the agent's owner and the rule's settings (approvals, group, expiry, window) itself.
/// </summary>
/// <param name="Fingerprint">Lower-case hex SHA-256 over the normalized statement, its parameter values, agent and target (<c>ApprovalFingerprint</c>).</param>
/// <param name="Mode"><c>hold</c> or <c>fail-fast</c> (as the sidecar's snapshot says; the control plane uses its own rule).</param>
/// <param name="Parameters">The bound parameter values as text, for approvers to read (cut when long).</param>
/// <param name="Grant">The time-boxed grant whose role's rules judged the statement, when one was in force (the rule is that role's).</param>
public sealed record ApprovalRequest(
    Guid Session,
    string Agent,
    string Role,
    string Target,
    IReadOnlyList<string> Statements,
    string Classification,
    string Rule,
    string Fingerprint,
    string Mode,
    IReadOnlyList<string?>? Parameters = null,
    long? Grant = null);

/// <summary>
/// The control plane's answer to <see cref="ApprovalRequest"/>: the request's number and expiry, and its
/// status — <see cref="ApprovalOutcomes.Pending"/>, or <see cref="ApprovalOutcomes.Approved"/> when a
/// fail-fast approval of the same fingerprint covers this run (the statement may run now).
/// </summary>
public sealed record ApprovalTicket(long RequestId, DateTimeOffset ExpiresAt, string Status = ApprovalOutcomes.Pending, string? ConsoleUrl = null);

/// <summary>One approver's vote, as the control plane stored it.</summary>
public sealed record ApprovalVoteInfo(string Voter, bool Approve, string? Comment, DateTimeOffset At);

/// <summary>A request was decided: <see cref="ApprovalOutcomes.Approved"/>, <see cref="ApprovalOutcomes.Denied"/> or <see cref="ApprovalOutcomes.Expired"/>.</summary>
public sealed record ApprovalDecision(long RequestId, string Outcome, string? DecidedBy, string? Comment, IReadOnlyList<ApprovalVoteInfo>? Votes = null);

/// <summary>
/// What became of a held statement after its decision reached the sidecar (or without one):
/// <see cref="ApprovalOutcomes.Executed"/>, <see cref="ApprovalOutcomes.Cancelled"/> (the client sent a
/// CancelRequest or went away), <see cref="ApprovalOutcomes.Expired"/> (no decision in time), or the
/// decision's outcome when it was only acknowledged.
/// </summary>
public sealed record ApprovalSettlement(long RequestId, string Outcome, string? Detail = null);

/// <summary>The states and steps of an approval request, as the wire and the recordings name them.</summary>
public static class ApprovalOutcomes
{
    public const string Raised = "raised";
    public const string Pending = "pending";
    public const string Vote = "vote";
    public const string Approved = "approved";
    public const string Denied = "denied";
    public const string Expired = "expired";
    public const string Cancelled = "cancelled";
    public const string Executed = "executed";
}

public sealed record TerminateSessionCommand(Guid Session, string Reason, string RequestedBy);

/// <summary>Test the connection to <paramref name="Target"/> from the sidecar: reach it, TLS as its policy says, log in with its credential.</summary>
public sealed record TargetTestRequest(long RequestId, string Target);

/// <summary>How the test went: <paramref name="Detail"/> says what worked, or the first thing that failed.</summary>
public sealed record TargetTestResult(long RequestId, bool Succeeded, string Detail, double Milliseconds);
