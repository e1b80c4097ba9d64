using System.ComponentModel.DataAnnotations;
using Airlock.ControlPlane.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Airlock.ControlPlane.Sessions;

/// <summary>Section <c>Airlock:Recordings</c>.</summary>
public sealed class RecordingOptions
{
    /// <summary>Sessions that ended longer ago than this are purged (events, heads, session). 0 keeps everything.</summary>
    [Range(0, 36500)]
    public int RetentionDays { get; set; } = 90;

    [Range(1, 24 * 60)]
    public int PurgeIntervalMinutes { get; set; } = 60;
}

/// <summary>Deletes recordings past the retention period; every purge is audit-logged with what it removed.</summary>
public sealed class RetentionPurger(IServiceScopeFactory scopes, IOptions<RecordingOptions> options, TimeProvider time, ILogger<RetentionPurger> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await PurgeAsync(stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogError(e, "Recording purge failed");
            }
            try
            {
                await Task.Delay(TimeSpan.FromMinutes(options.Value.PurgeIntervalMinutes), time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Purges now; returns how many sessions went.</summary>
    public async Task<int> PurgeAsync(CancellationToken ct)
    {
        if (options.Value.RetentionDays == 0)
            return 0;
        var cutoff = time.GetUtcNow().AddDays(-options.Value.RetentionDays);
        using var scope = scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<AirlockDbContext>();
        // Refused connections and the statement tally are kept as long as recordings.
        await db.RefusedConnections.Where(r => r.At < cutoff).ExecuteDeleteAsync(ct);
        var cutoffHour = StatementTally.HourOf(cutoff);
        await db.StatementStats.Where(s => s.Hour < cutoffHour).ExecuteDeleteAsync(ct);
        var expired = await db.Sessions.Where(s => s.EndedAt != null && s.EndedAt < cutoff).Select(s => s.Id).Take(1000).ToListAsync(ct);
        if (expired.Count == 0)
            return 0;
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        var events = await db.Sessions.Where(s => expired.Contains(s.Id)).SumAsync(s => s.EventCount, ct);
        await db.SessionSegments.Where(s => expired.Contains(s.SessionId)).ExecuteDeleteAsync(ct);
        await db.SessionHeads.Where(h => expired.Contains(h.SessionId)).ExecuteDeleteAsync(ct);
        await db.Sessions.Where(s => expired.Contains(s.Id)).ExecuteDeleteAsync(ct);
        db.Record(time.GetUtcNow(), "retention", "purge", "sessions", $"{expired.Count} session(s)", null,
            new { sessions = expired.Count, events, endedBefore = cutoff, retentionDays = options.Value.RetentionDays });
        await db.SaveChangesAsync(ct);
        await tx.CommitAsync(ct);
        logger.LogInformation("Purged {Sessions} recorded session(s) ({Events} events) that ended before {Cutoff:O}", expired.Count, events, cutoff);
        return expired.Count;
    }
}
