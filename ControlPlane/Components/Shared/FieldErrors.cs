using Airlock.ControlPlane.Policies;

namespace Airlock.ControlPlane.Components.Shared;

/// <summary>
/// The validator's messages placed at the form fields they concern. A field asks by its path
/// (<c>upstream.host</c>); a group of fields by a prefix (<c>rules[2]</c>). Messages no field of the
/// form claims are <see cref="Unplaced"/> and shown above the buttons, so none is ever lost.
/// </summary>
public sealed class FieldErrors(IReadOnlyList<PolicyError> errors, IReadOnlyCollection<string> fieldPaths)
{
    public static readonly FieldErrors None = new([], []);

    public IReadOnlyList<PolicyError> All { get; } = errors;

    public bool Any => All.Count > 0;

    /// <summary>The messages for exactly this path, joined; null when there are none.</summary>
    public string? this[string path] => Join(All.Where(e => e.Path == path));

    public bool Has(string path) => this[path] is not null;

    /// <summary>The messages at or under a path (<c>rules[2]</c> covers <c>rules[2].match.pattern</c>), each with the rest of its path.</summary>
    public IReadOnlyList<PolicyError> Under(string prefix) => All.Where(e => IsUnder(e.Path, prefix)).ToList();

    public IReadOnlyList<PolicyError> Unplaced => All.Where(e => !fieldPaths.Any(p => IsUnder(e.Path, p))).ToList();

    private static bool IsUnder(string path, string prefix) =>
        path == prefix
        || (path.Length > prefix.Length && path.StartsWith(prefix, StringComparison.Ordinal) && path[prefix.Length] is '.' or '[');

    private static string? Join(IEnumerable<PolicyError> errors)
    {
        var messages = errors.Select(e => e.Message).ToList();
        return messages.Count == 0 ? null : string.Join("; ", messages);
    }
}
