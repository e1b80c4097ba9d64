using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Airlock.Sidecar.ControlPlane;
using Airlock.Sidecar.Identity;
using Airlock.Sidecar.Policy;
using Airlock.Sidecar.Protocols;
using Airlock.Sidecar.Protocols.Postgres;
using Airlock.Sidecar.Recording;
using Airlock.Sidecar.Snapshots;
using Microsoft.Extensions.Options;

namespace Airlock.Sidecar.Postgres;

/// <summary>
/// One TCP listener per PostgreSQL target in the current snapshot, on the target's
/// <c>listenPort</c>. Listeners follow the snapshot: new targets start listening, removed ones stop,
/// a changed target is served with its new settings from the next connection on, and every live
/// session is checked against each new snapshot (<see cref="OnPolicyApplied"/>) so that it ends when
/// its target, agent or grant goes. A port that cannot be bound is logged, shown at <c>/readyz</c> and
/// tried again every few seconds; the others serve. Accepting survives the machine running short:
/// a failed accept (out of file descriptors, say) is retried with backoff and shown at
/// <c>/readyz</c> until accepts succeed again, and <see cref="Gateway.ConnectionLimits"/> caps what
/// connections that have not logged in may hold, so a flood of idle connections cannot starve agents.
/// </summary>
internal sealed class PostgresListeners : BackgroundService
{
    private readonly SnapshotStore _snapshots;
    private readonly IOptions<Hosting.SidecarOptions> _options;
    private readonly ILogger<PostgresListeners> _logger;
    private readonly GatewayServices _services;
    private readonly X509Certificate2? _certificate;
    private readonly Dictionary<string, Listener> _listeners = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Guid, Action<PolicySnapshot>> _policyWatchers = new();
    private readonly SemaphoreSlim _reconcile = new(1, 1);
    private CancellationToken _stopping;

    public PostgresListeners(SnapshotStore snapshots, AgentAuthenticator authenticator, UpstreamConnector connector, CancelKeys cancelKeys,
        SessionRecorder recorder, LiveSessions liveSessions, SidecarIdentity identity, Hosting.SidecarMetrics metrics, Gateway.ConnectionLimits limits,
        Approvals.ApprovalGate approvals, ControlPlane.HubClient hub, Gateway.RefusalReports refusals,
        IOptions<Hosting.SidecarOptions> options, ILogger<PostgresListeners> logger)
    {
        _snapshots = snapshots;
        _options = options;
        _logger = logger;
        var gateway = options.Value.Postgres;
        _services = new GatewayServices(snapshots, authenticator, connector, cancelKeys, recorder, liveSessions, identity, this, metrics, limits, logger)
        {
            SafeFunctions = gateway.SafeFunctions.Select(f => Protocols.Sql.SqlFunctions.Fold(f.Trim())).ToHashSet(StringComparer.Ordinal),
            Catalog = new FunctionCatalog(connector, logger, TimeProvider.System),
            MaskCatalog = new MaskCatalog(connector, logger, TimeProvider.System, TimeSpan.FromSeconds(gateway.MaskCatalogSeconds)),
            Approvals = approvals,
            ApprovalChannel = hub,
            Refusals = refusals,
        };
        if (gateway.CertificatePath is not null)
            _certificate = X509Certificate2.CreateFromPemFile(gateway.CertificatePath, gateway.KeyPath);
    }

    /// <summary>What every session needs, for front doors other than the listeners (the MCP server).</summary>
    internal GatewayServices Services => _services;

    /// <summary>How often a listener that could not be bound is tried again.</summary>
    public static readonly TimeSpan BindRetryInterval = TimeSpan.FromSeconds(5);

    /// <summary>Problems binding listeners, by target (shown at /readyz).</summary>
    public ConcurrentDictionary<string, string> Problems { get; } = new(StringComparer.Ordinal);

    /// <summary>Target name → bound port of the listeners that accept connections now, for status.</summary>
    public IReadOnlyDictionary<string, int> Serving
    {
        get
        {
            lock (_listeners)
                return _listeners.Where(l => l.Value.AcceptProblem is null).ToDictionary(l => l.Key, l => l.Value.Port);
        }
    }

    /// <summary>Every listener problem now, by target: ports that cannot be bound, and listeners whose accepts fail.</summary>
    public IReadOnlyDictionary<string, string> CurrentProblems
    {
        get
        {
            var problems = new Dictionary<string, string>(Problems, StringComparer.Ordinal);
            lock (_listeners)
                foreach (var (name, listener) in _listeners)
                    if (listener.AcceptProblem is { } problem)
                        problems[name] = problem;
            return problems;
        }
    }

    /// <summary>Runs <paramref name="onApplied"/> with every snapshot applied from now on (a live session re-checks its access).</summary>
    public IDisposable OnPolicyApplied(Action<PolicySnapshot> onApplied)
    {
        var id = Guid.NewGuid();
        _policyWatchers[id] = onApplied;
        return new Subscription(() => _policyWatchers.TryRemove(id, out _));
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _stopping = stoppingToken;
        _snapshots.Applied += OnApplied;
        try
        {
            if (_snapshots.Current is { } current)
                await ReconcileAsync(current.Policy);
            while (true)
            {
                await Task.Delay(BindRetryInterval, stoppingToken);
                // A port that could not be bound — still held by a process that is stopping, say — is tried again.
                if (!Problems.IsEmpty && _snapshots.Current is { } active)
                    await ReconcileAsync(active.Policy);
            }
        }
        catch (OperationCanceledException)
        {
            // stopping
        }
        finally
        {
            _snapshots.Applied -= OnApplied;
            lock (_listeners)
            {
                foreach (var listener in _listeners.Values)
                    listener.Dispose();
                _listeners.Clear();
            }
        }
    }

    private void OnApplied(ActiveSnapshot snapshot) => _ = ReconcileAsync(snapshot.Policy);

    private async Task ReconcileAsync(PolicySnapshot policy)
    {
        await _reconcile.WaitAsync();
        try
        {
            var wanted = policy.Targets.Where(t => t.Kind == TargetKind.Postgres).ToDictionary(t => t.Name, StringComparer.Ordinal);
            foreach (var gone in Problems.Keys.Where(name => !wanted.ContainsKey(name)))
                Problems.TryRemove(gone, out _);
            lock (_listeners)
            {
                foreach (var (name, listener) in _listeners.ToList())
                {
                    if (wanted.TryGetValue(name, out var target) && target.ListenPort == listener.Port)
                    {
                        listener.Target = target; // new settings from the next connection on
                        continue;
                    }
                    listener.Dispose();
                    _listeners.Remove(name);
                    if (!wanted.ContainsKey(name))
                        _logger.LogInformation("Target {Target} left the snapshot: listener on port {Port} closed, its sessions end", name, listener.Port);
                }
                foreach (var (name, target) in wanted)
                {
                    if (_listeners.ContainsKey(name))
                        continue;
                    try
                    {
                        var listener = new Listener(target, IPAddress.Parse(_options.Value.Postgres.ListenAddress));
                        _listeners[name] = listener;
                        Problems.TryRemove(name, out _);
                        _ = AcceptLoopAsync(listener);
                        _logger.LogInformation("Serving PostgreSQL target {Target} on {Address}:{Port}{Tls}, {Sockets}", name, _options.Value.Postgres.ListenAddress, target.ListenPort,
                            _certificate is null ? " (no TLS certificate: agents must connect from loopback with cleartext allowed)" : " (TLS available)",
                            _options.Value.Postgres.NativeSockets && Net.SocketStreams.NativeAvailable ? "epoll sockets" : ".NET sockets");
                    }
                    catch (SocketException e)
                    {
                        var problem = $"cannot listen on port {target.ListenPort}: {e.Message}";
                        // Logged when it starts or changes, not at every retry.
                        if (!Problems.TryGetValue(name, out var known) || known != problem)
                            _logger.LogError("Cannot serve target {Target}: {Problem}; trying again every {Seconds} s", name, problem, BindRetryInterval.TotalSeconds);
                        Problems[name] = problem;
                    }
                }
            }
        }
        finally
        {
            _reconcile.Release();
        }
        foreach (var watcher in _policyWatchers.Values)
            watcher(policy);
    }

    /// <summary>Longest pause between failed accepts; the first retry is after 10 ms.</summary>
    private static readonly TimeSpan MaxAcceptBackoff = TimeSpan.FromSeconds(1);

    private async Task AcceptLoopAsync(Listener listener)
    {
        try
        {
            await AcceptUntilClosedAsync(listener);
        }
        catch (Exception e)
        {
            // A fault of the sidecar's own: the listener is dropped and made again by the retry loop,
            // and /readyz says so meanwhile, rather than claiming a port nobody accepts on.
            _logger.LogError(e, "Target {Target}: the accept loop on port {Port} failed; listening again within {Seconds} s", listener.Target.Name, listener.Port, BindRetryInterval.TotalSeconds);
            lock (_listeners)
            {
                if (_listeners.TryGetValue(listener.Target.Name, out var current) && ReferenceEquals(current, listener))
                    _listeners.Remove(listener.Target.Name);
            }
            Problems[listener.Target.Name] = $"the accept loop on port {listener.Port} failed ({e.GetType().Name}); listening again";
            listener.Dispose();
        }
    }

    private async Task AcceptUntilClosedAsync(Listener listener)
    {
        var backoff = TimeSpan.Zero;
        while (!_stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener.Socket.AcceptAsync(_stopping);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException || e is SocketException && listener.Closed)
            {
                return; // listener closed
            }
            catch (SocketException e)
            {
                // Transient (out of file descriptors or memory, a connection aborted before it was taken):
                // the listener stays, and says so at /readyz until an accept succeeds again.
                _services.Metrics.AcceptFailed();
                backoff = backoff == TimeSpan.Zero ? TimeSpan.FromMilliseconds(10) : TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxAcceptBackoff.Ticks));
                if (listener.AcceptProblem is null)
                    _logger.LogError("Target {Target}: accepting connections on port {Port} fails ({Error}); retrying with backoff up to {Max} s", listener.Target.Name, listener.Port, e.Message, MaxAcceptBackoff.TotalSeconds);
                listener.AcceptProblem = $"accepting connections on port {listener.Port} fails: {e.Message}; retrying";
                try
                {
                    await Task.Delay(backoff, _stopping);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                continue;
            }
            if (listener.AcceptProblem is not null)
            {
                _logger.LogInformation("Target {Target}: accepting connections on port {Port} again", listener.Target.Name, listener.Port);
                listener.AcceptProblem = null;
            }
            backoff = TimeSpan.Zero;
            IDisposable? startupLease = null;
            GatewayConnection connection;
            try
            {
                socket.NoDelay = true;
                var remote = (socket.RemoteEndPoint as IPEndPoint)?.Address;
                var admission = _services.Limits.TryStartup(remote, out startupLease);
                if (admission != Gateway.Admission.Admitted)
                {
                    _services.Metrics.ConnectionRefused();
                    _ = RefuseAsync(socket, listener.Target.Name, remote, admission);
                    continue;
                }
                // Adopting the socket (non-blocking, registered with epoll) can fail when the machine is short of resources.
                connection = new GatewayConnection(socket, listener.Target, _options.Value.Postgres, _certificate, _services, startupLease!);
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
            {
                // This connection only: the listener goes on.
                startupLease?.Dispose();
                socket.Dispose();
                _services.Metrics.AcceptFailed();
                _logger.LogWarning("Target {Target}: a connection could not be taken on ({Error}); closed", listener.Target.Name, e.Message);
                continue;
            }
            _ = Task.Run(async () =>
            {
                try
                {
                    await connection.RunAsync(_stopping);
                }
                catch (Exception e)
                {
                    // One session's failure never touches the others.
                    _logger.LogError(e, "PostgreSQL session on target {Target} failed", listener.Target.Name);
                }
                finally
                {
                    startupLease!.Dispose();
                }
            });
        }
    }

    /// <summary>
    /// Closes a connection over a limit at once, telling the client why as PostgreSQL does when it is
    /// full (FATAL 53300, before the client's startup packet is read); logged once a second at most.
    /// </summary>
    private async Task RefuseAsync(Socket socket, string target, IPAddress? remote, Gateway.Admission admission)
    {
        var limits = _services.Limits.Options;
        var message = admission == Gateway.Admission.TooManyPendingStartupsFromAddress
            ? $"too many connections from {remote} are still starting (Sidecar:Limits:MaxPendingStartupsPerAddress = {limits.MaxPendingStartupsPerAddress})"
            : $"too many connections are still starting (Sidecar:Limits:MaxPendingStartups = {limits.MaxPendingStartups})";
        var now = Environment.TickCount64;
        if (now - Interlocked.Read(ref _lastRefusalLog) > 1000 && Interlocked.Exchange(ref _lastRefusalLog, now) != now)
            _logger.LogWarning("Target {Target}: connection from {Client} refused: {Reason}", target, remote, message);
        try
        {
            var error = new System.Buffers.ArrayBufferWriter<byte>();
            PgWire.WriteError(error, PgError.Fatal(SqlStates.TooManyConnections, message));
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            await socket.SendAsync(error.WrittenMemory, SocketFlags.None, timeout.Token);
            socket.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // the client is gone or not reading: nothing more to tell it
        }
        finally
        {
            socket.Dispose();
        }
    }

    private long _lastRefusalLog;

    public override void Dispose()
    {
        _certificate?.Dispose();
        _reconcile.Dispose();
        base.Dispose();
    }

    private sealed class Listener : IDisposable
    {
        public Listener(TargetPolicy target, IPAddress address)
        {
            _target = target;
            Port = target.ListenPort;
            Socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                Socket.Bind(new IPEndPoint(address, Port));
                Socket.Listen(512);
            }
            catch
            {
                Socket.Dispose();
                throw;
            }
        }

        private TargetPolicy _target;

        public TargetPolicy Target
        {
            get => Volatile.Read(ref _target);
            set => Volatile.Write(ref _target, value);
        }

        public int Port { get; }
        public Socket Socket { get; }

        /// <summary>Why accepts fail now (shown at /readyz), or null while they succeed.</summary>
        public volatile string? AcceptProblem;

        public bool Closed { get; private set; }

        public void Dispose()
        {
            Closed = true;
            Socket.Dispose();
        }
    }

    private sealed class Subscription(Action dispose) : IDisposable
    {
        public void Dispose() => dispose();
    }
}
