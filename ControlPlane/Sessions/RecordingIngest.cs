using Airlock.ControlPlane.Data;
using Airlock.ControlPlane.Sidecars;
using Airlock.Contracts.Hubs;
using Airlock.Contracts.Recording;
using Microsoft.EntityFrameworkCore;

namespace Airlock.ControlPlane.Sessions;

/// <summary>
/// Stores uploaded recording events and acknowledges only what is committed. Per session:
/// <list type="number">
/// <item>the session belongs to the uploading sidecar (a sidecar cannot write into another's sessions);</item>
/// <item>events at or below the stored sequence are duplicates and skipped (idempotent on (session, seq));</item>
/// <item>the next event must be a whole, checksummed record, follow the stored chain (sequence,
/// previous hash) and hash to its own hash; the first that does not stops the session's ingest and
/// marks it broken there;</item>
/// <item>chain heads must match a stored hash and verify with the key the session was started
/// under (kept with the session, so re-enrolling or deleting the sidecar leaves it verifiable);</item>
/// <item>a session whose target the sidecar does not serve, or whose agent its policy does not know,
/// is stored (evidence is never refused) and marked as not attributable;</item>
/// <item>event types this version does not know are stored as they are: sidecars and control planes
/// are upgraded one at a time.</item>
/// </list>
/// A session is <see cref="SessionVerification.Verified"/> only once a signature covers its
/// session end; until then (or if the end never comes) it is <see cref="SessionVerification.Incomplete"/>.
/// Events are read in place from the uploaded records and stored as those same bytes in segments
/// (<see cref="SessionSegment"/>): per event, ingest costs a checksum, a hash and a copy.
/// The acknowledgement names, per session, the highest sequence now durably stored.
/// </summary>
public sealed class RecordingIngest(AirlockDbContext db, SessionNotifier notifier, ILogger<RecordingIngest> logger)
{
    /// <summary>Largest event payload accepted (an upload is one SignalR message of at most 8 MiB).</summary>
    public const int MaxPayloadBytes = 6 * 1024 * 1024;

    /// <summary>Stored segments are cut (between events) at this size, so no row holds a huge value unless one event alone is larger.</summary>
    public const int SegmentBytes = 256 * 1024;

    public async Task<RecordingAck> IngestAsync(Guid sidecarId, RecordingBatch batch, CancellationToken ct)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        long stored = 0, breaks = 0;
        var sidecar = await db.Sidecars.AsNoTracking().SingleAsync(s => s.Id == sidecarId, ct);
        var storedThrough = new Dictionary<Guid, long>();
        var refused = new Dictionary<Guid, string>();
        SidecarReach? reach = null;
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        var sessionIds = batch.Segments.Select(s => s.Session).Concat(batch.Heads.Select(h => h.Session)).Distinct().ToList();
        // One query for every session of the batch; entities are added without per-add change detection.
        var known = await db.Sessions.Where(s => sessionIds.Contains(s.Id)).ToDictionaryAsync(s => s.Id, ct);
        var segmentsBySession = batch.Segments.GroupBy(s => s.Session).ToDictionary(g => g.Key, g => g.OrderBy(s => FirstSeq(s.Records)).ToList());
        db.ChangeTracker.AutoDetectChangesEnabled = false;
        foreach (var id in sessionIds)
        {
            var session = known.GetValueOrDefault(id);
            var segments = segmentsBySession.GetValueOrDefault(id) ?? [];
            if (session is null)
            {
                if (segments.Count == 0 || !RecordCodec.TryViewEvent(segments[0].Records, out var first, out _) || first.Seq != 1)
                {
                    // Nothing to anchor the session on (yet): its first event has not arrived.
                    if (segments.Count > 0)
                        refused[id] = $"the control plane has no events of session {id}, and the upload does not start at its first event";
                    continue;
                }
                session = new RecordedSession { Id = id, SidecarId = sidecarId, SidecarName = sidecar.Name, SigningPublicKey = sidecar.SigningPublicKey, StartedAt = first.Time };
                db.Sessions.Add(session);
            }
            else if (session.SidecarId != sidecarId)
            {
                logger.LogWarning("Sidecar {Sidecar} uploaded events for session {Session} of another sidecar; refused", sidecar.Name, id);
                refused[id] = $"session {id} was recorded by another sidecar";
                continue;
            }

            var (seqBefore, wasBroken) = (session.LastSeq, session.Verification == SessionVerification.Broken);
            var headSeqs = batch.Heads.Where(h => h.Session == id).Select(h => h.Seq).ToHashSet();
            var added = new Dictionary<long, string>();
            var store = new SegmentWriter(id);
            foreach (var segment in segments)
            {
                if (Append(session, segment.Records, store, headSeqs, added) is { } problem)
                {
                    MarkBroken(session, session.LastSeq + 1, problem);
                    refused[id] = problem;
                    logger.LogWarning("Recording of session {Session} from sidecar {Sidecar} refused: {Problem}", id, sidecar.Name, problem);
                    break;
                }
            }
            db.SessionSegments.AddRange(store.Complete());
            if (seqBefore == 0 && session.LastSeq > 0)
            {
                reach ??= await SidecarReach.LoadAsync(db, sidecarId, ct);
                session.AttributionProblem = reach.Problem(sidecar.Name, session.Agent, session.Target);
                if (session.AttributionProblem is { } attribution)
                    logger.LogWarning("Session {Session} from sidecar {Sidecar} is not attributable: {Problem}; stored and marked", id, sidecar.Name, attribution);
            }

            using var heads = new HeadVerifier(session.SigningPublicKey ?? sidecar.SigningPublicKey);
            foreach (var head in batch.Heads.Where(h => h.Session == id && h.Seq <= session.LastSeq).OrderBy(h => h.Seq))
            {
                if (head.Seq <= session.SignedThrough)
                    continue;
                var hash = added.TryGetValue(head.Seq, out var h) ? h : await StoredHashAsync(id, head.Seq, ct);
                if (hash != head.Hash || !heads.Verify(head))
                {
                    var problem = $"signed head at event {head.Seq} does not verify with the sidecar's key";
                    MarkBroken(session, head.Seq, problem);
                    refused[id] = problem;
                    break;
                }
                db.SessionHeads.Add(new SessionHead { SessionId = id, Seq = head.Seq, Hash = head.Hash, Signature = head.Signature });
                session.SignedThrough = head.Seq;
            }
            if (session.Verification != SessionVerification.Broken)
                session.Verification = SessionVerification.Of(true, session.Status != SessionStatuses.Live && session.SignedThrough == session.LastSeq);
            storedThrough[id] = session.LastSeq;
            stored += session.LastSeq - seqBefore;
            breaks += !wasBroken && session.Verification == SessionVerification.Broken ? 1 : 0;
        }
        db.ChangeTracker.DetectChanges();
        await db.SaveChangesAsync(ct);
        await tx.CommitAsync(ct);
        Observability.ControlPlaneMetrics.Uploads.Add(1);
        Observability.ControlPlaneMetrics.EventsStored.Add(stored);
        if (breaks > 0)
            Observability.ControlPlaneMetrics.ChainBreaks.Add(breaks);
        Observability.ControlPlaneMetrics.IngestDuration.Record(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds);
        if (storedThrough.Count > 0)
            notifier.Publish(storedThrough.Keys);
        return new RecordingAck(storedThrough, refused);
    }

    /// <summary>
    /// Verifies the events of one uploaded segment in order and hands those that extend the chain to
    /// <paramref name="store"/>; returns why the session's ingest stops at an event that cannot be
    /// accepted, or null (a gap simply ends the segment: the rest arrives with a later batch).
    /// </summary>
    private static string? Append(RecordedSession session, byte[] records, SegmentWriter store, HashSet<long> headSeqs, Dictionary<long, string> added)
    {
        Span<byte> last = stackalloc byte[32];
        if (Convert.FromHexString(session.LastHash, last, out _, out var lastLength) != System.Buffers.OperationStatus.Done || lastLength != 32)
            return "the stored chain head is not a SHA-256";
        Span<byte> digest = stackalloc byte[32];
        var seqBefore = session.LastSeq;
        try
        {
            for (var offset = 0; offset < records.Length;)
            {
                if (!RecordCodec.TryViewEvent(records.AsSpan(offset), out var e, out var length))
                    return $"the upload is damaged after event {session.LastSeq}: not a whole, checksummed event record";
                var record = records.AsSpan(offset, length);
                offset += length;
                if (e.Session != session.Id)
                    return $"event {e.Seq} was uploaded for session {session.Id} but names session {e.Session}";
                if (e.Seq <= session.LastSeq)
                    continue;
                if (e.Seq != session.LastSeq + 1)
                    return null;
                if (!e.PrevHash.SequenceEqual(last))
                    return $"chain broken at event {e.Seq}: it does not follow event {session.LastSeq}";
                EventChain.Hash(e.PrevHash, e.Session, e.Seq, e.UnixMilliseconds, e.Type, e.Payload, digest);
                if (!digest.SequenceEqual(e.Hash))
                    return $"chain broken at event {e.Seq}: its content does not match its hash";
                if (e.Payload.Length > MaxPayloadBytes)
                    return $"event {e.Seq} is larger than {MaxPayloadBytes} bytes";
                store.Add(record, e.Seq);
                // A type this version does not know (a newer sidecar) is stored and shown as it is.
                Apply(session, e.Seq, RecordingEventTypes.Find(e.Type), e.Payload, e.Time);
                e.Hash.CopyTo(last);
                session.LastSeq = e.Seq;
                if (headSeqs.Contains(e.Seq))
                    added[e.Seq] = Convert.ToHexStringLower(e.Hash);
            }
            return null;
        }
        finally
        {
            if (session.LastSeq != seqBefore)
                session.LastHash = Convert.ToHexStringLower(last);
        }
    }

    /// <summary>The hash of an event stored by an earlier upload, or null when there is none.</summary>
    private async Task<string?> StoredHashAsync(Guid session, long seq, CancellationToken ct)
    {
        var records = await db.SessionSegments.AsNoTracking().Where(s => s.SessionId == session && s.FirstSeq <= seq && s.LastSeq >= seq)
            .Select(s => s.Records).FirstOrDefaultAsync(ct);
        return records is null ? null : HashOf(records, seq);
    }

    private static string? HashOf(byte[] records, long seq)
    {
        for (var offset = 0; RecordCodec.TryViewEvent(records.AsSpan(offset), out var e, out var length); offset += length)
            if (e.Seq == seq)
                return Convert.ToHexStringLower(e.Hash);
        return null;
    }

    private static long FirstSeq(byte[] records) => RecordCodec.TryViewEvent(records, out var e, out _) ? e.Seq : long.MaxValue;

    private static void Apply(RecordedSession session, long seq, string? type, ReadOnlySpan<byte> payload, DateTimeOffset time)
    {
        session.EventCount++;
        switch (type)
        {
            // Only the first event says who and where: a later "start" (stored as it came) cannot
            // re-attribute a session after its attribution was checked.
            case RecordingEventTypes.SessionStart when seq == 1 && TryDecode<SessionStartPayload>(payload) is { } start:
                (session.Agent, session.Role, session.Target, session.ClientAddress, session.StartedAt) =
                    (Cut(start.Agent ?? ""), Cut(start.Role ?? ""), Cut(start.Target ?? ""), Cut(start.ClientAddress ?? ""), time);
                break;
            case RecordingEventTypes.Statement:
                session.StatementCount++;
                break;
            case RecordingEventTypes.SessionEnd:
                // The end counts even when its payload cannot be read (it is hashed and stored as it came).
                var reason = TryDecode<SessionEndPayload>(payload)?.Reason ?? "(the end event's reason cannot be read)";
                session.EndedAt = time;
                session.EndReason = Cut(reason);
                session.Status = reason.StartsWith("interrupted", StringComparison.Ordinal) ? SessionStatuses.Interrupted : SessionStatuses.Ended;
                break;
        }
    }

    /// <summary>A payload from a sidecar is hostile bytes like any other: unreadable is null, never an exception.</summary>
    private static T? TryDecode<T>(ReadOnlySpan<byte> payload) where T : class
    {
        try
        {
            return RecordingJson.Decode<T>(payload);
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
    }

    private static void MarkBroken(RecordedSession session, long seq, string detail)
    {
        session.Verification = SessionVerification.Broken;
        session.BrokenAt ??= seq;
        session.VerificationDetail ??= detail;
    }

    private static string Cut(string value) => value.Length <= 200 ? value : value[..200];
}

/// <summary>Tells live console views which sessions got new events — on every replica (<see cref="Replicas.ReplicaSignals"/>).</summary>
public sealed class SessionNotifier
{
    private readonly Replicas.ReplicaSignals? _signals;

    public SessionNotifier() : this(null)
    {
    }

    public SessionNotifier(Replicas.ReplicaSignals? signals)
    {
        _signals = signals;
        signals?.On(Replicas.ReplicaChannels.Sessions, payload =>
            Changed?.Invoke(payload.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(id => Guid.TryParse(id, out var g) ? g : Guid.Empty).Where(g => g != Guid.Empty).ToList()));
    }

    public event Action<IReadOnlyCollection<Guid>>? Changed;

    public void Publish(IReadOnlyCollection<Guid> sessions)
    {
        if (_signals is null)
            Changed?.Invoke(sessions);
        else
            _signals.Publish(Replicas.ReplicaChannels.Sessions, string.Join(',', sessions.Take(1000)));
    }
}
