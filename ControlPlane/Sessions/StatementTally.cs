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

    /// <summary>
    /// Adds a heartbeat's counts to <paramref name="hour"/>, as upserts (the same SQL on SQLite and
    /// PostgreSQL): two sidecars counting the same hour never collide on a new row. Negative counts
    /// (a hostile sidecar) are ignored.
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
            await db.Database.ExecuteSqlInterpolatedAsync(
                $"""INSERT INTO "StatementStats" ("Hour", "Outcome", "Count") VALUES ({hour}, {(int)outcome}, {count}) ON CONFLICT ("Hour", "Outcome") DO UPDATE SET "Count" = "StatementStats"."Count" + excluded."Count" """, ct);
        }
    }
}
