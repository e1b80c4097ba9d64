using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Npgsql;

namespace Airlock.Testing;

/// <summary>
/// A control plane, an enrolled sidecar with a TLS certificate, and a PostgreSQL target on the test
/// server (its own database, owned by a SCRAM login the sidecar uses). Agent <c>ci</c> may use the
/// target; agent <c>stranger</c> may not. Clients connect directly (<see cref="DirectConnectionString"/>)
/// or through the sidecar (<see cref="SidecarConnectionString"/>) and must see the same results.
/// </summary>
public sealed class GatewayHarness : IAsyncDisposable
{
    public const string ScramUser = "airlock_scram";
    public const string ScramPassword = "scram-Secret-1";
    public const string Md5User = "airlock_md5";
    public const string Md5Password = "md5-Secret-1";
    public const string CleartextUser = "airlock_clear";
    public const string CleartextPassword = "clear-Secret-1";

    private GatewayHarness(ControlPlaneProcess cp, SidecarProcess sidecar, string database, int port, string certificates, string token)
    {
        ControlPlane = cp;
        Sidecar = sidecar;
        Database = database;
        Port = port;
        CertificateDirectory = certificates;
        Token = token;
    }

    public ControlPlaneProcess ControlPlane { get; }
    public SidecarProcess Sidecar { get; }
    public string Database { get; }
    /// <summary>The sidecar's listener for the target.</summary>
    public int Port { get; }
    /// <summary>ca.pem (trust anchor for verify-full), server.pem, server.key.</summary>
    public string CertificateDirectory { get; }
    /// <summary>A fresh token of agent <c>ci</c>.</summary>
    public string Token { get; }

    public string CaPath => Path.Combine(CertificateDirectory, "ca.pem");

    /// <summary>The one directory the sidecar reads <c>file:</c> credentials from (Sidecar:CredentialReferences:Directories).</summary>
    public string CredentialDirectory => Path.Combine(CertificateDirectory, "credentials");

    /// <summary>The policy document the harness applied (version 2), for tests that change it.</summary>
    public string Policy { get; private init; } = "";

    private ClosedPort? _closedUpstream;

    /// <summary>The lines of one target in <paramref name="policy"/>, from its "- name:" line up to the next entry.</summary>
    public static string TargetBlock(string policy, string target)
    {
        var start = policy.IndexOf($"- name: {target}\n", StringComparison.Ordinal);
        var end = policy.IndexOf("\n- ", start + 1, StringComparison.Ordinal);
        return policy[start..(end + 1)];
    }

    /// <summary>
    /// Listener port per target: pg, pg-down (upstream port closed), pg-badpass (wrong stored password),
    /// pg-md5 (MD5 allowed by its policy), pg-clear (the server asks for a cleartext password and offers
    /// no TLS, so the sidecar refuses to log in), pg-loopback (like pg, agents on loopback may skip TLS).
    /// </summary>
    public IReadOnlyDictionary<string, int> Ports { get; private init; } = new Dictionary<string, int>();

    public string SidecarConnectionStringForTarget(string target, string? token = null, string agent = "ci") =>
        new NpgsqlConnectionStringBuilder(SidecarConnectionStringFor(token ?? Token, agent)) { Port = Ports[target] }.ConnectionString;

    /// <summary>
    /// Adds targets (YAML list items, each ending in a blank line) to the harness's policy, granted to
    /// role <c>rw</c> (agent ci), and waits until the sidecar applied it: one document, so the targets
    /// and their grant arrive in one snapshot.
    /// </summary>
    public async Task ApplyWithTargetsAsync(string targetsYaml, IEnumerable<string> targets)
    {
        const string RwGrantsEnd = "{target: pg-clear}, {target: pg-loopback}]";
        var policy = Policy
            .Replace("roles:\n", targetsYaml + "roles:\n", StringComparison.Ordinal)
            .Replace(RwGrantsEnd, RwGrantsEnd[..^1] + string.Concat(targets.Select(t => $", {{target: {t}}}")) + "]", StringComparison.Ordinal);
        var (_, ready) = await Sidecar.ReadyAsync();
        var put = await ControlPlane.PutPolicyAsync(policy);
        if (!put.IsSuccessStatusCode)
            throw new InvalidOperationException($"the policy was refused: {await put.Content.ReadAsStringAsync()}");
        await Sidecar.WaitForVersionAsync(ready.GetProperty("version").GetInt64() + 1);
    }

    public static NpgsqlConnectionStringBuilder Server => new(TestPostgres.ServerConnectionString);

    public string DirectConnectionString => new NpgsqlConnectionStringBuilder
    {
        Host = Server.Host, Port = Server.Port, Database = Database, Username = ScramUser, Password = ScramPassword, Pooling = false,
    }.ConnectionString;

    public string SidecarConnectionString => SidecarConnectionStringFor(Token);

    /// <summary>The sidecar's connection string for <paramref name="agent"/>'s token (the startup user must be the token's agent).</summary>
    public string SidecarConnectionStringFor(string token, string agent = "ci") => new NpgsqlConnectionStringBuilder
    {
        Host = "127.0.0.1", Port = Port, Database = Database, Username = agent, Password = token, Pooling = false, SslMode = SslMode.Require,
    }.ConnectionString;

    /// <summary>libpq connection strings for psql, pgbench and node-postgres (password in PGPASSWORD).</summary>
    public string DirectLibpq => $"host={Server.Host} port={Server.Port} dbname={Database} user={ScramUser} sslmode=disable";

    public string SidecarLibpq => $"host=127.0.0.1 port={Port} dbname={Database} user=ci sslmode=require";

    /// <param name="storeConnectionString">The control plane's store (null: its embedded SQLite file).</param>
    /// <param name="controlPlaneArgs">More options for the control plane.</param>
    public static async Task<GatewayHarness> StartAsync(string upstreamUser = ScramUser, string credentialYaml = "password: " + ScramPassword, string tls = "prefer",
        IEnumerable<string>? sidecarArgs = null, int? sidecarFileDescriptorLimit = null, string? storeConnectionString = null, IEnumerable<string>? controlPlaneArgs = null)
    {
        // The listen ports were free a moment ago; another test's server may take one before the sidecar
        // binds it (then that server would answer this harness's connections). Start again on new ports.
        string? problem = null;
        for (var attempt = 1; attempt <= 3; attempt++)
        {
            var harness = await StartOnFreePortsAsync(upstreamUser, credentialYaml, tls, sidecarArgs, sidecarFileDescriptorLimit, storeConnectionString, controlPlaneArgs);
            problem = await harness.ListenerProblemAsync();
            if (problem is null)
                return harness;
            await harness.DisposeAsync();
        }
        throw new InvalidOperationException($"the sidecar could not listen on the harness's ports three times: {problem}");
    }

    private static async Task<GatewayHarness> StartOnFreePortsAsync(string upstreamUser, string credentialYaml, string tls, IEnumerable<string>? sidecarArgs, int? fileDescriptorLimit,
        string? storeConnectionString, IEnumerable<string>? controlPlaneArgs)
    {
        await EnsureLoginRolesAsync();
        var database = await CreateDatabaseAsync();
        var certificates = WriteCertificates();
        var port = FreePort.Next();
        var (downPort, badPasswordPort, md5Port, clearPort, loopbackPort) = (FreePort.Next(), FreePort.Next(), FreePort.Next(), FreePort.Next(), FreePort.Next());
        var closed = new ClosedPort(); // pg-down's upstream: refused for the harness's lifetime
        var closedPort = closed.Port;
        var cp = await ControlPlaneProcess.StartAsync(storeConnectionString, extraArgs: controlPlaneArgs);
        var sidecar = SidecarProcess.Start(cp.Url, await cp.CreateSidecarAsync("edge-1"), extraArgs:
        [
            $"--Sidecar:Postgres:CertificatePath={Path.Combine(certificates, "server.pem")}",
            $"--Sidecar:Postgres:KeyPath={Path.Combine(certificates, "server.key")}",
            "--Sidecar:Postgres:ListenAddress=127.0.0.1",
            $"--Sidecar:Postgres:UpstreamCaPath={Path.Combine(certificates, "ca.pem")}",
            "--Sidecar:CredentialReferences:EnvironmentPrefixes:0=AIRLOCK_TEST_",
            $"--Sidecar:CredentialReferences:Directories:0={Directory.CreateDirectory(Path.Combine(certificates, "credentials")).FullName}",
            .. sidecarArgs ?? [],
        ], environment: new Dictionary<string, string> { ["AIRLOCK_TEST_PG_PASSWORD"] = ScramPassword, ["AIRLOCK_TEST_MD5_PASSWORD"] = Md5Password }, fileDescriptorLimit: fileDescriptorLimit);
        await sidecar.WaitForVersionAsync(1);
        var policy = $$"""
            targets:
            - name: pg
              sidecar: edge-1
              listenPort: {{port}}
              upstream: {host: {{Server.Host}}, port: {{Server.Port}}, database: {{database}}, username: {{upstreamUser}}, tls: {{tls}}, {{credentialYaml}}}
            - name: pg-down
              sidecar: edge-1
              listenPort: {{downPort}}
              upstream: {host: 127.0.0.1, port: {{closedPort}}, database: {{database}}, username: {{ScramUser}}, credential: "env:AIRLOCK_TEST_PG_PASSWORD"}
            - name: pg-badpass
              sidecar: edge-1
              listenPort: {{badPasswordPort}}
              upstream: {host: {{Server.Host}}, port: {{Server.Port}}, database: {{database}}, username: {{ScramUser}}, password: not-the-password}
            - name: pg-md5
              sidecar: edge-1
              listenPort: {{md5Port}}
              upstream: {host: {{Server.Host}}, port: {{Server.Port}}, database: {{database}}, username: {{Md5User}}, credential: "env:AIRLOCK_TEST_MD5_PASSWORD", auth: [md5]}
            - name: pg-clear
              sidecar: edge-1
              listenPort: {{clearPort}}
              upstream: {host: {{Server.Host}}, port: {{Server.Port}}, database: {{database}}, username: {{CleartextUser}}, tls: prefer, password: {{CleartextPassword}}, auth: [password]}
            - name: pg-loopback
              sidecar: edge-1
              listenPort: {{loopbackPort}}
              allowCleartextOnLoopback: true
              upstream: {host: {{Server.Host}}, port: {{Server.Port}}, database: {{database}}, username: {{upstreamUser}}, tls: {{tls}}, {{credentialYaml}}}
            roles:
            - name: rw
              grants: [{target: pg}, {target: pg-down}, {target: pg-badpass}, {target: pg-md5}, {target: pg-clear}, {target: pg-loopback}]
              rules:
              - name: everything
                action: allow
                match:
                  classes: [read, write, ddl, dcl, admin, unknown]
            - name: limited
              grants: [{target: pg-loopback}]
              rules:
              - name: everything
                action: allow
                match:
                  classes: [read, write, ddl, dcl, admin, unknown]
            agents:
            - {name: ci, owner: admin, role: rw}
            - {name: stranger, owner: admin, role: limited}
            """;
        var put = await cp.PutPolicyAsync(policy);
        if (put.StatusCode != HttpStatusCode.OK)
            throw new InvalidOperationException($"policy refused: {await put.Content.ReadAsStringAsync()}");
        await sidecar.WaitForVersionAsync(2);
        var harness = new GatewayHarness(cp, sidecar, database, port, certificates, await TokenAsync(cp, "ci"))
        {
            Policy = policy,
            _closedUpstream = closed,
            Ports = new Dictionary<string, int> { ["pg"] = port, ["pg-down"] = downPort, ["pg-badpass"] = badPasswordPort, ["pg-md5"] = md5Port, ["pg-clear"] = clearPort, ["pg-loopback"] = loopbackPort },
        };
        return harness;
    }

    /// <summary>Null once the sidecar serves every target on its port; else why it cannot (a port taken meanwhile).</summary>
    private async Task<string?> ListenerProblemAsync()
    {
        for (var i = 0; i < 300; i++)
        {
            var (status, body) = await Sidecar.ReadyAsync();
            if (status == 200)
            {
                if (body.GetProperty("listenerProblems").EnumerateObject().FirstOrDefault() is { Value.ValueKind: JsonValueKind.String } problem)
                    return $"{problem.Name}: {problem.Value.GetString()}";
                var serving = body.GetProperty("listeners");
                if (Ports.All(p => serving.TryGetProperty(p.Key, out var port) && port.GetInt32() == p.Value))
                {
                    await WaitForListenerAsync();
                    return null;
                }
            }
            await Task.Delay(100);
        }
        throw new TimeoutException($"the sidecar did not serve every target within 30 s. Output:\n{Sidecar.Process.Output}");
    }

    /// <summary>Waits until an agent can log in with <paramref name="connectionString"/> (its role's snapshot has reached the sidecar).</summary>
    public static async Task WaitUntilAgentConnectsAsync(string connectionString, int seconds = 30)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            try
            {
                await using var connection = new NpgsqlConnection(connectionString);
                await connection.OpenAsync();
                return;
            }
            catch (PostgresException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }
        }
    }

    /// <summary>A token for an agent from Airlock's token endpoint (client secret); for <paramref name="resource"/> (RFC 8707) when given.</summary>
    public static async Task<string> TokenAsync(ControlPlaneProcess cp, string agent, string? resource = null)
    {
        var secret = JsonDocument.Parse(await (await cp.Api.PostAsync($"/api/v1/agents/{agent}/secret", null)).Content.ReadAsStringAsync())
            .RootElement.GetProperty("clientSecret").GetString()!;
        using var http = new HttpClient();
        using var response = await http.PostAsync(cp.Url + "/connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials", ["client_id"] = agent, ["client_secret"] = secret,
        }.Concat(resource is null ? [] : [new KeyValuePair<string, string>("resource", resource)])));
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        return body.TryGetProperty("access_token", out var token) && token.GetString() is { } value ? value : throw new InvalidOperationException($"no token: {body}");
    }

    private Task WaitForListenerAsync() => WaitForListenerAsync(Port);

    /// <summary>Until the sidecar accepts connections on <paramref name="port"/> (a new target's listener opens when its snapshot arrives).</summary>
    public static async Task WaitForListenerAsync(int port)
    {
        for (var i = 0; i < 100; i++)
        {
            try
            {
                using var client = new System.Net.Sockets.TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, port);
                return;
            }
            catch (System.Net.Sockets.SocketException)
            {
                await Task.Delay(100);
            }
        }
        throw new TimeoutException($"the sidecar did not listen on port {port}");
    }

    /// <summary>
    /// Login roles for each password method, and a pg_hba.conf that asks for them (first match wins;
    /// everything else keeps trust on loopback, as the test server starts).
    /// </summary>
    public static async Task EnsureLoginRolesAsync()
    {
        await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(TestPostgres.ServerConnectionString) { Database = "postgres", Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        async Task Run(string sql)
        {
            await using var command = new NpgsqlCommand(sql, connection);
            await command.ExecuteNonQueryAsync();
        }
        foreach (var (user, password, encryption) in new[] { (ScramUser, ScramPassword, "scram-sha-256"), (Md5User, Md5Password, "md5"), (CleartextUser, CleartextPassword, "scram-sha-256") })
        {
            await Run($"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{user}') THEN CREATE ROLE {user} LOGIN CREATEDB; END IF; END $$");
            await Run($"SET password_encryption = '{encryption}'; ALTER ROLE {user} PASSWORD '{password}'");
        }
        await using (var command = new NpgsqlCommand("SHOW hba_file", connection))
        {
            var hba = (string)(await command.ExecuteScalarAsync())!;
            await Run($"""
                COPY (VALUES
                  ('host all {ScramUser} 127.0.0.1/32 scram-sha-256'),
                  ('host all {Md5User} 127.0.0.1/32 md5'),
                  ('host all {CleartextUser} 127.0.0.1/32 password'),
                  ('local all all trust'),
                  ('host all all 127.0.0.1/32 trust'),
                  ('host all all ::1/128 trust')
                ) TO '{hba}'
                """);
        }
        await Run("SELECT pg_reload_conf()");
    }

    /// <summary>A fresh database on the test server, owned by the SCRAM login role.</summary>
    public static async Task<string> CreateDatabaseAsync()
    {
        var name = $"gw_{Guid.NewGuid():N}"[..30];
        await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(TestPostgres.ServerConnectionString) { Database = "postgres", Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        await using (var command = new NpgsqlCommand($"CREATE DATABASE {name} OWNER {ScramUser}", connection))
            await command.ExecuteNonQueryAsync();
        foreach (var user in new[] { Md5User, CleartextUser })
            await using (var grant = new NpgsqlCommand($"GRANT ALL ON DATABASE {name} TO {user}", connection))
                await grant.ExecuteNonQueryAsync();
        return name;
    }

    /// <summary>A private CA and a server certificate for localhost / 127.0.0.1, as PEM files.</summary>
    public static string WriteCertificates()
    {
        var directory = Directory.CreateTempSubdirectory("airlock-tls-").FullName;
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=Airlock Test CA", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        // One clock reading for both: the leaf must not outlive its CA (a second boundary in between did).
        var now = DateTimeOffset.UtcNow;
        using var ca = caRequest.CreateSelfSigned(now.AddDays(-1), now.AddDays(30));

        using var serverKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var serverRequest = new CertificateRequest("CN=localhost", serverKey, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName("localhost");
        names.AddIpAddress(IPAddress.Loopback);
        serverRequest.CertificateExtensions.Add(names.Build());
        serverRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        serverRequest.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        using var server = serverRequest.Create(ca, now.AddDays(-1), now.AddDays(30), RandomNumberGenerator.GetBytes(8));

        File.WriteAllText(Path.Combine(directory, "ca.pem"), ca.ExportCertificatePem());
        File.WriteAllText(Path.Combine(directory, "server.pem"), server.ExportCertificatePem());
        File.WriteAllText(Path.Combine(directory, "server.key"), serverKey.ExportPkcs8PrivateKeyPem());
        return directory;
    }

    public async ValueTask DisposeAsync()
    {
        await Sidecar.DisposeAsync();
        await ControlPlane.DisposeAsync();
        _closedUpstream?.Dispose();
        await DropDatabaseAsync();
        // A session the gateway ended because of its own fault (the agent got XX000) or an epoll
        // continuation that threw is a bug, whatever the test itself checked: fail it, with the log.
        var output = Sidecar.Process.Output;
        foreach (var marker in (string[])["the gateway failed and ended it", "epoll loop: a socket continuation failed"])
            if (output.IndexOf(marker, StringComparison.Ordinal) is var at and >= 0)
                throw new InvalidOperationException($"the sidecar logged an internal failure ('{marker}'):\n{output[Math.Max(0, at - 2000)..Math.Min(output.Length, at + 6000)]}");
    }

    private async Task DropDatabaseAsync()
    {
        try
        {
            await TestPostgres.DropDatabaseAsync(new NpgsqlConnectionStringBuilder(TestPostgres.ServerConnectionString) { Database = Database }.ConnectionString);
        }
        catch (NpgsqlException)
        {
            // best effort
        }
        Directory.Delete(CertificateDirectory, recursive: true);
    }
}
