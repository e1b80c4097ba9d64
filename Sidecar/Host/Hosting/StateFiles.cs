using System.Text.Json;

namespace Airlock.Sidecar.Hosting;

/// <summary>
/// Files in the state directory: written to a temporary file with owner-only permissions, flushed
/// to disk, then renamed over the old one — a crash leaves the old file or the new one, never half.
/// </summary>
public static class StateFiles
{
    /// <param name="durable">
    /// false skips the fsync: the rename is still atomic, but a power loss may bring back the old
    /// content — fine for files that only save work (the uploader's acknowledgement marks: losing one
    /// re-sends events the control plane ignores as duplicates).
    /// </param>
    public static async Task WriteAtomicAsync(string path, byte[] content, CancellationToken ct, bool durable = true)
    {
        var temp = path + ".tmp";
        var options = new FileStreamOptions
        {
            Mode = FileMode.Create,
            Access = FileAccess.Write,
            Share = FileShare.None,
        };
        if (!OperatingSystem.IsWindows())
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        await using (var stream = new FileStream(temp, options))
        {
            await stream.WriteAsync(content, ct);
            await stream.FlushAsync(ct);
            if (durable)
                stream.Flush(flushToDisk: true);
        }
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.Move(temp, path, overwrite: true);
    }

    public static Task WriteJsonAsync<T>(string path, T value, JsonSerializerOptions options, CancellationToken ct) =>
        WriteAtomicAsync(path, JsonSerializer.SerializeToUtf8Bytes(value, options), ct);

    public static async Task<T?> ReadJsonAsync<T>(string path, JsonSerializerOptions options, CancellationToken ct) where T : class
    {
        if (!File.Exists(path))
            return null;
        await using var stream = File.OpenRead(path);
        return await JsonSerializer.DeserializeAsync<T>(stream, options, ct);
    }

    /// <summary>Creates the directory with owner-only access.</summary>
    public static void EnsureDirectory(string path)
    {
        Directory.CreateDirectory(path);
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }
}
