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

    /// <summary>Everything needed to verify the session elsewhere, offline (in memory: for tests and small sessions; the API streams <see cref="WriteExportAsync"/>).</summary>
    public async Task<SessionBundle?> ExportAsync(Guid id, TimeProvider time, CancellationToken ct)
    {
        if (await SignerAsync(id, ct) is not { } signer)
            return null;
        var events = new List<RecordingEvent>();
        await foreach (var e in StoredEventsAsync(id, 0, ct))
            events.Add(e);
        return new SessionBundle(SessionBundle.CurrentFormat, id, signer.Sidecar, signer.Key, time.GetUtcNow(), events, await HeadsAsync(id, ct));
    }

    /// <summary>
    /// Writes the session's bundle (the same JSON as <see cref="SessionBundle"/>) to <paramref name="output"/>
    /// event by event, so a session of any length is exported in bounded memory. False when there is no such session.
    /// </summary>
    public async Task<bool> WriteExportAsync(Guid id, Stream output, TimeProvider time, CancellationToken ct)
    {
        if (await SignerAsync(id, ct) is not { } signer)
            return false;
        var heads = await HeadsAsync(id, ct);
        // JSON is built in memory a part at a time and written out asynchronously (the serializer
        // flushes synchronously, which a response body does not allow).
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(64 * 1024);
        await using var writer = new System.Text.Json.Utf8JsonWriter(buffer);
        async Task DrainAsync()
        {
            writer.Flush();
            await output.WriteAsync(buffer.WrittenMemory, ct);
            buffer.ResetWrittenCount();
        }
        writer.WriteStartObject();
        writer.WriteString("format", SessionBundle.CurrentFormat);
        writer.WriteString("session", id);
        writer.WriteString("sidecar", signer.Sidecar);
        writer.WriteBase64String("sidecarPublicKey", signer.Key);
        writer.WriteString("exportedAt", time.GetUtcNow());
        writer.WriteStartArray("events");
        await foreach (var e in StoredEventsAsync(id, 0, ct))
        {
            System.Text.Json.JsonSerializer.Serialize(writer, e, RecordingJson.Options);
            if (buffer.WrittenCount > 64 * 1024)
                await DrainAsync();
        }
        writer.WriteEndArray();
        writer.WritePropertyName("heads");
        System.Text.Json.JsonSerializer.Serialize(writer, heads, RecordingJson.Options);
        writer.WriteEndObject();
        await DrainAsync();
        return true;
    }

    /// <summary>
    /// Recomputes the whole chain from the stored rows, one event at a time (bounded memory): an
    /// edited row shows as "chain broken at event N"; a session whose signed end is missing is
    /// <see cref="SessionVerification.Incomplete"/>, never verified.
    /// </summary>
    public async Task<ChainVerdict?> VerifyAsync(Guid id, CancellationToken ct)
    {
        var session = await db.Sessions.SingleOrDefaultAsync(s => s.Id == id, ct);
        if (session is null || await SignerAsync(id, ct) is not { } signer)
            return null;
        using var verifier = new ChainVerifier(await HeadsAsync(id, ct), signer.Key);
        await foreach (var e in StoredEventsAsync(id, 0, ct))
            if (!verifier.Add(e))
                break;
        var verdict = verifier.Finish();
        session.Verification = verdict.Status;
        session.BrokenAt = verdict.BrokenAt;
        session.VerificationDetail = verdict.Reason;
        await db.SaveChangesAsync(ct);
        return verdict;
    }

    /// <summary>
    /// The sidecar that recorded a session and the key its heads verify with: kept with the session
    /// (re-enrolment and deletion of the sidecar change nothing), else — sessions stored before that —
    /// the sidecar's current key. Null when there is no such session.
    /// </summary>
    private async Task<(string Sidecar, byte[] Key)?> SignerAsync(Guid id, CancellationToken ct)
    {
        var session = await db.Sessions.AsNoTracking().Where(s => s.Id == id).Select(s => new { s.SidecarId, s.SidecarName, s.SigningPublicKey }).SingleOrDefaultAsync(ct);
        if (session is null)
            return null;
        if (session.SigningPublicKey is { } key && session.SidecarName.Length > 0)
            return (session.SidecarName, key);
        var sidecar = await db.Sidecars.AsNoTracking().Where(s => s.Id == session.SidecarId).Select(s => new { s.Name, s.SigningPublicKey }).SingleOrDefaultAsync(ct);
        return (sidecar?.Name ?? session.SidecarName, session.SigningPublicKey ?? sidecar?.SigningPublicKey ?? []);
    }

    private async Task<List<ChainHeadSignature>> HeadsAsync(Guid id, CancellationToken ct) =>
        (await db.SessionHeads.AsNoTracking().Where(h => h.SessionId == id).OrderBy(h => h.Seq).ToListAsync(ct))
            .Select(h => new ChainHeadSignature(h.SessionId, h.Seq, h.Hash, h.Signature)).ToList();

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
