using Npgsql;

namespace Airlock.Testing;

/// <summary>
/// A private PostgreSQL cluster that accepts TCP connections only over TLS (<c>hostssl</c>, SCRAM),
/// with a server certificate for 127.0.0.1 / localhost: for the sidecar's upstream TLS modes.
/// Started from Debian's server binaries as the 'postgres' OS user; removed on dispose.
/// </summary>
public sealed class TlsPostgres : IAsyncDisposable
{
    private readonly string _directory;
    private readonly string _bin;

    private TlsPostgres(string directory, string bin, int port)
    {
        _directory = directory;
        _bin = bin;
        Port = port;
    }

    public int Port { get; }

    /// <param name="method">The pg_hba method for TLS connections: <c>scram-sha-256</c>, <c>md5</c> or <c>password</c>.</param>
    public static async Task<TlsPostgres> StartAsync(string certificateDirectory, string user, string password, string method = "scram-sha-256")
    {
        var bin = Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin")).Where(d => File.Exists(Path.Combine(d, "initdb")))
            .OrderBy(d => d, StringComparer.Ordinal).LastOrDefault() ?? throw new InvalidOperationException("PostgreSQL server binaries not found under /usr/lib/postgresql");
        var directory = Path.Combine("/tmp", $"airlock-tls-pg-{Guid.NewGuid():N}"[..30]);
        Directory.CreateDirectory(directory);
        await Must(Cli.RunAsync("chown", ["postgres:postgres", directory]));
        await Must(Cli.RunAsync("chmod", ["700", directory]));
        await Must(AsPostgres(Path.Combine(bin, "initdb"), "-D", directory, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"));
        File.Copy(Path.Combine(certificateDirectory, "server.pem"), Path.Combine(directory, "server.pem"));
        File.Copy(Path.Combine(certificateDirectory, "server.key"), Path.Combine(directory, "server.key"));
        await File.WriteAllTextAsync(Path.Combine(directory, "pg_hba.conf"), $"local all all trust\nhostssl all all 127.0.0.1/32 {method}\n");
        await Must(Cli.RunAsync("chown", ["-R", "postgres:postgres", directory]));
        await Must(Cli.RunAsync("chmod", ["600", Path.Combine(directory, "server.key")]));
        var port = FreePort.Next();
        await Must(AsPostgres(Path.Combine(bin, "pg_ctl"), "-D", directory, "-l", Path.Combine(directory, "server.log"), "-w", "-t", "60", "-o",
            $"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={directory} -c ssl=on -c ssl_cert_file=server.pem -c ssl_key_file=server.key -c fsync=off", "start"));
        var cluster = new TlsPostgres(directory, bin, port);
        await Must(AsPostgres(Path.Combine(bin, "psql"), "-X", "-q", "-h", directory, "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-U", "postgres", "-d", "postgres",
            "-c", $"CREATE ROLE {user} LOGIN PASSWORD '{password}'"));
        return cluster;
    }

    private static Task<Cli.Result> AsPostgres(string file, params string[] args) => Cli.RunAsync("runuser", ["-u", "postgres", "--", file, .. args]);

    private static async Task Must(Task<Cli.Result> run)
    {
        var result = await run;
        if (result.ExitCode != 0)
            throw new InvalidOperationException(result.ToString());
    }

    public async ValueTask DisposeAsync()
    {
        await AsPostgres(Path.Combine(_bin, "pg_ctl"), "-D", _directory, "-m", "immediate", "stop");
        NpgsqlConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }
}
