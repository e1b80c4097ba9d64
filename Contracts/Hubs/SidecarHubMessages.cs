namespace Airlock.Contracts.Hubs;

/// <param name="AgentLastUse">Agent id → when a token of that agent was last accepted, since the previous heartbeat.</param>
public sealed record SidecarHeartbeat(string SoftwareVersion, long AppliedVersion, DateTimeOffset SentAt, IReadOnlyDictionary<string, DateTimeOffset>? AgentLastUse = null);

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

public sealed record ApprovalRequest(
    Guid Session,
    string Agent,
    string Role,
    string Target,
    IReadOnlyList<string> Statements,
    string Classification,
    string Rule,
    string Fingerprint,
    string Mode);

public sealed record ApprovalTicket(long RequestId, DateTimeOffset ExpiresAt);

public sealed record ApprovalDecision(long RequestId, string Outcome, string? DecidedBy, string? Comment);

public sealed record TerminateSessionCommand(Guid Session, string Reason, string RequestedBy);
