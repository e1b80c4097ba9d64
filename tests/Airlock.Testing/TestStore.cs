using Airlock.ControlPlane.Data;
using Microsoft.EntityFrameworkCore;

namespace Airlock.Testing;

public enum StoreProvider { Sqlite, Postgres }

/// <summary>A migrated, empty control-plane store on a real SQLite file or a real PostgreSQL database.</summary>
public sealed class TestStore : IAsyncDisposable
{
    private readonly string? _sqliteFile;

    private TestStore(StoreProvider provider, string connectionString, string? sqliteFile)
    {
        Provider = provider;
        ConnectionString = connectionString;
        _sqliteFile = sqliteFile;
    }

    public StoreProvider Provider { get; }
    public string ConnectionString { get; }

    public static async Task<TestStore> CreateAsync(StoreProvider provider)
    {
        TestStore store;
        if (provider == StoreProvider.Sqlite)
        {
            var file = Path.Combine(Path.GetTempPath(), $"airlock-test-{Guid.NewGuid():N}.db");
            store = new TestStore(provider, $"Data Source={file}", file);
        }
        else
        {
            store = new TestStore(provider, await TestPostgres.CreateDatabaseAsync("airlock_test"), null);
        }
        await using var db = store.Open();
        await db.Database.MigrateAsync();
        return store;
    }

    public AirlockDbContext Open() => Provider == StoreProvider.Sqlite
        ? new SqliteAirlockDbContext(new DbContextOptionsBuilder<SqliteAirlockDbContext>().UseSqlite(ConnectionString).Options)
        : new PostgresAirlockDbContext(new DbContextOptionsBuilder<PostgresAirlockDbContext>().UseNpgsql(ConnectionString).Options);

    public async ValueTask DisposeAsync()
    {
        if (_sqliteFile is not null)
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            foreach (var suffix in new[] { "", "-wal", "-shm" })
                File.Delete(_sqliteFile + suffix);
        }
        else
        {
            await TestPostgres.DropDatabaseAsync(ConnectionString);
        }
    }
}
