using Airlock.Contracts.Hubs;
using Airlock.Sidecar.Protocols.Postgres;

namespace Airlock.Sidecar.Recording;

/// <summary>
/// What recorded statements came to, counted as they are recorded and taken by each heartbeat to
/// the control plane's hourly tally (the dashboard's chart). Four interlocked counters: nothing on
/// the data path waits for it, and the control plane reads no recording to count.
/// </summary>
public sealed class StatementCounter
{
    private long _allowed, _masked, _blocked, _held;

    /// <summary>A completed statement: allowed (masked or not) or blocked; one waiting for approval counts when its request is raised.</summary>
    public void Add(CompletedStatement statement)
    {
        switch (statement.Verdict?.Decision)
        {
            case null or "allow" when statement.Masked is { Count: > 0 }:
                Interlocked.Increment(ref _masked);
                break;
            case null or "allow":
                Interlocked.Increment(ref _allowed);
                break;
            case "block":
                Interlocked.Increment(ref _blocked);
                break;
        }
    }

    public void AddHeld() => Interlocked.Increment(ref _held);

    /// <summary>The counts since the last take (zeroed).</summary>
    public StatementCounts Take() => new(
        Interlocked.Exchange(ref _allowed, 0), Interlocked.Exchange(ref _masked, 0), Interlocked.Exchange(ref _blocked, 0), Interlocked.Exchange(ref _held, 0));

    /// <summary>A heartbeat that did not arrive: its counts go with the next.</summary>
    public void PutBack(StatementCounts counts)
    {
        Interlocked.Add(ref _allowed, counts.Allowed);
        Interlocked.Add(ref _masked, counts.Masked);
        Interlocked.Add(ref _blocked, counts.Blocked);
        Interlocked.Add(ref _held, counts.Held);
    }
}
