using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Airlock.Contracts.Recording;
using Airlock.Sidecar.ControlPlane;
using Airlock.Sidecar.Identity;
using Airlock.Sidecar.Policy;
using Airlock.Sidecar.Policy.Masking;
using Airlock.Sidecar.Policy.Guardrails;
using Airlock.Sidecar.Protocols.Postgres;
using Airlock.Sidecar.Recording;
using Airlock.Sidecar.Snapshots;

namespace Airlock.Sidecar.Postgres;

/// <summary>
/// One agent connection to a PostgreSQL target, from the first byte to the last:
/// <list type="number">
/// <item>startup: SSLRequest → TLS (or 'N' without a certificate; bytes sent before the handshake
/// close the connection), or TLS straight away (PostgreSQL 17's direct negotiation, ALPN
/// "postgresql" required), GSSENCRequest → 'N', CancelRequest → matched and forwarded, protocol 3.0,
/// startup parameters through <see cref="StartupPolicy"/>;</item>
/// <item>the agent's token as the password (only inside TLS, or from loopback when allowed) →
/// agent and role from the current snapshot; the role must grant the target;</item>
/// <item>the upstream login with the target's credential; the agent sees the server's parameters,
/// its real process id with a proxy-issued cancel secret, and ReadyForQuery;</item>
/// <item>the relay, recorded from <c>session.start</c> to <c>session.end</c>.</item>
/// </list>
/// Every refusal is a FATAL with a precise SQLSTATE before any upstream connection is opened.
/// </summary>
/// <param name="startupLease">This connection's slot among those still in startup (Sidecar:Limits); given back once the session is served, or the connection ends.</param>
internal sealed class GatewayConnection(
    Socket socket,
    TargetPolicy target,
    PostgresGatewayOptions options,
    X509Certificate2? certificate,
    GatewayServices services,
    IDisposable startupLease)
{
    private TimeSpan StartupTimeout => TimeSpan.FromSeconds(services.Limits.Options.StartupTimeoutSeconds);
    private IDisposable? _sessionLease;
    private Stream _stream = Net.SocketStreams.ForAccepted(socket, options.NativeSockets);
    private bool _tls;

    private IPEndPoint? Remote => socket.RemoteEndPoint as IPEndPoint;

    /// <summary>The user name of the startup packet, once read: who the client says it is.</summary>
    private string? _claimedUser;

    public async Task RunAsync(CancellationToken stopping)
    {
        var client = Remote?.ToString() ?? "unknown";
        try
        {
            using var startupTimeout = CancellationTokenSource.CreateLinkedTokenSource(stopping);
            startupTimeout.CancelAfter(StartupTimeout);
            var startup = await ReadStartupAsync(startupTimeout.Token);
            if (startup is null)
                return;
            _claimedUser = startup["user"];
            var (agent, upstream, readOnly) = await AcceptAsync(startup, startupTimeout.Token);
            services.Metrics.ConnectionServed();
            startupLease.Dispose(); // served: no longer a connection in startup
            await PostgresSession.ServeAsync(_stream, target, options, services, agent, upstream, readOnly, new SessionOrigin(client, _tls), stopping);
        }
        catch (GatewayRefusal refusal)
        {
            services.Metrics.ConnectionRefused();
            services.Logger.LogWarning("PostgreSQL connection from {Client} to target {Target} refused: {Reason}", client, target.Name, refusal.Error.Message);
            services.Refusals.Report(target.Name, _claimedUser, client, refusal.Error.SqlState, refusal.Error.Message);
            await TryWriteErrorAsync(refusal.Error);
        }
        catch (OperationCanceledException)
        {
            if (!stopping.IsCancellationRequested)
                await TryWriteErrorAsync(PgError.Fatal(SqlStates.CannotConnectNow, "the startup took too long"));
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or SocketException or AuthenticationException)
        {
            services.Logger.LogInformation("PostgreSQL connection from {Client} to target {Target} closed during startup: {Error}", client, target.Name, e.Message);
        }
        finally
        {
            startupLease.Dispose();
            _sessionLease?.Dispose();
            await _stream.DisposeAsync();
        }
    }

    /// <summary>Reads packets until a StartupMessage (returned) or a handled request that ends the connection (null).</summary>
    private async Task<StartupRequest?> ReadStartupAsync(CancellationToken ct)
    {
        while (true)
        {
            var header = new byte[4];
            await _stream.ReadExactlyAsync(header, ct);
            if (!_tls && header[0] == TlsHandshakeRecord)
            {
                if (!await StartDirectTlsAsync(header, ct))
                    return null;
                continue;
            }
            var startup = await ReadStartupPacketAsync(header, ct);
            switch (startup.Kind)
            {
                case StartupKind.Ssl when _tls:
                    throw new GatewayRefusal(PgError.Fatal(SqlStates.ProtocolViolation, "SSLRequest inside TLS"));
                case StartupKind.Ssl when certificate is null:
                    await _stream.WriteAsync("N"u8.ToArray(), ct);
                    continue;
                case StartupKind.Ssl:
                    // A client that sent more before our answer is injecting plaintext meant to be read as if
                    // it came through TLS (CVE-2021-23214 class). Checked before answering: after 'S' the
                    // client's ClientHello may legitimately be on its way.
                    if (socket.Available > 0)
                    {
                        services.Logger.LogWarning("PostgreSQL client {Client} sent bytes after SSLRequest before the TLS handshake; connection closed", Remote);
                        return null;
                    }
                    await _stream.WriteAsync("S"u8.ToArray(), ct);
                    await StartTlsAsync(_stream, ct);
                    continue;
                case StartupKind.GssEnc:
                    await _stream.WriteAsync("N"u8.ToArray(), ct);
                    continue;
                case StartupKind.Cancel:
                    await ForwardCancelAsync(startup, ct);
                    return null;
                default:
                    return startup;
            }
        }
    }

    /// <summary>The first byte of a TLS handshake record; no startup packet length starts with it (it would be over 369 MB).</summary>
    private const byte TlsHandshakeRecord = 0x16;

    private static readonly SslApplicationProtocol PostgresAlpn = new("postgresql"u8.ToArray());

    /// <param name="alpn">Offer ALPN "postgresql" (direct TLS, where it is required); after an SSLRequest, clients need none.</param>
    private async Task<SslStream> StartTlsAsync(Stream inner, CancellationToken ct, bool alpn = false)
    {
        var ssl = new SslStream(inner, leaveInnerStreamOpen: false);
        _stream = ssl; // disposed with the connection even when the handshake fails
        await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
        {
            ServerCertificate = certificate,
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            ApplicationProtocols = alpn ? [PostgresAlpn] : null,
        }, ct);
        _tls = true;
        return ssl;
    }

    /// <summary>
    /// PostgreSQL 17's direct TLS (<c>sslnegotiation=direct</c>): the client starts the handshake
    /// without an SSLRequest. Like PostgreSQL, the sidecar requires ALPN "postgresql", so a TLS client
    /// of another protocol cannot be talked into a PostgreSQL session. False when the connection is
    /// closed instead (no certificate, no ALPN): a TLS client cannot read a plaintext error.
    /// </summary>
    private async Task<bool> StartDirectTlsAsync(byte[] header, CancellationToken ct)
    {
        if (certificate is null)
        {
            services.Logger.LogWarning("PostgreSQL client {Client} started TLS directly, but this sidecar has no TLS certificate (Sidecar:Postgres:CertificatePath); connection closed", Remote);
            return false;
        }
        var ssl = await StartTlsAsync(new ReplayedPrefixStream(header, _stream), ct, alpn: true);
        if (ssl.NegotiatedApplicationProtocol != PostgresAlpn)
        {
            services.Logger.LogWarning("PostgreSQL client {Client} started TLS directly without ALPN \"postgresql\"; connection closed", Remote);
            return false;
        }
        return true;
    }

    private async Task<StartupRequest> ReadStartupPacketAsync(byte[] lengthBytes, CancellationToken ct)
    {
        var length = BinaryPrimitives.ReadInt32BigEndian(lengthBytes);
        if (StartupRequest.CheckLength(length) is { } problem)
            throw new GatewayRefusal(PgError.Fatal(SqlStates.ProtocolViolation, $"invalid startup packet: {problem}"));
        var packet = new byte[length - 4];
        await _stream.ReadExactlyAsync(packet, ct);
        try
        {
            return StartupRequest.Parse(packet);
        }
        catch (PgProtocolException e)
        {
            throw new GatewayRefusal(PgError.Fatal(SqlStates.ProtocolViolation, $"invalid startup packet: {e.Message}"));
        }
    }

    private async Task ForwardCancelAsync(StartupRequest cancel, CancellationToken ct)
    {
        // Like PostgreSQL: no answer either way, so a wrong key tells the sender nothing.
        if (services.CancelKeys.Find(cancel.ProcessId, cancel.Secret) is not { } entry)
        {
            services.Logger.LogInformation("Cancel request from {Client} matches no session; ignored", Remote);
            return;
        }
        // A statement held for approval stops waiting; the cancel still goes upstream, for what the session
        // sent before it (still running there, perhaps) — the server ignores it when nothing runs.
        if (entry.Hold.TryCancel())
            services.Logger.LogInformation("Cancel request from {Client} ended a wait for approval", Remote);
        try
        {
            await services.Connector.CancelAsync(entry.Target, entry.ProcessId, entry.RealSecret, ct);
        }
        catch (GatewayRefusal e)
        {
            services.Logger.LogWarning("Cancel for target {Target} not delivered: {Reason}", entry.Target.Name, e.Error.Message);
        }
    }

    /// <summary>Checks the startup, the agent's token and its grant, then logs in upstream.</summary>
    /// <returns>The agent, its upstream session, and whether that session runs read-only (the role's rules allow no writes on this target).</returns>
    private async Task<(AgentPolicy Agent, UpstreamSession Upstream, bool ReadOnly)> AcceptAsync(StartupRequest startup, CancellationToken ct)
    {
        if (startup.MajorVersion != 3)
            throw new GatewayRefusal(PgError.Fatal(SqlStates.FeatureNotSupported, $"unsupported frontend protocol {startup.MajorVersion}.{startup.MinorVersion}: the gateway speaks 3.0"));
        var decision = StartupPolicy.Decide(startup, target.Upstream.Database);
        if (decision.Refusal is { } refusal)
            throw new GatewayRefusal(refusal);
        if (startup.MinorVersion > 0 || decision.IgnoredProtocolOptions.Count > 0)
        {
            var buffer = new ArrayBufferWriter<byte>();
            PgWire.WriteNegotiateProtocolVersion(buffer, 0, decision.IgnoredProtocolOptions);
            await _stream.WriteAsync(buffer.WrittenMemory, ct);
        }

        var loopback = Remote is { } remote && IPAddress.IsLoopback(remote.Address);
        if (!_tls && !(loopback && target.AllowCleartextOnLoopback))
        {
            var instead = certificate is null
                ? "this sidecar has no TLS certificate (Sidecar:Postgres:CertificatePath); ask its operator to configure one"
                : "connect with sslmode=require or sslmode=verify-full";
            throw new GatewayRefusal(PgError.Fatal(SqlStates.InvalidAuthorization,
                "the agent token is sent as a password, so it is accepted only over TLS",
                loopback ? $"{instead}, or allow cleartext from this host in the target's policy (allowCleartextOnLoopback: true)" : instead));
        }

        var password = new ArrayBufferWriter<byte>();
        PgWire.WriteAuthenticationCleartextPassword(password);
        await _stream.WriteAsync(password.WrittenMemory, ct);
        var token = await ReadPasswordAsync(ct);

        var check = services.Authenticator.Authenticate(token);
        if (!check.IsValid)
            throw new GatewayRefusal(PgError.Fatal(SqlStates.InvalidPassword, $"agent token refused: {check.Reason}"));
        var agent = check.Agent!;
        // A person's loan of an agent is for the MCP front door it names, where the person's rights narrow the role.
        if (check.Person is not null)
            throw new GatewayRefusal(PgError.Fatal(SqlStates.InvalidPassword, "agent token refused: a token lent by a person is for the MCP front door only"));
        // The startup user names who is connecting (psql prompts with it, the server logs it, pg_stat_activity
        // shows it): it must be the agent the token proves, or a log would name someone who never connected.
        var user = startup["user"];
        if (!string.Equals(user, agent.Name, StringComparison.Ordinal))
            throw new GatewayRefusal(PgError.Fatal(SqlStates.InvalidAuthorization,
                $"user \"{Shown(user ?? "")}\" is not the token's agent \"{agent.Name}\"", $"connect with user={agent.Name}"));
        var admission = await PostgresSession.AdmitAsync(services, target, agent, decision.Settings, ct);
        _sessionLease = admission.SessionLease;
        return (agent, admission.Upstream, admission.ReadOnly);
    }

    /// <summary>An agent-chosen text as it may appear in an error or a log line: short, no control characters.</summary>
    private static string Shown(string text) =>
        string.Create(Math.Min(text.Length, 64), text, (span, t) =>
        {
            for (var i = 0; i < span.Length; i++)
                span[i] = char.IsControl(t[i]) ? '?' : t[i];
        }) + (text.Length > 64 ? "…" : "");

    private async Task<string> ReadPasswordAsync(CancellationToken ct)
    {
        var header = new byte[5];
        await _stream.ReadExactlyAsync(header, ct);
        var length = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(1));
        if (header[0] != (byte)'p')
            throw new GatewayRefusal(PgError.Fatal(SqlStates.ProtocolViolation, $"expected a password message, got '{(char)header[0]}'"));
        if (length < 5 || length > 64 * 1024)
            throw new GatewayRefusal(PgError.Fatal(SqlStates.ProtocolViolation, $"invalid password message length {length}"));
        var body = new byte[length - 4];
        await _stream.ReadExactlyAsync(body, ct);
        try
        {
            var token = new PgReader(body).ReadCString();
            return token.Trim();
        }
        catch (PgProtocolException e)
        {
            throw new GatewayRefusal(PgError.Fatal(SqlStates.ProtocolViolation, $"invalid password message: {e.Message}"));
        }
    }

    private async Task TryWriteErrorAsync(PgError error)
    {
        try
        {
            var buffer = new ArrayBufferWriter<byte>();
            PgWire.WriteError(buffer, error);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await _stream.WriteAsync(buffer.WrittenMemory, timeout.Token);
            await _stream.FlushAsync(timeout.Token);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException or NotSupportedException or InvalidOperationException)
        {
            // the client is gone
        }
    }
}

/// <summary>What every gateway connection needs from the sidecar.</summary>
internal sealed record GatewayServices(
    SnapshotStore Snapshots,
    AgentAuthenticator Authenticator,
    UpstreamConnector Connector,
    CancelKeys CancelKeys,
    SessionRecorder Recorder,
    LiveSessions LiveSessions,
    SidecarIdentity Identity,
    PostgresListeners Listeners,
    Hosting.SidecarMetrics Metrics,
    Gateway.ConnectionLimits Limits,
    ILogger Logger)
{
    /// <summary>Functions the operator vouches for (Sidecar:Postgres:SafeFunctions).</summary>
    public IReadOnlySet<string> SafeFunctions { get; init; } = new HashSet<string>();

    public required FunctionCatalog Catalog { get; init; }

    public required MaskCatalog MaskCatalog { get; init; }

    public required Approvals.ApprovalGate Approvals { get; init; }

    public required Approvals.IApprovalChannel ApprovalChannel { get; init; }

    public required Gateway.RefusalReports Refusals { get; init; }
}

/// <summary>One target's view of the <see cref="FunctionCatalog"/>, for a session's guard.</summary>
internal sealed class TargetCatalog(FunctionCatalog catalog, MaskCatalog masks, TargetPolicy target) : PostgresStatementGuard.ICatalog
{
    public bool Knows(IReadOnlyList<string> functions) => catalog.Knows(target.Name, functions);

    public Task LearnAsync(IReadOnlyList<string> functions) => catalog.LoadAsync(target, functions, CancellationToken.None);

    public void Forget()
    {
        catalog.Forget(target.Name);
        masks.Forget(target.Name);
    }
}
