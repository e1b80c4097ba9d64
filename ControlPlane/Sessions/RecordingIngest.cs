using Airlock.ControlPlane.Data;
using Airlock.Contracts.Hubs;
using Airlock.Contracts.Recording;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;

namespace Airlock.ControlPlane.Sessions;

/// <summary>
/// Stores uploaded recording events and acknowledges only what is committed. Per session:
/// <list type="number">
/// <item>the session belongs to the uploading sidecar (a sidecar cannot write into another's sessions);</item>
/// <item>events at or below the stored sequence are duplicates and skipped (idempotent on (session, seq));</item>
/// <item>the next event must follow the stored chain (sequence, previous hash) and hash to its own hash;
/// the first that does not stops the session's ingest and marks it broken there;</item>
/// <item>chain heads must match a stored hash and verify with the sidecar's enrolled key.</item>
/// </list>
/// The acknowledgement names, per session, the highest sequence now durably stored.
/// </summary>
public sealed class RecordingIngest(AirlockDbContext db, SessionNotifier notifier, ILogger<RecordingIngest> logger)
{
    /// <summary>Largest event payload accepted (an upload is one SignalR message of at most 8 MiB).</summary>
    public const int MaxPayloadBytes = 6 * 1024 * 1024;

    /// <summary>Payloads above this are stored as parts of this size, so no row holds a huge value.</summary>
    public const int ChunkBytes = 256 * 1024;

    public async Task<RecordingAck> IngestAsync(Guid sidecarId, RecordingBatch batch, CancellationToken ct)
    {
        var sidecar = await db.Sidecars.AsNoTracking().SingleAsync(s => s.Id == sidecarId, ct);
        var storedThrough = new Dictionary<Guid, long>();
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        var sessionIds = batch.Events.Select(e => e.Session).Concat(batch.Heads.Select(h => h.Session)).Distinct().ToList();
        // One query for every session of the batch; entities are added without per-add change detection.
        var known = await db.Sessions.Where(s => sessionIds.Contains(s.Id)).ToDictionaryAsync(s => s.Id, ct);
        var eventsBySession = batch.Events.GroupBy(e => e.Session).ToDictionary(g => g.Key, g => g.OrderBy(e => e.Seq).ToList());
        db.ChangeTracker.AutoDetectChangesEnabled = false;
        var newEvents = new List<SessionEvent>();
        foreach (var id in sessionIds)
        {
            var session = known.GetValueOrDefault(id);
            var events = eventsBySession.GetValueOrDefault(id) ?? [];
            if (session is null)
            {
                if (events.Count == 0 || events[0].Seq != 1)
                    continue; // nothing to anchor the session on yet
                session = new RecordedSession { Id = id, SidecarId = sidecarId, StartedAt = events[0].Time };
                db.Sessions.Add(session);
            }
            else if (session.SidecarId != sidecarId)
            {
                logger.LogWarning("Sidecar {Sidecar} uploaded events for session {Session} of another sidecar; refused", sidecar.Name, id);
                continue;
            }

            var added = new Dictionary<long, string>();
            foreach (var e in events)
            {
                if (e.Seq <= session.LastSeq)
                    continue;
                if (e.Seq != session.LastSeq + 1)
                    break; // a gap: the rest arrives with a later batch
                var problem = e.PrevHash != session.LastHash ? $"chain broken at event {e.Seq}: it does not follow event {session.LastSeq}"
                    : EventChain.Hash(e.PrevHash, e.Session, e.Seq, e.Time, e.Type, e.Payload) != e.Hash ? $"chain broken at event {e.Seq}: its content does not match its hash"
                    : !RecordingEventTypes.All.Contains(e.Type) ? $"event {e.Seq} has unknown type '{e.Type}'"
                    : e.Payload.Length > MaxPayloadBytes ? $"event {e.Seq} is larger than {MaxPayloadBytes} bytes"
                    : null;
                if (problem is not null)
                {
                    MarkBroken(session, e.Seq, problem);
                    logger.LogWarning("Recording of session {Session} from sidecar {Sidecar} refused: {Problem}", id, sidecar.Name, problem);
                    break;
                }
                var chunked = e.Payload.Length > ChunkBytes;
                newEvents.Add(new SessionEvent
                {
                    SessionId = id, Seq = e.Seq, Time = e.Time, Type = e.Type, Payload = chunked ? [] : e.Payload,
                    PayloadChunks = chunked ? (e.Payload.Length + ChunkBytes - 1) / ChunkBytes : 0, PrevHash = e.PrevHash, Hash = e.Hash,
                });
                if (chunked)
                    for (var i = 0; i * ChunkBytes < e.Payload.Length; i++)
                        db.SessionEventChunks.Add(new SessionEventChunk { SessionId = id, Seq = e.Seq, Index = i, Data = e.Payload.AsSpan(i * ChunkBytes, Math.Min(ChunkBytes, e.Payload.Length - i * ChunkBytes)).ToArray() });
                Apply(session, e);
                added[e.Seq] = e.Hash;
            }

            foreach (var head in batch.Heads.Where(h => h.Session == id && h.Seq <= session.LastSeq).OrderBy(h => h.Seq))
            {
                if (head.Seq <= session.SignedThrough)
                    continue;
                var hash = added.TryGetValue(head.Seq, out var h) ? h
                    : await db.SessionEvents.Where(x => x.SessionId == id && x.Seq == head.Seq).Select(x => x.Hash).SingleOrDefaultAsync(ct);
                if (hash != head.Hash || sidecar.SigningPublicKey is null || !EventChain.VerifyHead(head, sidecar.SigningPublicKey))
                {
                    MarkBroken(session, head.Seq, $"signed head at event {head.Seq} does not verify with the sidecar's key");
                    break;
                }
                db.SessionHeads.Add(new SessionHead { SessionId = id, Seq = head.Seq, Hash = head.Hash, Signature = head.Signature });
                session.SignedThrough = head.Seq;
            }
            if (session.Verification != "broken")
                session.Verification = session.SignedThrough == session.LastSeq ? "verified" : "pending";
            storedThrough[id] = session.LastSeq;
        }
        await InsertEventsAsync(newEvents, ct);
        db.ChangeTracker.DetectChanges();
        await db.SaveChangesAsync(ct);
        await tx.CommitAsync(ct);
        if (storedThrough.Count > 0)
            notifier.Publish(storedThrough.Keys);
        return new RecordingAck(storedThrough);
    }

    /// <summary>
    /// Event rows are the bulk of ingest: on PostgreSQL they go in with one binary COPY inside the
    /// transaction; elsewhere (SQLite) with one prepared INSERT run per row — EF Core's change
    /// tracking and batching cost about four fifths of the control plane's ingest time.
    /// </summary>
    private async Task InsertEventsAsync(List<SessionEvent> events, CancellationToken ct)
    {
        if (events.Count == 0)
            return;
        var connection = db.Database.GetDbConnection();
        if (connection is Npgsql.NpgsqlConnection npgsql)
            await CopyEventsAsync(npgsql, events, ct);
        else
            await InsertPreparedAsync(connection, events, ct);
    }

    private static async Task CopyEventsAsync(Npgsql.NpgsqlConnection connection, List<SessionEvent> events, CancellationToken ct)
    {
        await using var copy = await connection.BeginBinaryImportAsync(
            "COPY \"SessionEvents\" (\"SessionId\", \"Seq\", \"Time\", \"Type\", \"Payload\", \"PayloadChunks\", \"PrevHash\", \"Hash\") FROM STDIN (FORMAT BINARY)", ct);
        foreach (var e in events)
        {
            await copy.StartRowAsync(ct);
            await copy.WriteAsync(e.SessionId, NpgsqlTypes.NpgsqlDbType.Uuid, ct);
            await copy.WriteAsync(e.Seq, NpgsqlTypes.NpgsqlDbType.Bigint, ct);
            await copy.WriteAsync(e.Time, NpgsqlTypes.NpgsqlDbType.TimestampTz, ct);
            await copy.WriteAsync(e.Type, NpgsqlTypes.NpgsqlDbType.Text, ct);
            await copy.WriteAsync(e.Payload, NpgsqlTypes.NpgsqlDbType.Bytea, ct);
            await copy.WriteAsync(e.PayloadChunks, NpgsqlTypes.NpgsqlDbType.Integer, ct);
            await copy.WriteAsync(e.PrevHash, NpgsqlTypes.NpgsqlDbType.Text, ct);
            await copy.WriteAsync(e.Hash, NpgsqlTypes.NpgsqlDbType.Text, ct);
        }
        await copy.CompleteAsync(ct);
    }

    /// <summary>
    /// One prepared INSERT for the batch. Parameters come from EF Core's own type mappings and value
    /// converters, so the rows are stored exactly as EF would store them (GUID text, time as ticks).
    /// </summary>
    private async Task InsertPreparedAsync(System.Data.Common.DbConnection connection, List<SessionEvent> events, CancellationToken ct)
    {
        var entity = db.Model.FindEntityType(typeof(SessionEvent))!;
        var columns = new (string Column, Func<SessionEvent, object> Value)[]
        {
            (nameof(SessionEvent.SessionId), e => e.SessionId), (nameof(SessionEvent.Seq), e => e.Seq), (nameof(SessionEvent.Time), e => e.Time),
            (nameof(SessionEvent.Type), e => e.Type), (nameof(SessionEvent.Payload), e => e.Payload), (nameof(SessionEvent.PayloadChunks), e => e.PayloadChunks),
            (nameof(SessionEvent.PrevHash), e => e.PrevHash), (nameof(SessionEvent.Hash), e => e.Hash),
        };
        await using var command = connection.CreateCommand();
        command.Transaction = db.Database.CurrentTransaction?.GetDbTransaction();
        command.CommandText = $"INSERT INTO \"SessionEvents\" ({string.Join(", ", columns.Select(c => $"\"{c.Column}\""))}) VALUES ({string.Join(", ", columns.Select((_, i) => $"@p{i}"))})";
        var bindings = columns.Select((c, i) =>
        {
            var mapping = entity.FindProperty(c.Column)!.GetRelationalTypeMapping();
            var parameter = mapping.CreateParameter(command, $"@p{i}", c.Value(events[0]));
            command.Parameters.Add(parameter);
            return (Parameter: parameter, Mapping: mapping, c.Value);
        }).ToList();
        await command.PrepareAsync(ct);
        foreach (var e in events)
        {
            foreach (var (parameter, mapping, value) in bindings)
            {
                var v = value(e);
                parameter.Value = mapping.Converter is { } converter ? converter.ConvertToProvider(v) : v;
            }
            await command.ExecuteNonQueryAsync(ct);
        }
    }

    private static void Apply(RecordedSession session, RecordingEvent e)
    {
        session.LastSeq = e.Seq;
        session.LastHash = e.Hash;
        session.EventCount++;
        switch (e.Type)
        {
            case RecordingEventTypes.SessionStart when RecordingJson.Decode<SessionStartPayload>(e.Payload) is { } start:
                (session.Agent, session.Role, session.Target, session.ClientAddress, session.StartedAt) =
                    (Cut(start.Agent), Cut(start.Role), Cut(start.Target), Cut(start.ClientAddress), e.Time);
                break;
            case RecordingEventTypes.Statement:
                session.StatementCount++;
                break;
            case RecordingEventTypes.SessionEnd when RecordingJson.Decode<SessionEndPayload>(e.Payload) is { } end:
                session.EndedAt = e.Time;
                session.EndReason = Cut(end.Reason);
                session.Status = end.Reason.StartsWith("interrupted", StringComparison.Ordinal) ? SessionStatuses.Interrupted : SessionStatuses.Ended;
                break;
        }
    }

    private static void MarkBroken(RecordedSession session, long seq, string detail)
    {
        session.Verification = "broken";
        session.BrokenAt ??= seq;
        session.VerificationDetail ??= detail;
    }

    private static string Cut(string value) => value.Length <= 200 ? value : value[..200];
}

/// <summary>Tells live console views which sessions got new events.</summary>
public sealed class SessionNotifier
{
    public event Action<IReadOnlyCollection<Guid>>? Changed;

    public void Publish(IReadOnlyCollection<Guid> sessions) => Changed?.Invoke(sessions);
}
