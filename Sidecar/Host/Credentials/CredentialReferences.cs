using System.ComponentModel.DataAnnotations;
using System.Runtime.InteropServices;

namespace Airlock.Sidecar.Credentials;

/// <summary>
/// Section <c>Sidecar:CredentialReferences</c>: which <c>env:NAME</c> and <c>file:/path</c>
/// credential references this sidecar resolves. Policy comes from the control plane, so without
/// this list whoever can write policy could name the sidecar's own identity file or any variable of
/// its environment as a target "password" and have it sent to a host of their choosing. Empty by
/// default: no reference is resolved until the operator of this sidecar allows it here.
/// </summary>
public sealed class CredentialReferenceOptions : IValidatableObject
{
    /// <summary>Directories whose files may be read as credentials (absolute; symbolic links are resolved before the check).</summary>
    public List<string> Directories { get; set; } = [];

    /// <summary>Prefixes of environment variable names that may be read as credentials (e.g. <c>AIRLOCK_PG_</c>).</summary>
    public List<string> EnvironmentPrefixes { get; set; } = [];

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        foreach (var directory in Directories)
            if (!Path.IsPathFullyQualified(directory))
                yield return new ValidationResult($"CredentialReferences:Directories: '{directory}' is not an absolute path", [nameof(Directories)]);
        foreach (var prefix in EnvironmentPrefixes)
            if (string.IsNullOrWhiteSpace(prefix))
                yield return new ValidationResult("CredentialReferences:EnvironmentPrefixes: an empty prefix would allow every variable; list the prefixes", [nameof(EnvironmentPrefixes)]);
    }
}

/// <summary>Resolves a target's credential reference on this sidecar, within <see cref="CredentialReferenceOptions"/>.</summary>
public static partial class CredentialReferences
{
    public const string OptionsPrefix = "Sidecar:CredentialReferences";

    private const int MaxCredentialFileBytes = 64 * 1024;

    /// <summary>The credential, or the reason it is not resolved (never the value, never a secret).</summary>
    public static (string? Value, string? Problem) Resolve(string reference, string target, CredentialReferenceOptions allowed)
    {
        if (reference.StartsWith("env:", StringComparison.Ordinal))
        {
            var name = reference[4..];
            if (!allowed.EnvironmentPrefixes.Any(p => name.StartsWith(p, StringComparison.Ordinal)))
                return (null, $"the credential of target \"{target}\" is {reference}, and this sidecar does not resolve that variable: " +
                    $"its name starts with none of {OptionsPrefix}:EnvironmentPrefixes ({Describe(allowed.EnvironmentPrefixes)})");
            return Environment.GetEnvironmentVariable(name) is { } value
                ? (value, null)
                : (null, $"the credential of target \"{target}\" is {reference}, and that variable is not set on this sidecar");
        }
        if (reference.StartsWith("file:", StringComparison.Ordinal))
        {
            var path = reference[5..];
            var real = RealPath(path);
            // One answer whether the path does not exist or is not allowed: policy cannot probe the host's files.
            if (real is null || !allowed.Directories.Any(d => IsWithin(real, d)))
                return (null, $"the credential of target \"{target}\" is {reference}, and this sidecar does not read credentials from there: " +
                    $"it is not a file in any of {OptionsPrefix}:Directories ({Describe(allowed.Directories)})");
            try
            {
                // A credential's size at most: a device that never ends (/dev/zero) is not read forever.
                using var file = new FileStream(real, FileMode.Open, FileAccess.Read, FileShare.Read);
                var buffer = new byte[MaxCredentialFileBytes + 1];
                var read = 0;
                for (int n; read < buffer.Length && (n = file.Read(buffer, read, buffer.Length - read)) > 0;)
                    read += n;
                if (read > MaxCredentialFileBytes)
                    return (null, $"the credential of target \"{target}\" is {reference}, which is longer than {MaxCredentialFileBytes} bytes");
                return (System.Text.Encoding.UTF8.GetString(buffer, 0, read).TrimEnd('\r', '\n'), null);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return (null, $"the credential of target \"{target}\" is {reference}, which this sidecar cannot read: {e.GetType().Name}");
            }
        }
        return (null, $"the credential reference of target \"{target}\" is neither env:NAME nor file:/path");
    }

    /// <summary>True when <paramref name="realPath"/> is inside <paramref name="directory"/> (whose own links are resolved too).</summary>
    private static bool IsWithin(string realPath, string directory)
    {
        var root = RealPath(directory) ?? Path.GetFullPath(directory);
        root = root.EndsWith('/') ? root : root + "/";
        return realPath.StartsWith(root, StringComparison.Ordinal);
    }

    private static string Describe(List<string> values) => values.Count == 0 ? "none allowed: empty" : string.Join(", ", values);

    /// <summary>The canonical path (every symbolic link and <c>..</c> resolved), as the kernel will open it; null when it does not exist.</summary>
    private static string? RealPath(string path)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
            return File.Exists(path) || Directory.Exists(path) ? Path.GetFullPath(path) : null;
        var resolved = realpath(path, 0);
        if (resolved == 0)
            return null;
        try
        {
            return Marshal.PtrToStringUTF8(resolved);
        }
        finally
        {
            free(resolved);
        }
    }

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint realpath(string path, nint resolved);

    [LibraryImport("libc")]
    private static partial void free(nint pointer);
}
