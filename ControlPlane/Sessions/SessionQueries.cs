using Airlock.ControlPlane.Data;
using Airlock.Contracts.Hubs;
using Airlock.Contracts.Recording;
using Microsoft.EntityFrameworkCore;

namespace Airlock.ControlPlane.Sessions;

public sealed record SessionFilter(string? Agent, string? Target, string? Status, DateTimeOffset? From, DateTimeOffset? To, int Take = 100);

public sealed record EventView(long Seq, DateTimeOffset Time, string Type, System.Text.Json.JsonElement Payload, string PrevHash, string Hash);

/// <summary>Reading recorded sessions, and verifying them again from what is stored now.</summary>
public sealed class SessionQueries(AirlockDbContext db)
{
    public async Task<IReadOnlyList<RecordedSession>> ListAsync(SessionFilter filter, CancellationToken ct)
    {
        var query = db.Sessions.AsNoTracking();
        if (filter.Agent is not null)
            query = query.Where(s => s.Agent == filter.Agent);
        if (filter.Target is not null)
            query = query.Where(s => s.Target == filter.Target);
        if (filter.Status is not null)
            query = query.Where(s => s.Status == filter.Status);
        if (filter.From is { } from)
            query = query.Where(s => s.StartedAt >= from);
        if (filter.To is { } to)
            query = query.Where(s => s.StartedAt < to);
        return await query.OrderByDescending(s => s.StartedAt).Take(Math.Clamp(filter.Take, 1, 1000)).ToListAsync(ct);
    }

    public Task<RecordedSession?> GetAsync(Guid id, CancellationToken ct) =>
        db.Sessions.AsNoTracking().SingleOrDefaultAsync(s => s.Id == id, ct);

    public async Task<IReadOnlyList<EventView>> EventsAsync(Guid id, long after, int take, CancellationToken ct)
    {
        take = Math.Clamp(take, 1, 5000);
        var views = new List<EventView>();
        await foreach (var e in StoredEventsAsync(id, after, ct))
        {
            views.Add(new EventView(e.Seq, e.Time, e.Type, ParsePayload(e.Payload), e.PrevHash, e.Hash));
            if (views.Count == take)
                break;
        }
        return views;
    }

    /// <summary>Everything needed to verify the session elsewhere, offline.</summary>
    public async Task<SessionBundle?> ExportAsync(Guid id, TimeProvider time, CancellationToken ct)
    {
        var session = await db.Sessions.AsNoTracking().SingleOrDefaultAsync(s => s.Id == id, ct);
        if (session is null)
            return null;
        var sidecar = await db.Sidecars.AsNoTracking().SingleAsync(s => s.Id == session.SidecarId, ct);
        var events = await AllEventsAsync(id, ct);
        var heads = (await db.SessionHeads.AsNoTracking().Where(h => h.SessionId == id).OrderBy(h => h.Seq).ToListAsync(ct))
            .Select(h => new ChainHeadSignature(h.SessionId, h.Seq, h.Hash, h.Signature)).ToList();
        return new SessionBundle(SessionBundle.CurrentFormat, id, sidecar.Name, sidecar.SigningPublicKey ?? [], time.GetUtcNow(), events, heads);
    }

    /// <summary>Recomputes the whole chain from the stored rows: an edited row shows as "chain broken at event N".</summary>
    public async Task<ChainVerdict?> VerifyAsync(Guid id, CancellationToken ct)
    {
        var session = await db.Sessions.SingleOrDefaultAsync(s => s.Id == id, ct);
        if (session is null)
            return null;
        var key = await db.Sidecars.Where(s => s.Id == session.SidecarId).Select(s => s.SigningPublicKey).SingleOrDefaultAsync(ct) ?? [];
        var events = await AllEventsAsync(id, ct);
        var heads = (await db.SessionHeads.AsNoTracking().Where(h => h.SessionId == id).ToListAsync(ct))
            .Select(h => new ChainHeadSignature(h.SessionId, h.Seq, h.Hash, h.Signature)).ToList();
        var verdict = ChainVerifier.Verify(events, heads, key);
        session.Verification = !verdict.Verifies ? "broken" : verdict.SignedThrough == verdict.Events ? "verified" : "pending";
        session.BrokenAt = verdict.BrokenAt;
        session.VerificationDetail = verdict.Reason;
        await db.SaveChangesAsync(ct);
        return verdict;
    }

    /// <summary>
    /// A session's stored events after <paramref name="after"/>, in order, read segment by segment.
    /// Checksums are not what protects stored evidence (the hash chain is): records are read without
    /// them, so an edited byte shows as the event whose hash no longer matches.
    /// </summary>
    private async IAsyncEnumerable<RecordingEvent> StoredEventsAsync(Guid id, long after, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        var segments = db.SessionSegments.AsNoTracking().Where(s => s.SessionId == id && s.LastSeq > after).OrderBy(s => s.FirstSeq).Select(s => s.Records);
        await foreach (var records in segments.AsAsyncEnumerable().WithCancellation(ct))
            foreach (var record in RecordCodec.Decode(records, verifyChecksums: false).Records)
                if (record.Event is { Seq: var seq } e && seq > after)
                    yield return e;
    }

    private async Task<List<RecordingEvent>> AllEventsAsync(Guid id, CancellationToken ct)
    {
        var events = new List<RecordingEvent>();
        await foreach (var e in StoredEventsAsync(id, 0, ct))
            events.Add(e);
        return events;
    }

    private static System.Text.Json.JsonElement ParsePayload(byte[] payload)
    {
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(payload);
            return doc.RootElement.Clone();
        }
        catch (System.Text.Json.JsonException)
        {
            return System.Text.Json.JsonSerializer.SerializeToElement(Convert.ToBase64String(payload));
        }
    }
}
