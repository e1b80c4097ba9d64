using System.Collections.Concurrent;

namespace Airlock.Sidecar.Recording;

/// <summary>
/// The sessions this sidecar serves right now, each with the way to end it. The control plane's
/// terminate command goes through here; protocol gateways register their connections.
/// </summary>
public sealed class LiveSessions
{
    private readonly ConcurrentDictionary<Guid, Func<string, Task>> _sessions = new();

    public IDisposable Register(Guid session, Func<string, Task> terminate)
    {
        _sessions[session] = terminate;
        return new Registration(() => _sessions.TryRemove(session, out _));
    }

    public int Count => _sessions.Count;

    /// <summary>Ends a live session with the reason; false when it is not (or no longer) served here.</summary>
    public async Task<bool> TerminateAsync(Guid session, string reason)
    {
        if (!_sessions.TryRemove(session, out var terminate))
            return false;
        await terminate(reason);
        return true;
    }

    private sealed class Registration(Action dispose) : IDisposable
    {
        public void Dispose() => dispose();
    }
}
