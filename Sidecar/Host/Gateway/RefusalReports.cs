using System.Collections.Concurrent;
using Airlock.Contracts.Hubs;

namespace Airlock.Sidecar.Gateway;

/// <summary>
/// Connections refused at startup (a bad token, no grant, the target unreachable …), kept until the
/// next heartbeat takes them to the control plane, where the console shows them: an agent that cannot
/// connect is then visible to its admins, not only in this sidecar's log. Bounded: past
/// <see cref="Capacity"/> waiting reports, new ones are only counted, and the count is reported.
/// </summary>
public sealed class RefusalReports(TimeProvider time)
{
    public const int Capacity = 500;
    public const int MaxPerHeartbeat = 100;

    private readonly ConcurrentQueue<RefusedConnectionReport> _waiting = new();
    private long _dropped;

    public void Report(string target, string? agent, string client, string sqlState, string reason)
    {
        if (_waiting.Count >= Capacity)
        {
            Interlocked.Increment(ref _dropped);
            return;
        }
        _waiting.Enqueue(new RefusedConnectionReport(time.GetUtcNow(), target, agent, client, sqlState, reason));
    }

    /// <summary>Up to <see cref="MaxPerHeartbeat"/> reports, oldest first, and how many were dropped since the last take.</summary>
    public (IReadOnlyList<RefusedConnectionReport> Reports, long Dropped) Take()
    {
        var taken = new List<RefusedConnectionReport>();
        while (taken.Count < MaxPerHeartbeat && _waiting.TryDequeue(out var report))
            taken.Add(report);
        return (taken, Interlocked.Exchange(ref _dropped, 0));
    }

    /// <summary>A heartbeat that did not arrive: its reports wait for the next (order within the queue is not kept).</summary>
    public void PutBack(IReadOnlyList<RefusedConnectionReport> reports, long dropped)
    {
        foreach (var report in reports)
        {
            if (_waiting.Count >= Capacity)
                Interlocked.Increment(ref _dropped);
            else
                _waiting.Enqueue(report);
        }
        Interlocked.Add(ref _dropped, dropped);
    }
}
