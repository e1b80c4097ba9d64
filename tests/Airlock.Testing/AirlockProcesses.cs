using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace Airlock.Testing;

/// <summary>A real control-plane process on free loopback ports, with an admin API client.</summary>
public sealed class ControlPlaneProcess : IAsyncDisposable
{
    public const string AdminPassword = "correct-horse-battery-staple";

    private ManagedProcess _process;
    private readonly List<string> _args;
    private readonly Dictionary<string, string> _environment;

    private ControlPlaneProcess(ManagedProcess process, List<string> args, Dictionary<string, string> environment, string url, string grpcUrl, string stateDirectory, string apiKey)
    {
        _process = process;
        _args = args;
        _environment = environment;
        Url = url;
        GrpcUrl = grpcUrl;
        StateDirectory = stateDirectory;
        ApiKey = apiKey;
        Api = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(30) };
        Api.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
    }

    public string Url { get; }
    public string GrpcUrl { get; }
    public string StateDirectory { get; }
    public string ApiKey { get; }
    public HttpClient Api { get; }
    public ManagedProcess Process => _process;

    /// <param name="connectionString">Null: the embedded SQLite default in the state directory.</param>
    public static async Task<ControlPlaneProcess> StartAsync(string? connectionString = null, int snapshotTtlSeconds = 3600, IEnumerable<string>? extraArgs = null)
    {
        var state = Directory.CreateTempSubdirectory("airlock-cp-").FullName;
        var url = $"http://127.0.0.1:{FreePort.Next()}";
        var grpc = $"http://127.0.0.1:{FreePort.Next()}";
        var apiKey = "ak_test_" + Guid.NewGuid().ToString("N");
        var args = new List<string>
        {
            $"--Airlock:StateDirectory={state}",
            $"--Kestrel:Endpoints:Http:Url={url}",
            $"--Kestrel:Endpoints:Grpc:Url={grpc}",
            $"--Airlock:Snapshots:TtlSeconds={snapshotTtlSeconds}",
        };
        if (connectionString is not null)
            args.Add($"--ConnectionStrings:Airlock={connectionString}");
        args.AddRange(extraArgs ?? []);
        var environment = new Dictionary<string, string>
        {
            ["AIRLOCK_BOOTSTRAP_API_KEY"] = apiKey,
            ["AIRLOCK_BOOTSTRAP_ADMIN_PASSWORD"] = AdminPassword,
        };
        var process = ManagedProcess.Start("control plane", Binaries.ControlPlane, args, environment);
        var cp = new ControlPlaneProcess(process, args, environment, url, grpc, state, apiKey);
        await process.WaitForOutputAsync("Application started");
        return cp;
    }

    /// <summary>
    /// A second replica of this control plane: the same PostgreSQL store (<paramref name="store"/>), the same
    /// key-ring certificate and the same Redis; this one's API key works at it (the store holds it).
    /// </summary>
    public async Task<(ControlPlaneProcess Replica, HttpClient Api)> StartReplicaAsync(string store, string redis)
    {
        var replica = await StartAsync(store, extraArgs: [$"--Airlock:Redis={redis}", $"--Airlock:KeyRing:CertificatePath={Path.Combine(StateDirectory, "keyring.pfx")}"]);
        var api = new HttpClient { BaseAddress = new Uri(replica.Url), Timeout = TimeSpan.FromSeconds(30) };
        api.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ApiKey);
        return (replica, api);
    }

    /// <summary>The Redis server the test command starts for the replica tests (<c>AIRLOCK_TEST_REDIS</c>).</summary>
    public static string TestRedis => Environment.GetEnvironmentVariable("AIRLOCK_TEST_REDIS")
        ?? throw new InvalidOperationException("AIRLOCK_TEST_REDIS is not set: run with scripts/test.sh, which starts Redis on loopback and sets it");

    /// <summary>Stops (SIGKILL) and starts the same control plane again on the same ports and store.</summary>
    public async Task RestartAsync()
    {
        await _process.DisposeAsync();
        _process = ManagedProcess.Start("control plane", Binaries.ControlPlane, _args, _environment);
        await _process.WaitForOutputAsync("Application started");
    }

    public Task StopAsync() => _process.KillAsync();

    public async Task<string> CreateSidecarAsync(string name, int? tokenTtlMinutes = null)
    {
        await EnsureSuccessAsync(await Api.PostAsJsonAsync("/api/v1/sidecars", new { name }));
        return await CreateEnrollmentTokenAsync(name, tokenTtlMinutes);
    }

    public async Task<string> CreateEnrollmentTokenAsync(string name, int? ttlMinutes = null)
    {
        var response = await Api.PostAsJsonAsync($"/api/v1/sidecars/{name}/enrollment-tokens", new { ttlMinutes });
        await EnsureSuccessAsync(response);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return body.RootElement.GetProperty("token").GetString()!;
    }

    /// <summary>Like EnsureSuccessStatusCode, but the failure names the answer and ends with the control plane's recent output (its log says why).</summary>
    public async Task EnsureSuccessAsync(HttpResponseMessage response)
    {
        if (response.IsSuccessStatusCode)
            return;
        var body = await response.Content.ReadAsStringAsync();
        var output = _process.Output.Split('\n');
        throw new HttpRequestException($"{response.RequestMessage?.Method} {response.RequestMessage?.RequestUri?.PathAndQuery} answered {(int)response.StatusCode}: {body}\n" +
            $"control plane output (last lines):\n{string.Join('\n', output.TakeLast(40))}");
    }

    public Task<HttpResponseMessage> PutPolicyAsync(string yaml) =>
        Api.PutAsync("/api/v1/policy", new StringContent(yaml, Encoding.UTF8, "application/yaml"));

    public async Task<JsonElement> GetSidecarAsync(string name)
    {
        using var doc = JsonDocument.Parse(await Api.GetStringAsync($"/api/v1/sidecars/{name}"));
        return doc.RootElement.Clone();
    }

    public async ValueTask DisposeAsync()
    {
        Api.Dispose();
        await _process.DisposeAsync();
        try
        {
            Directory.Delete(StateDirectory, recursive: true);
        }
        catch (IOException)
        {
            // best effort
        }
    }
}

/// <summary>A real sidecar process with its own state directory and health port.</summary>
public sealed class SidecarProcess : IAsyncDisposable
{
    private readonly bool _ownsState;

    private IEnumerable<string>? _extraArgs;
    private IReadOnlyDictionary<string, string>? _environment;
    private int? _fileDescriptorLimit;

    private SidecarProcess(ManagedProcess process, string stateDirectory, string url, bool ownsState)
    {
        Process = process;
        StateDirectory = stateDirectory;
        Url = url;
        _ownsState = ownsState;
    }

    public ManagedProcess Process { get; private set; }
    public string StateDirectory { get; }
    public string Url { get; }

    public static SidecarProcess Start(string? controlPlane, string? enrollmentToken, string? stateDirectory = null, IEnumerable<string>? extraArgs = null,
        IReadOnlyDictionary<string, string>? environment = null, int? fileDescriptorLimit = null)
    {
        var state = stateDirectory ?? Path.Combine(Directory.CreateTempSubdirectory("airlock-sc-").FullName, "state");
        var url = $"http://127.0.0.1:{FreePort.Next()}";
        var process = ManagedProcess.Start("sidecar", Binaries.Sidecar, Args(controlPlane, enrollmentToken, state, url, extraArgs), environment, fileDescriptorLimit);
        return new SidecarProcess(process, state, url, ownsState: stateDirectory is null) { _extraArgs = extraArgs, _environment = environment, _fileDescriptorLimit = fileDescriptorLimit };
    }

    private static List<string> Args(string? controlPlane, string? token, string state, string url, IEnumerable<string>? extra)
    {
        var args = new List<string> { "--state-dir", state, $"--Kestrel:Endpoints:Http:Url={url}", "--Sidecar:HeartbeatSeconds=1", "--Sidecar:MaxBackoffSeconds=2", "--Sidecar:SyntheticSessions=true", $"--Sidecar:SyntheticSessionsToken={SyntheticSessionsToken}" };
        if (controlPlane is not null)
            args.AddRange(["--control-plane", controlPlane]);
        if (token is not null)
            args.AddRange(["--enrollment-token", token]);
        args.AddRange(extra ?? []);
        return args;
    }

    /// <summary>Kills and starts the sidecar again with the same state directory and port.</summary>
    public async Task RestartAsync(string? controlPlane = null)
    {
        await Process.DisposeAsync();
        Process = ManagedProcess.Start("sidecar", Binaries.Sidecar, Args(controlPlane, null, StateDirectory, Url, _extraArgs), _environment, _fileDescriptorLimit);
    }

    /// <summary>The bearer token test sidecars require on their synthetic-sessions endpoint.</summary>
    public const string SyntheticSessionsToken = "synthetic-sessions-test-token-0123456789abcdef";

    /// <summary>Starts a generated session through the sidecar's real recorder; returns its id.</summary>
    public async Task<Guid> StartSyntheticSessionAsync(int statements, int delayMs = 0, bool end = true, Guid? session = null, int resultBytes = 0)
    {
        using var http = new HttpClient();
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", SyntheticSessionsToken);
        var response = await http.PostAsync($"{Url}/v1/synthetic-sessions?statements={statements}&delayMs={delayMs}&end={(end ? "true" : "false")}{(session is null ? "" : $"&session={session}")}&resultBytes={resultBytes}", null);
        response.EnsureSuccessStatusCode();
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return doc.RootElement.GetProperty("session").GetGuid();
    }

    /// <summary>GET /readyz: (status code, body).</summary>
    public async Task<(int Status, JsonElement Body)> ReadyAsync()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        try
        {
            using var response = await http.GetAsync(Url + "/readyz");
            using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            return ((int)response.StatusCode, doc.RootElement.Clone());
        }
        catch (Exception e) when (e is HttpRequestException or System.Net.Sockets.SocketException or IOException)
        {
            return (0, default); // not listening yet (a reset during connect surfaces unwrapped)
        }
    }

    /// <summary>Polls /readyz until the sidecar serves at least <paramref name="version"/>; returns how long that took.</summary>
    public async Task<TimeSpan> WaitForVersionAsync(long version, TimeSpan? timeout = null)
    {
        var started = System.Diagnostics.Stopwatch.StartNew();
        var limit = timeout ?? TimeSpan.FromSeconds(30);
        while (started.Elapsed < limit)
        {
            var (status, body) = await ReadyAsync();
            if (status == 200 && body.GetProperty("version").GetInt64() >= version)
                return started.Elapsed;
            if (Process.HasExited)
                throw new InvalidOperationException($"sidecar exited ({Process.ExitCode}). Output:\n{Process.Output}");
            await Task.Delay(10);
        }
        throw new TimeoutException($"sidecar did not reach snapshot version {version}. Output:\n{Process.Output}");
    }

    public async ValueTask DisposeAsync()
    {
        await Process.DisposeAsync();
        if (!_ownsState)
            return;
        try
        {
            Directory.Delete(Path.GetDirectoryName(StateDirectory)!, recursive: true);
        }
        catch (IOException)
        {
            // best effort
        }
    }
}
