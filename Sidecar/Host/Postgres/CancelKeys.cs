using System.Collections.Concurrent;
using System.Security.Cryptography;
using Airlock.Sidecar.Policy;

namespace Airlock.Sidecar.Postgres;

/// <summary>
/// Cancel keys of live sessions. The agent sees the real backend process id (clients compare it with
/// <c>pg_backend_pid()</c> and pass it to <c>pg_terminate_backend</c>) and a secret issued here; a
/// CancelRequest arriving on a new connection is matched on both and forwarded with the real secret,
/// so the target's secret never leaves the sidecar.
/// </summary>
public sealed class CancelKeys
{
    public sealed record Entry(TargetPolicy Target, int ProcessId, int RealSecret)
    {
        /// <summary>A statement the session holds for approval: a CancelRequest ends that wait (57014) instead of going upstream.</summary>
        public HoldCancellation Hold { get; } = new();
    }

    private readonly ConcurrentDictionary<(int ProcessId, int Secret), Entry> _entries = new();

    /// <summary>Registers a session; returns the proxy secret to give the agent.</summary>
    public int Register(TargetPolicy target, int processId, int realSecret, out IDisposable registration, out HoldCancellation hold)
    {
        while (true)
        {
            var secret = RandomNumberGenerator.GetInt32(int.MinValue, int.MaxValue);
            var entry = new Entry(target, processId, realSecret);
            if (_entries.TryAdd((processId, secret), entry))
            {
                registration = new Registration(() => _entries.TryRemove((processId, secret), out _));
                hold = entry.Hold;
                return secret;
            }
        }
    }

    public Entry? Find(int processId, int secret) => _entries.GetValueOrDefault((processId, secret));

    private sealed class Registration(Action remove) : IDisposable
    {
        public void Dispose() => remove();
    }
}

/// <summary>The cancel switch of a session's held statement: armed while it waits, pulled by a matching CancelRequest.</summary>
public sealed class HoldCancellation
{
    private readonly Lock _lock = new();
    private CancellationTokenSource? _armed;

    /// <summary>Arms the switch for one wait; disposing the result disarms it.</summary>
    public IDisposable Arm(CancellationTokenSource cancel)
    {
        lock (_lock)
            _armed = cancel;
        return new Disarm(this, cancel);
    }

    /// <summary>True when a wait was armed and is now cancelled.</summary>
    public bool TryCancel()
    {
        CancellationTokenSource? armed;
        lock (_lock)
        {
            armed = _armed;
            _armed = null;
        }
        if (armed is null)
            return false;
        try
        {
            armed.Cancel();
            return true;
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
    }

    private sealed class Disarm(HoldCancellation owner, CancellationTokenSource cancel) : IDisposable
    {
        public void Dispose()
        {
            lock (owner._lock)
                if (ReferenceEquals(owner._armed, cancel))
                    owner._armed = null;
        }
    }
}
