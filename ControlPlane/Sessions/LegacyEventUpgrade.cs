using Airlock.ControlPlane.Data;
using Airlock.Contracts.Hubs;
using Airlock.Contracts.Recording;
using Microsoft.EntityFrameworkCore;

namespace Airlock.ControlPlane.Sessions;

/// <summary>
/// Moves events stored in the first layout (a row per event, large payloads in parts) into
/// <see cref="SessionSegment"/>s at start-up, a page of events per transaction, so an interrupted
/// upgrade resumes where it stopped and loses nothing. Events keep their stored hashes (nothing is
/// re-hashed): a row edited before the upgrade still shows as the event where the chain breaks.
/// </summary>
public static class LegacyEventUpgrade
{
    private const int PageEvents = 5000;
    private const int ProgressEvents = 100_000;

    /// <summary>Moves every legacy event; returns how many were moved.</summary>
    public static async Task<long> RunAsync(AirlockDbContext db, ILogger logger, CancellationToken ct)
    {
        long moved = 0;
        while (await db.SessionEvents.AsNoTracking().OrderBy(e => e.SessionId).ThenBy(e => e.Seq).FirstOrDefaultAsync(ct) is { } first)
        {
            var session = first.SessionId;
            await using var tx = await db.Database.BeginTransactionAsync(ct);
            var rows = await db.SessionEvents.AsNoTracking().Where(e => e.SessionId == session).OrderBy(e => e.Seq).Take(PageEvents).ToListAsync(ct);
            var writer = new SegmentWriter(session);
            foreach (var row in rows)
            {
                var payload = row.PayloadChunks == 0 ? row.Payload
                    : [.. (await db.SessionEventChunks.AsNoTracking().Where(c => c.SessionId == session && c.Seq == row.Seq).OrderBy(c => c.Index).Select(c => c.Data).ToListAsync(ct)).SelectMany(d => d)];
                writer.Add(RecordCodec.Encode(new RecordingEvent(session, row.Seq, row.Time, row.Type, payload, row.PrevHash, row.Hash)), row.Seq);
            }
            db.SessionSegments.AddRange(writer.Complete());
            await db.SaveChangesAsync(ct);
            var through = rows[^1].Seq;
            await db.SessionEventChunks.Where(c => c.SessionId == session && c.Seq <= through).ExecuteDeleteAsync(ct);
            await db.SessionEvents.Where(e => e.SessionId == session && e.Seq <= through).ExecuteDeleteAsync(ct);
            await tx.CommitAsync(ct);
            db.ChangeTracker.Clear();
            if (moved / ProgressEvents != (moved + rows.Count) / ProgressEvents)
                logger.LogInformation("Moving recorded events into segments: {Events} so far", moved + rows.Count);
            moved += rows.Count;
        }
        if (moved > 0)
            logger.LogInformation("Moved {Events} recorded events from the first storage layout into segments", moved);
        return moved;
    }
}
