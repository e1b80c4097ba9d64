using System.Globalization;

namespace Airlock.Benchmarks;

/// <summary>CPU time of a process (user + system) from /proc, for CPU-per-unit figures.</summary>
internal static class ProcessCpu
{
    private const double MicrosecondsPerTick = 1_000_000.0 / 100; // USER_HZ on Linux

    /// <summary>CPU time used by <paramref name="pid"/> since it started, in µs.</summary>
    public static double Microseconds(int pid) => FromStat(File.ReadAllText($"/proc/{pid}/stat"));

    /// <summary>
    /// CPU time used by the live threads of <paramref name="pid"/>, in µs, summed per group
    /// (<paramref name="group"/> maps a thread's name to its group). A thread that ended between two
    /// readings takes its time with it, so short-lived threads' groups can read low.
    /// </summary>
    public static Dictionary<string, double> MicrosecondsByThread(int pid, Func<string, string> group)
    {
        var result = new Dictionary<string, double>();
        foreach (var task in Directory.EnumerateDirectories($"/proc/{pid}/task"))
        {
            string stat, name;
            try
            {
                stat = File.ReadAllText(Path.Combine(task, "stat"));
                name = File.ReadAllText(Path.Combine(task, "comm")).TrimEnd('\n');
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue; // the thread ended meanwhile
            }
            var key = group(name);
            result[key] = result.GetValueOrDefault(key) + FromStat(stat);
        }
        return result;
    }

    private static double FromStat(string stat)
    {
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) * MicrosecondsPerTick; // utime + stime
    }
}
