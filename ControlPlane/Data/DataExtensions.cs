using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;

namespace Airlock.ControlPlane.Data;

public static class DataExtensions
{
    /// <summary>
    /// Registers the store named by <c>ConnectionStrings:Airlock</c>: a PostgreSQL connection string
    /// (it contains <c>Host=</c>) selects PostgreSQL, anything else is a SQLite connection string.
    /// Default: a SQLite file in the state directory.
    /// </summary>
    public static IHostApplicationBuilder AddAirlockStore(this IHostApplicationBuilder builder, string stateDirectory)
    {
        var connectionString = builder.Configuration.GetConnectionString("Airlock");
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            var file = Path.Combine(stateDirectory, "airlock.db");
            OwnerOnly(file);
            connectionString = $"Data Source={file}";
        }

        if (IsPostgres(connectionString))
        {
            builder.Services.AddDbContext<PostgresAirlockDbContext>(o => o.UseNpgsql(connectionString));
            builder.Services.AddScoped<AirlockDbContext>(sp => sp.GetRequiredService<PostgresAirlockDbContext>());
        }
        else
        {
            builder.Services.AddDbContext<SqliteAirlockDbContext>(o => o.UseSqlite(connectionString));
            builder.Services.AddScoped<AirlockDbContext>(sp => sp.GetRequiredService<SqliteAirlockDbContext>());
        }
        return builder;
    }

    /// <summary>
    /// Creates the embedded store's file 0600 before SQLite opens it (an empty file is a new database),
    /// and narrows an existing one: SQLite gives its journal and WAL files the database file's mode.
    /// </summary>
    private static void OwnerOnly(string file)
    {
        if (OperatingSystem.IsWindows())
            return;
        const UnixFileMode mode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        if (!File.Exists(file))
            new FileStream(file, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = mode }).Dispose();
        foreach (var path in new[] { file, file + "-wal", file + "-shm", file + "-journal" })
            if (File.Exists(path))
                File.SetUnixFileMode(path, mode);
    }

    public static bool IsPostgres(string connectionString) =>
        connectionString.Contains("Host=", StringComparison.OrdinalIgnoreCase)
        || connectionString.StartsWith("postgres", StringComparison.OrdinalIgnoreCase);
}

/// <summary>Design-time factories for <c>dotnet ef migrations add</c>; never used at run time.</summary>
internal sealed class SqliteDesignTimeFactory : IDesignTimeDbContextFactory<SqliteAirlockDbContext>
{
    public SqliteAirlockDbContext CreateDbContext(string[] args) =>
        new(new DbContextOptionsBuilder<SqliteAirlockDbContext>().UseSqlite("Data Source=design.db").Options);
}

internal sealed class PostgresDesignTimeFactory : IDesignTimeDbContextFactory<PostgresAirlockDbContext>
{
    public PostgresAirlockDbContext CreateDbContext(string[] args) =>
        new(new DbContextOptionsBuilder<PostgresAirlockDbContext>().UseNpgsql("Host=localhost;Database=design").Options);
}
