using Airlock.ControlPlane.Data;
using Airlock.ControlPlane.Sidecars;
using Airlock.Contracts.Hubs;
using Airlock.Sidecar.Policy;
using Microsoft.AspNetCore.SignalR;

namespace Airlock.ControlPlane.Approvals;

/// <summary>
/// Tells everyone who waits on approvals: console circuits (<see cref="ApprovalChanged"/>: the board,
/// the app bar's count, toasts) and the sidecar that holds a decided statement (through the sidecar
/// hub's group, which the SignalR backplane carries to whichever replica the sidecar is connected to).
/// </summary>
public sealed class ApprovalBroadcaster
{
    private readonly IHubContext<SidecarHub, ISidecarClient> _hub;
    private readonly WebhookDispatcher _webhooks;
    private readonly Replicas.ReplicaSignals _signals;
    private readonly ILogger<ApprovalBroadcaster> _logger;

    public ApprovalBroadcaster(IHubContext<SidecarHub, ISidecarClient> hub, WebhookDispatcher webhooks, Replicas.ReplicaSignals signals, ILogger<ApprovalBroadcaster> logger)
    {
        (_hub, _webhooks, _signals, _logger) = (hub, webhooks, signals, logger);
        // Every replica's console hears of every request, whichever replica stored the change.
        signals.On(Replicas.ReplicaChannels.Approvals, payload =>
        {
            if (long.TryParse(payload, out var id))
                Raise(id);
        });
    }

    /// <summary>A request was raised, voted on, decided, expired or settled (its id). Handlers must be quick.</summary>
    public event Action<long>? ApprovalChanged;

    /// <param name="webhooksDue">Webhook deliveries were enqueued with the change: send them now.</param>
    public void Changed(long id, bool webhooksDue = false)
    {
        if (webhooksDue)
            _webhooks.Wake();
        _signals.Publish(Replicas.ReplicaChannels.Approvals, id.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    private void Raise(long id)
    {
        try
        {
            ApprovalChanged?.Invoke(id);
        }
        catch (Exception e)
        {
            _logger.LogWarning(e, "An approval listener failed");
        }
    }

    /// <summary>Sends a decision on a held statement to the sidecar that holds it (best effort: it is sent again when the sidecar reconnects, until settled).</summary>
    public async Task DecidedAsync(Approval approval, ApprovalDecision decision)
    {
        if (approval.SidecarId is not { } sidecar || approval.Mode != ApprovalModes.Hold)
            return;
        try
        {
            await _hub.Clients.Group(SidecarHub.GroupFor(sidecar)).ApprovalDecided(decision);
        }
        catch (Exception e)
        {
            _logger.LogWarning("Approval request {Request}: the decision could not be sent to its sidecar now ({Error}); it is sent again when the sidecar reconnects", approval.Id, e.Message);
        }
    }
}

/// <summary>Expires pending requests every second (the sidecar also ends a held wait at the expiry on its own).</summary>
public sealed class ApprovalExpiry(IServiceScopeFactory scopes, ILogger<ApprovalExpiry> logger) : BackgroundService
{
    /// <summary>The pollers keep out of the store while the control plane starts (its first requests come then).</summary>
    public static readonly TimeSpan StartupQuiet = TimeSpan.FromSeconds(5);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Delay(StartupQuiet, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                await using var scope = scopes.CreateAsyncScope();
                await scope.ServiceProvider.GetRequiredService<ApprovalService>().ExpireDueAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                logger.LogWarning("Expiring approval requests failed: {Error}", e.Message);
            }
        }
    }
}
