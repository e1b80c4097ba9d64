using System.Collections.Concurrent;
using System.Diagnostics;
using System.Reflection;

namespace Airlock.Testing;

/// <summary>
/// A real child process (the control plane or a sidecar, as <c>dotnet X.dll</c>) whose output the
/// test can wait on. Disposing kills it.
/// </summary>
public sealed class ManagedProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _lines = new();
    private readonly SemaphoreSlim _newLine = new(0);
    private readonly string _name;

    private ManagedProcess(Process process, string name)
    {
        _process = process;
        _name = name;
    }

    public string Output => string.Join('\n', _lines);
    public bool HasExited => _process.HasExited;
    public int ExitCode => _process.ExitCode;
    public int Id => _process.Id;

    /// <param name="fileDescriptorLimit">Runs the process under <c>prlimit --nofile</c> (util-linux): for tests of running out of file descriptors.</param>
    public static ManagedProcess Start(string name, string dll, IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null, int? fileDescriptorLimit = null)
    {
        var info = new ProcessStartInfo(fileDescriptorLimit is null ? "dotnet" : "prlimit")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(dll)!,
        };
        if (fileDescriptorLimit is { } limit)
        {
            info.ArgumentList.Add($"--nofile={limit}:{limit}");
            info.ArgumentList.Add("--");
            info.ArgumentList.Add("dotnet");
        }
        info.ArgumentList.Add(dll);
        foreach (var arg in args)
            info.ArgumentList.Add(arg);
        info.Environment["DOTNET_NOLOGO"] = "1";
        info.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
            info.Environment[key] = value;

        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var managed = new ManagedProcess(process, name);
        process.OutputDataReceived += (_, e) => managed.OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => managed.OnLine(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return managed;
    }

    private void OnLine(string? line)
    {
        if (line is null)
            return;
        _lines.Enqueue(line);
        _newLine.Release();
    }

    /// <summary>Waits for an output line containing <paramref name="text"/> (also one printed earlier).</summary>
    public async Task<string> WaitForOutputAsync(string text, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        while (true)
        {
            var found = _lines.FirstOrDefault(l => l.Contains(text, StringComparison.Ordinal));
            if (found is not null)
                return found;
            if (_process.HasExited && !await _newLine.WaitAsync(200))
                throw new InvalidOperationException($"{_name} exited ({_process.ExitCode}) before printing '{text}'. Output:\n{Output}");
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
                throw new TimeoutException($"{_name} did not print '{text}'. Output:\n{Output}");
            await _newLine.WaitAsync(left < TimeSpan.FromMilliseconds(500) ? left : TimeSpan.FromMilliseconds(500));
        }
    }

    public async Task<int> WaitForExitAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"{_name} did not exit. Output:\n{Output}");
        }
        return _process.ExitCode;
    }

    /// <summary>SIGKILL: no chance to clean up, like a crash.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        _process.Dispose();
        _newLine.Dispose();
    }
}

/// <summary>Where the built binaries of this checkout are.</summary>
public static class Binaries
{
    public static string RepositoryRoot { get; } = FindRoot();

    private static string Configuration =>
        typeof(Binaries).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug";

    public static string ControlPlane => Find(Path.Combine("ControlPlane", "bin", Configuration, "net10.0", "ControlPlane.dll"));
    public static string Sidecar => Find(Path.Combine("Sidecar", "Host", "bin", Configuration, "net10.0", "Sidecar.dll"));

    private static string Find(string relative)
    {
        var path = Path.Combine(RepositoryRoot, relative);
        return File.Exists(path) ? path : throw new FileNotFoundException($"{path} is not built; build ControlPlane.sln in {Configuration} first", path);
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "ControlPlane.sln")))
                return dir.FullName;
        throw new InvalidOperationException("ControlPlane.sln not found above " + AppContext.BaseDirectory);
    }
}
