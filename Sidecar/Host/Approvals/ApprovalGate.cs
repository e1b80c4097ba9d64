using System.Collections.Concurrent;
using Airlock.Contracts.Hubs;

namespace Airlock.Sidecar.Approvals;

/// <summary>The control plane's side of approvals, as the sidecar's hub connection offers it.</summary>
internal interface IApprovalChannel
{
    /// <summary>Raises a request (or finds the one it repeats); throws when the control plane cannot be reached or refuses it.</summary>
    Task<ApprovalTicket> RequestAsync(ApprovalRequest request, CancellationToken ct);

    /// <summary>Reports what became of a request; best effort (the control plane sends an unsettled decision again at reconnect).</summary>
    Task SettleAsync(ApprovalSettlement settlement, CancellationToken ct);
}

/// <summary>
/// Where held statements wait for their decisions. A decision completes the one wait registered for
/// its request and is then forgotten, so a decision sent again (after a reconnect) is never applied
/// twice; a decision that arrives before its wait is registered (an approver faster than the
/// sidecar's bookkeeping) is kept briefly for it.
/// </summary>
internal sealed class ApprovalGate(TimeProvider time)
{
    private const int MaxEarly = 1000;
    private static readonly TimeSpan EarlyKept = TimeSpan.FromMinutes(5);

    private readonly ConcurrentDictionary<long, TaskCompletionSource<ApprovalDecision>> _waits = new();
    private readonly ConcurrentDictionary<long, (ApprovalDecision Decision, DateTimeOffset At)> _early = new();

    /// <summary>Waits held now (for metrics and tests).</summary>
    public int Waiting => _waits.Count;

    /// <summary>The decision on <paramref name="requestId"/>, when it comes; dispose the registration when the wait ends either way.</summary>
    public Task<ApprovalDecision> Wait(long requestId, out IDisposable registration)
    {
        var wait = new TaskCompletionSource<ApprovalDecision>(TaskCreationOptions.RunContinuationsAsynchronously);
        _waits[requestId] = wait;
        registration = new Unregister(() => _waits.TryRemove(new KeyValuePair<long, TaskCompletionSource<ApprovalDecision>>(requestId, wait)));
        if (_early.TryRemove(requestId, out var early))
            Deliver(early.Decision);
        return wait.Task;
    }

    /// <summary>A decision from the control plane.</summary>
    public void Deliver(ApprovalDecision decision)
    {
        if (_waits.TryRemove(decision.RequestId, out var wait))
        {
            wait.TrySetResult(decision);
            return;
        }
        var now = time.GetUtcNow();
        if (_early.Count >= MaxEarly)
            foreach (var (id, entry) in _early)
                if (now - entry.At > EarlyKept || _early.Count >= MaxEarly)
                    _early.TryRemove(id, out _);
        _early[decision.RequestId] = (decision, now);
    }

    private sealed class Unregister(Action action) : IDisposable
    {
        public void Dispose() => action();
    }
}
