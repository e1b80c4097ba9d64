using System.Globalization;

namespace Airlock.Benchmarks;

/// <summary>CPU time of a process (user + system) from /proc, for CPU-per-unit figures.</summary>
internal static class ProcessCpu
{
    private const double MicrosecondsPerTick = 1_000_000.0 / 100; // USER_HZ on Linux

    /// <summary>CPU time used by <paramref name="pid"/> since it started, in µs.</summary>
    public static double Microseconds(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) * MicrosecondsPerTick; // utime + stime
    }
}
