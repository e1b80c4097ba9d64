using Airlock.ControlPlane.Data;
using Airlock.Contracts.Hubs;
using Microsoft.EntityFrameworkCore;

namespace Airlock.ControlPlane.Sessions;

/// <summary>
/// The hourly tally of what recorded statements came to — allowed, masked, blocked, held — that the
/// dashboard charts. Sidecars count as they record (four counters) and send the counts with each
/// heartbeat; the control plane adds them to the hour they arrive in. Nothing here reads a recording:
/// the ingest path, which carries the data path's load, does no extra work for the chart.
/// </summary>
public static class StatementTally
{
    public static long HourOf(DateTimeOffset time) => time.ToUnixTimeSeconds() / 3600;

    /// <summary>More statements than a sidecar can run between two heartbeats (10 s at a million a second).</summary>
    public const long MaxPerHeartbeat = 10_000_000;

    /// <summary>
    /// Adds a heartbeat's counts to <paramref name="hour"/>, as upserts (the same SQL on SQLite and
    /// PostgreSQL): two sidecars counting the same hour never collide on a new row. A count is taken
    /// as at most <see cref="MaxPerHeartbeat"/> and negative ones are ignored: a hostile sidecar can
    /// neither overflow an hour's total nor wipe it.
    /// </summary>
    public static async Task AddAsync(AirlockDbContext db, long hour, StatementCounts counts, CancellationToken ct)
    {
        foreach (var (outcome, count) in new[]
        {
            (StatementOutcome.Allowed, counts.Allowed), (StatementOutcome.Masked, counts.Masked),
            (StatementOutcome.Blocked, counts.Blocked), (StatementOutcome.Held, counts.Held),
        })
        {
            if (count <= 0)
                continue;
            var taken = Math.Min(count, MaxPerHeartbeat);
            await db.Database.ExecuteSqlInterpolatedAsync(
                $"""INSERT INTO "StatementStats" ("Hour", "Outcome", "Count") VALUES ({hour}, {(int)outcome}, {taken}) ON CONFLICT ("Hour", "Outcome") DO UPDATE SET "Count" = "StatementStats"."Count" + excluded."Count" """, ct);
        }
    }
}
