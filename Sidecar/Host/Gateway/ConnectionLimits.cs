using System.Collections.Concurrent;
using System.ComponentModel.DataAnnotations;
using System.Net;

namespace Airlock.Sidecar.Gateway;

/// <summary>
/// Section <c>Sidecar:Limits</c>: what one sidecar admits, for every protocol's listeners. A
/// connection that has not finished its startup (TLS, login) holds memory, a file descriptor and
/// perhaps a TLS handshake's CPU, and costs its sender nothing: those are capped globally and per
/// source address, and each gets <see cref="StartupTimeoutSeconds"/> to finish. Sessions are capped per target.
/// </summary>
public sealed class ConnectionLimitOptions
{
    /// <summary>Connections still in startup, from all addresses together.</summary>
    [Range(1, 100_000)]
    public int MaxPendingStartups { get; set; } = 256;

    /// <summary>Connections still in startup from one source address.</summary>
    [Range(1, 100_000)]
    public int MaxPendingStartupsPerAddress { get; set; } = 32;

    /// <summary>Sessions (logged in, relaying) per target.</summary>
    [Range(1, 1_000_000)]
    public int MaxSessionsPerTarget { get; set; } = 1000;

    /// <summary>How long a connection may take from accept to a served session.</summary>
    [Range(1, 600)]
    public int StartupTimeoutSeconds { get; set; } = 30;
}

/// <summary>Why a connection or session was not admitted.</summary>
public enum Admission
{
    Admitted,
    TooManyPendingStartups,
    TooManyPendingStartupsFromAddress,
    TooManySessionsOnTarget,
}

/// <summary>
/// Counts what <see cref="ConnectionLimitOptions"/> caps. Every admission returns a lease; disposing
/// it gives the slot back (once), so a connection that ends in any way frees what it held.
/// </summary>
public sealed class ConnectionLimits(ConnectionLimitOptions options)
{
    private readonly ConcurrentDictionary<IPAddress, int> _pendingByAddress = new();
    private readonly ConcurrentDictionary<string, int> _sessionsByTarget = new(StringComparer.Ordinal);
    private int _pending;
    private long _refusedPending;
    private long _refusedAddress;
    private long _refusedSessions;

    public ConnectionLimitOptions Options { get; } = options;

    public int PendingStartups => Volatile.Read(ref _pending);

    public long Refused(Admission reason) => reason switch
    {
        Admission.TooManyPendingStartups => Volatile.Read(ref _refusedPending),
        Admission.TooManyPendingStartupsFromAddress => Volatile.Read(ref _refusedAddress),
        Admission.TooManySessionsOnTarget => Volatile.Read(ref _refusedSessions),
        _ => 0,
    };

    public int Sessions(string target) => _sessionsByTarget.GetValueOrDefault(target);

    /// <summary>Admits a new connection into startup, or says why not (the caller closes it at once).</summary>
    public Admission TryStartup(IPAddress? address, out IDisposable? lease)
    {
        lease = null;
        if (Interlocked.Increment(ref _pending) > Options.MaxPendingStartups)
        {
            Interlocked.Decrement(ref _pending);
            Interlocked.Increment(ref _refusedPending);
            return Admission.TooManyPendingStartups;
        }
        var key = SourceKey(address);
        if (_pendingByAddress.AddOrUpdate(key, 1, (_, n) => n + 1) > Options.MaxPendingStartupsPerAddress)
        {
            Release(_pendingByAddress, key);
            Interlocked.Decrement(ref _pending);
            Interlocked.Increment(ref _refusedAddress);
            return Admission.TooManyPendingStartupsFromAddress;
        }
        lease = new Lease(() =>
        {
            Release(_pendingByAddress, key);
            Interlocked.Decrement(ref _pending);
        });
        return Admission.Admitted;
    }

    /// <summary>
    /// What counts as one source: an IPv4 address (also when it arrives IPv4-mapped), or an IPv6 /64 —
    /// one host usually holds a whole /64, so counting its addresses one by one would not limit it.
    /// </summary>
    public static IPAddress SourceKey(IPAddress? address)
    {
        if (address is null)
            return IPAddress.None;
        if (address.IsIPv4MappedToIPv6)
            return address.MapToIPv4();
        if (address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6)
            return address;
        var bytes = address.GetAddressBytes();
        Array.Clear(bytes, 8, 8);
        return new IPAddress(bytes);
    }

    /// <summary>Admits a session on <paramref name="target"/>, or says why not.</summary>
    public Admission TrySession(string target, out IDisposable? lease)
    {
        lease = null;
        if (_sessionsByTarget.AddOrUpdate(target, 1, (_, n) => n + 1) > Options.MaxSessionsPerTarget)
        {
            Release(_sessionsByTarget, target);
            Interlocked.Increment(ref _refusedSessions);
            return Admission.TooManySessionsOnTarget;
        }
        lease = new Lease(() => Release(_sessionsByTarget, target));
        return Admission.Admitted;
    }

    private static void Release<TKey>(ConcurrentDictionary<TKey, int> counts, TKey key) where TKey : notnull
    {
        while (counts.TryGetValue(key, out var current))
        {
            if (current <= 1)
            {
                if (counts.TryRemove(new KeyValuePair<TKey, int>(key, current)))
                    return;
            }
            else if (counts.TryUpdate(key, current - 1, current))
            {
                return;
            }
        }
    }

    private sealed class Lease(Action release) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
                release();
        }
    }
}
