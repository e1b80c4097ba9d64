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
    public sealed record Entry(TargetPolicy Target, int ProcessId, int RealSecret);

    private readonly ConcurrentDictionary<(int ProcessId, int Secret), Entry> _entries = new();

    /// <summary>Registers a session; returns the proxy secret to give the agent.</summary>
    public int Register(TargetPolicy target, int processId, int realSecret, out IDisposable registration)
    {
        while (true)
        {
            var secret = RandomNumberGenerator.GetInt32(int.MinValue, int.MaxValue);
            if (_entries.TryAdd((processId, secret), new Entry(target, processId, realSecret)))
            {
                registration = new Registration(() => _entries.TryRemove((processId, secret), out _));
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
