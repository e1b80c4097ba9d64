using System.Collections.Concurrent;
using Microsoft.AspNetCore.SignalR;

namespace Airlock.ControlPlane.Sidecars;

/// <summary>
/// Who is connected right now: SignalR hub connections and PolicySync streams per sidecar. Live
/// console pages subscribe to <see cref="Changed"/>; revocation uses it to cut a sidecar off.
/// </summary>
public sealed class SidecarPresence
{
    private readonly ConcurrentDictionary<Guid, ConcurrentDictionary<string, HubCallerContext>> _hubConnections = new();
    private readonly ConcurrentDictionary<Guid, ConcurrentDictionary<Guid, CancellationTokenSource>> _streams = new();

    /// <summary>Raised on connect, disconnect, heartbeat and acknowledgement; handlers must be quick.</summary>
    public event Action? Changed;

    public bool IsOnline(Guid sidecarId) =>
        _hubConnections.TryGetValue(sidecarId, out var c) && !c.IsEmpty
        || _streams.TryGetValue(sidecarId, out var s) && !s.IsEmpty;

    public void HubConnected(Guid sidecarId, HubCallerContext context)
    {
        _hubConnections.GetOrAdd(sidecarId, _ => new()).TryAdd(context.ConnectionId, context);
        Notify();
    }

    public void HubDisconnected(Guid sidecarId, string connectionId)
    {
        if (_hubConnections.TryGetValue(sidecarId, out var c))
            c.TryRemove(connectionId, out _);
        Notify();
    }

    /// <summary>Registers an open snapshot stream; disposing the result unregisters it.</summary>
    public IDisposable StreamOpened(Guid sidecarId, CancellationTokenSource cancel)
    {
        var id = Guid.NewGuid();
        _streams.GetOrAdd(sidecarId, _ => new()).TryAdd(id, cancel);
        Notify();
        return new Unregister(() =>
        {
            if (_streams.TryGetValue(sidecarId, out var s))
                s.TryRemove(id, out _);
            Notify();
        });
    }

    /// <summary>Closes every connection of a revoked sidecar.</summary>
    public void Disconnect(Guid sidecarId)
    {
        if (_hubConnections.TryGetValue(sidecarId, out var hubs))
            foreach (var context in hubs.Values)
                context.Abort();
        if (_streams.TryGetValue(sidecarId, out var streams))
            foreach (var cancel in streams.Values)
                cancel.Cancel();
        Notify();
    }

    public void Notify() => Changed?.Invoke();

    private sealed class Unregister(Action action) : IDisposable
    {
        public void Dispose() => action();
    }
}
