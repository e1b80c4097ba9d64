using Airlock.Contracts.Hubs;
using Airlock.Sidecar.Hosting;
using Airlock.Sidecar.Snapshots;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.Options;

namespace Airlock.Sidecar.ControlPlane;

/// <summary>
/// The SignalR connection to the control plane's SidecarHub: presence, heartbeats, recording upload,
/// approval requests and their decisions. Reconnects forever with backoff.
/// </summary>
internal sealed class HubClient(
    SidecarIdentity identity,
    SnapshotStore store,
    Identity.AgentAuthenticator authenticator,
    Recording.LiveSessions liveSessions,
    Approvals.ApprovalGate approvals,
    Gateway.RefusalReports refusals,
    Postgres.UpstreamConnector upstream,
    Recording.SessionRecorder recorder,
    IOptions<SidecarOptions> options,
    TimeProvider time,
    ILogger<HubClient> logger) : BackgroundService, Approvals.IApprovalChannel
{
    private HubConnection? _connection;

    public bool IsConnected => _connection?.State == HubConnectionState.Connected;

    /// <summary>
    /// Connects to the target as a session would (TLS as its policy says, its credential), then hangs
    /// up: the answer says how far it got, in the words an agent's refusal would use. 10 s at most.
    /// </summary>
    private async Task<TargetTestResult> TestTargetAsync(TargetTestRequest request, CancellationToken stopping)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        double Elapsed() => Math.Round(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds, 1);
        if (store.Current?.Policy.Targets.FirstOrDefault(t => t.Name == request.Target) is not { } target)
            return new TargetTestResult(request.RequestId, false, $"this sidecar does not serve target \"{request.Target}\" (its policy has not arrived yet, or the target is another sidecar's)", 0);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        timeout.CancelAfter(TimeSpan.FromSeconds(10));
        try
        {
            var session = await upstream.ConnectAsync(target, [], timeout.Token);
            await using (session.Stream)
            {
                await session.Stream.WriteAsync(Protocols.Postgres.PgWire.Terminate(), CancellationToken.None);
            }
            return new TargetTestResult(request.RequestId, true,
                $"connected to {target.Upstream.Host}:{target.Upstream.Port} and logged in as \"{target.Upstream.Username}\" to database \"{target.Upstream.Database}\" ({(session.Tls ? "TLS" : "no TLS")})", Elapsed());
        }
        catch (Postgres.GatewayRefusal refusal)
        {
            return new TargetTestResult(request.RequestId, false, refusal.Error.Message, Elapsed());
        }
        catch (OperationCanceledException) when (!stopping.IsCancellationRequested)
        {
            return new TargetTestResult(request.RequestId, false, $"no answer from {target.Upstream.Host}:{target.Upstream.Port} within 10 s", Elapsed());
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or System.Security.Authentication.AuthenticationException)
        {
            return new TargetTestResult(request.RequestId, false, $"{target.Upstream.Host}:{target.Upstream.Port}: {e.Message}", Elapsed());
        }
    }

    /// <summary>Uploads a recording batch; the acknowledgement comes after the control plane committed it.</summary>
    public Task<RecordingAck> UploadRecordingAsync(RecordingBatch batch, CancellationToken ct) =>
        _connection is { State: HubConnectionState.Connected } connection
            ? connection.InvokeAsync<RecordingAck>(nameof(ISidecarHub.UploadRecording), batch, ct)
            : throw new InvalidOperationException("not connected to the control plane");

    public Task<ApprovalTicket> RequestAsync(ApprovalRequest request, CancellationToken ct) =>
        _connection is { State: HubConnectionState.Connected } connection
            ? connection.InvokeAsync<ApprovalTicket>(nameof(ISidecarHub.RequestApproval), request, ct)
            : throw new InvalidOperationException("not connected to the control plane");

    public Task SettleAsync(ApprovalSettlement settlement, CancellationToken ct) =>
        _connection is { State: HubConnectionState.Connected } connection
            ? connection.InvokeAsync(nameof(ISidecarHub.ApprovalSettled), settlement, ct)
            : throw new InvalidOperationException("not connected to the control plane");

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await using var connection = new HubConnectionBuilder()
            .WithUrl(new Uri(new Uri(identity.ControlPlane), SidecarHubPaths.Hub), o => o.AccessTokenProvider = () => Task.FromResult<string?>(identity.Credential))
            .WithAutomaticReconnect(new ForeverRetryPolicy(TimeSpan.FromSeconds(options.Value.MaxBackoffSeconds)))
            .AddMessagePackProtocol()
            .Build();
        _connection = connection;

        connection.On<TerminateSessionCommand>(nameof(ISidecarClient.TerminateSession), async command =>
        {
            var reason = $"terminated by {command.RequestedBy}: {command.Reason}";
            if (await liveSessions.TerminateAsync(command.Session, reason))
                logger.LogWarning("Session {Session} {Reason}", command.Session, reason);
            else
                logger.LogWarning("Terminate for session {Session}: not live on this sidecar", command.Session);
        });
        connection.On<TargetTestRequest>(nameof(ISidecarClient.TestTarget), request =>
        {
            // Answered on its own: the hub's receive loop does not wait for a database to answer.
            _ = Task.Run(async () =>
            {
                var result = await TestTargetAsync(request, stoppingToken);
                logger.LogInformation("Connection test of target {Target}: {Outcome}: {Detail}", request.Target, result.Succeeded ? "succeeded" : "failed", result.Detail);
                try
                {
                    await connection.InvokeAsync(nameof(ISidecarHub.TargetTested), result, stoppingToken);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    logger.LogWarning("The result of connection test {Request} could not be sent: {Error}", request.RequestId, e.Message);
                }
            }, stoppingToken);
            return Task.CompletedTask;
        });
        connection.On<ApprovalDecision>(nameof(ISidecarClient.ApprovalDecided), decision =>
        {
            logger.LogInformation("Approval request {Request} decided: {Outcome}", decision.RequestId, decision.Outcome);
            approvals.Deliver(decision);
        });
        connection.Reconnected += _ =>
        {
            logger.LogInformation("Reconnected to the sidecar hub");
            return Task.CompletedTask;
        };

        var failures = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (connection.State == HubConnectionState.Disconnected)
                {
                    await connection.StartAsync(stoppingToken);
                    logger.LogInformation("Connected to the sidecar hub");
                    failures = 0;
                }
                if (connection.State == HubConnectionState.Connected)
                {
                    var lastUse = authenticator.DrainLastUse();
                    var (refused, notReported) = refusals.Take();
                    var statements = recorder.Statements.Take();
                    try
                    {
                        await connection.InvokeAsync(nameof(ISidecarHub.Heartbeat),
                            new SidecarHeartbeat(SoftwareVersion.Current, store.Latest?.Signed.Version ?? 0, time.GetUtcNow(), lastUse,
                                refused.Count == 0 ? null : refused, notReported, statements.IsEmpty ? null : statements), stoppingToken);
                    }
                    catch
                    {
                        // Not delivered: keep the uses, refusals and counts for the next heartbeat (best effort, newest wins).
                        foreach (var (agent, at) in lastUse)
                            authenticator.RecordUse(agent, at);
                        refusals.PutBack(refused, notReported);
                        recorder.Statements.PutBack(statements);
                        throw;
                    }
                }
                await Task.Delay(TimeSpan.FromSeconds(options.Value.HeartbeatSeconds), stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            // An invocation cancelled by the connection closing under it (the control plane aborted it, e.g.
            // on revocation) is a connection problem like the others, not a reason to stop the sidecar.
            catch (Exception e) when (e is HttpRequestException or InvalidOperationException or Microsoft.AspNetCore.SignalR.HubException
                or System.Net.WebSockets.WebSocketException or IOException or OperationCanceledException)
            {
                failures++;
                logger.LogWarning("Sidecar hub unavailable: {Error}", e.Message);
                await Task.Delay(PolicySyncClient.Backoff(failures, TimeSpan.FromSeconds(options.Value.MaxBackoffSeconds)), stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }
    }

    private sealed class ForeverRetryPolicy(TimeSpan ceiling) : IRetryPolicy
    {
        public TimeSpan? NextRetryDelay(RetryContext retryContext) => PolicySyncClient.Backoff((int)Math.Min(retryContext.PreviousRetryCount + 1, 30), ceiling);
    }
}
