using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;

namespace Airlock.ControlPlane.Data;

/// <summary>
/// The embedded SQLite store has one writer at a time; a writer that finds it busy in a way SQLite will not
/// wait out (two transactions each wanting the other's lock) gets "database is locked" at once. Short writes
/// that are safe to run again (all in one transaction) run again a few times; PostgreSQL never lands here.
/// </summary>
public static class StoreBusy
{
    public const int Attempts = 4;

    public static bool IsBusy(Exception e) =>
        (e as SqliteException ?? e.InnerException as SqliteException) is { SqliteErrorCode: 5 or 6 };

    /// <summary>Runs <paramref name="write"/> (one transaction, all or nothing) again while the store answers busy, forgetting what the failed try tracked.</summary>
    public static async Task<T> RetryAsync<T>(DbContext db, Func<Task<T>> write, CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await write();
            }
            catch (Exception e) when (attempt < Attempts && IsBusy(e))
            {
                db.ChangeTracker.Clear();
                await Task.Delay(TimeSpan.FromMilliseconds(50 * attempt * attempt), ct);
            }
        }
    }
}
