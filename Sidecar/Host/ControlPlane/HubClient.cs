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
    IOptions<SidecarOptions> options,
    TimeProvider time,
    ILogger<HubClient> logger) : BackgroundService, Approvals.IApprovalChannel
{
    private HubConnection? _connection;

    public bool IsConnected => _connection?.State == HubConnectionState.Connected;

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
                    try
                    {
                        await connection.InvokeAsync(nameof(ISidecarHub.Heartbeat),
                            new SidecarHeartbeat(SoftwareVersion.Current, store.Latest?.Signed.Version ?? 0, time.GetUtcNow(), lastUse), stoppingToken);
                    }
                    catch
                    {
                        // Not delivered: keep the uses for the next heartbeat (best effort, newest wins).
                        foreach (var (agent, at) in lastUse)
                            authenticator.RecordUse(agent, at);
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
