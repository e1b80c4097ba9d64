namespace Airlock.ControlPlane.Policies;

/// <summary>
/// Tells every open PolicySync stream that policy may have changed, so each recompiles its
/// sidecar's snapshot. A generation counter plus a task that completes on the next change lets a
/// stream wait without missing a change that happens between two waits.
/// </summary>
/// <remarks>
/// A change made on any replica reaches the streams of every replica (<see cref="Replicas.ReplicaSignals"/>,
/// over Redis when several replicas share a store); the streams' periodic refresh bounds the delay if a
/// signal is lost.
/// </remarks>
public sealed class PolicyChangeNotifier
{
    private readonly Replicas.ReplicaSignals? _signals;

    public PolicyChangeNotifier() : this(null)
    {
    }

    public PolicyChangeNotifier(Replicas.ReplicaSignals? signals)
    {
        _signals = signals;
        signals?.On(Replicas.ReplicaChannels.Policy, _ => Fire());
    }

    private readonly Lock _gate = new();
    private TaskCompletionSource _next = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _generation;

    public long Generation
    {
        get { lock (_gate) return _generation; }
    }

    public void Publish()
    {
        if (_signals is null)
            Fire();
        else
            _signals.Publish(Replicas.ReplicaChannels.Policy);
    }

    private void Fire()
    {
        TaskCompletionSource fired;
        lock (_gate)
        {
            _generation++;
            fired = _next;
            _next = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        fired.SetResult();
    }

    /// <summary>Completes once the generation is past <paramref name="seen"/>.</summary>
    public Task WaitForChangeAfterAsync(long seen, CancellationToken ct)
    {
        lock (_gate)
        {
            if (_generation > seen)
                return Task.CompletedTask;
            return _next.Task.WaitAsync(ct);
        }
    }
}
