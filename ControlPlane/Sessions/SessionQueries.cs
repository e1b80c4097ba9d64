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
        var rows = await WithPayloadsAsync(await db.SessionEvents.AsNoTracking().Where(e => e.SessionId == id && e.Seq > after)
            .OrderBy(e => e.Seq).Take(Math.Clamp(take, 1, 5000)).ToListAsync(ct), ct);
        return rows.Select(e => new EventView(e.Seq, e.Time, e.Type, ParsePayload(e.Payload), e.PrevHash, e.Hash)).ToList();
    }

    /// <summary>Everything needed to verify the session elsewhere, offline.</summary>
    public async Task<SessionBundle?> ExportAsync(Guid id, TimeProvider time, CancellationToken ct)
    {
        var session = await db.Sessions.AsNoTracking().SingleOrDefaultAsync(s => s.Id == id, ct);
        if (session is null)
            return null;
        var sidecar = await db.Sidecars.AsNoTracking().SingleAsync(s => s.Id == session.SidecarId, ct);
        var events = (await WithPayloadsAsync(await db.SessionEvents.AsNoTracking().Where(e => e.SessionId == id).OrderBy(e => e.Seq).ToListAsync(ct), ct))
            .Select(e => new RecordingEvent(e.SessionId, e.Seq, e.Time, e.Type, e.Payload, e.PrevHash, e.Hash)).ToList();
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
        var events = (await WithPayloadsAsync(await db.SessionEvents.AsNoTracking().Where(e => e.SessionId == id).OrderBy(e => e.Seq).ToListAsync(ct), ct))
            .Select(e => new RecordingEvent(e.SessionId, e.Seq, e.Time, e.Type, e.Payload, e.PrevHash, e.Hash)).ToList();
        var heads = (await db.SessionHeads.AsNoTracking().Where(h => h.SessionId == id).ToListAsync(ct))
            .Select(h => new ChainHeadSignature(h.SessionId, h.Seq, h.Hash, h.Signature)).ToList();
        var verdict = ChainVerifier.Verify(events, heads, key);
        session.Verification = !verdict.Verifies ? "broken" : verdict.SignedThrough == verdict.Events ? "verified" : "pending";
        session.BrokenAt = verdict.BrokenAt;
        session.VerificationDetail = verdict.Reason;
        await db.SaveChangesAsync(ct);
        return verdict;
    }

    /// <summary>Puts chunked payloads back together from their parts, in order (the hash covers the whole).</summary>
    private async Task<List<SessionEvent>> WithPayloadsAsync(List<SessionEvent> events, CancellationToken ct)
    {
        foreach (var e in events.Where(e => e.PayloadChunks > 0))
        {
            var parts = await db.SessionEventChunks.AsNoTracking().Where(c => c.SessionId == e.SessionId && c.Seq == e.Seq)
                .OrderBy(c => c.Index).Select(c => c.Data).ToListAsync(ct);
            e.Payload = [.. parts.SelectMany(p => p)];
        }
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
