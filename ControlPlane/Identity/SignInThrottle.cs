namespace Airlock.ControlPlane.Identity;

/// <summary>
/// Limits password guesses per (account, client address): at most <see cref="MaxFailures"/>
/// failed attempts, counted atomically — an attempt takes its slot before the password is checked,
/// so parallel guesses cannot exceed the limit — then that address is shut out of that account for
/// <see cref="LockoutDuration"/>. Only that address: an attacker cannot lock the administrator out
/// for good, because the administrator signs in from elsewhere. (Guesses spread over many addresses
/// are slowed down per account by <see cref="UserService"/>.) Per process; behind several replicas
/// the limit applies per replica.
/// </summary>
public sealed class SignInThrottle(TimeProvider time)
{
    public const int MaxFailures = 5;
    public static readonly TimeSpan LockoutDuration = TimeSpan.FromMinutes(15);
    private const int MaxTracked = 100_000;

    private sealed class Window
    {
        public int Failures;
        public int InFlight;
        public DateTimeOffset LockedUntil;
        public DateTimeOffset LastSeen;
    }

    private readonly Dictionary<(string User, string Address), Window> _windows = [];

    /// <summary>Takes a slot for one attempt; false when this address is shut out of this account now.</summary>
    public bool TryBegin(string user, string address)
    {
        var now = time.GetUtcNow();
        lock (_windows)
        {
            if (_windows.Count > MaxTracked)
                Prune(now);
            var key = (user.ToLowerInvariant(), address);
            if (!_windows.TryGetValue(key, out var window))
                _windows[key] = window = new Window();
            window.LastSeen = now;
            if (window.LockedUntil > now)
                return false;
            if (window.Failures + window.InFlight >= MaxFailures)
                return false;
            window.InFlight++;
            return true;
        }
    }

    /// <summary>Gives the slot back with the attempt's outcome; the last allowed failure starts the lockout.</summary>
    public void End(string user, string address, bool succeeded)
    {
        var now = time.GetUtcNow();
        lock (_windows)
        {
            if (!_windows.TryGetValue((user.ToLowerInvariant(), address), out var window))
                return;
            window.InFlight = Math.Max(0, window.InFlight - 1);
            if (succeeded)
            {
                window.Failures = 0;
                return;
            }
            if (++window.Failures >= MaxFailures)
            {
                window.LockedUntil = now + LockoutDuration;
                window.Failures = 0;
            }
        }
    }

    /// <summary>Forgets every address's failures and lockout for <paramref name="user"/> (an Admin reset the password).</summary>
    public void Forget(string user)
    {
        var name = user.ToLowerInvariant();
        lock (_windows)
            foreach (var key in _windows.Keys.Where(k => k.User == name).ToList())
                _windows.Remove(key);
    }

    private void Prune(DateTimeOffset now)
    {
        foreach (var (key, window) in _windows.Where(w => w.Value.InFlight == 0 && w.Value.LockedUntil <= now && now - w.Value.LastSeen > LockoutDuration).ToList())
            _windows.Remove(key);
    }
}
