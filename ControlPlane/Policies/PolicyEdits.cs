using System.Text.RegularExpressions;

namespace Airlock.ControlPlane.Policies;

/// <summary>The kinds of object a policy document holds; each is edited, versioned and audited by name.</summary>
public enum PolicyObjectKind { Target, Role, Agent, TrustedIssuer }

public static class PolicyObjectKinds
{
    /// <summary>The entity type written to the audit log (and so the key of an object's version).</summary>
    public static string AuditType(this PolicyObjectKind kind) => kind switch
    {
        PolicyObjectKind.Target => "target",
        PolicyObjectKind.Role => "role",
        PolicyObjectKind.Agent => "agent",
        PolicyObjectKind.TrustedIssuer => "trusted-issuer",
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    /// <summary>The list's name in a document and in validation paths (<c>targets[2].upstream</c>).</summary>
    public static string Collection(this PolicyObjectKind kind) => kind switch
    {
        PolicyObjectKind.Target => "targets",
        PolicyObjectKind.Role => "roles",
        PolicyObjectKind.Agent => "agents",
        PolicyObjectKind.TrustedIssuer => "trustedIssuers",
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    /// <summary>The REST collection: <c>/api/v1/{route}</c>.</summary>
    public static string RoutePath(this PolicyObjectKind kind) => kind == PolicyObjectKind.TrustedIssuer ? "trusted-issuers" : kind.Collection();

    public static string Noun(this PolicyObjectKind kind) => kind switch
    {
        PolicyObjectKind.TrustedIssuer => "trusted issuer",
        _ => kind.AuditType(),
    };

    /// <summary>The names of the objects of <paramref name="kind"/> in <paramref name="doc"/>, in document order.</summary>
    public static IReadOnlyList<string?> NamesIn(this PolicyObjectKind kind, PolicyDocument doc) => kind switch
    {
        PolicyObjectKind.Target => (doc.Targets ?? []).Select(t => t?.Name).ToList(),
        PolicyObjectKind.Role => (doc.Roles ?? []).Select(t => t?.Name).ToList(),
        PolicyObjectKind.Agent => (doc.Agents ?? []).Select(t => t?.Name).ToList(),
        PolicyObjectKind.TrustedIssuer => (doc.TrustedIssuers ?? []).Select(t => t?.Name).ToList(),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };
}

/// <summary>
/// The version of one policy object: the id of the latest audit entry that changed it, so a version
/// also says who changed it, how and when. An object nothing has ever changed has version 0.
/// </summary>
public sealed record PolicyObjectVersion(long Version, string? Actor, DateTimeOffset? At, string? Action)
{
    public static readonly PolicyObjectVersion None = new(0, null, null, null);

    public string Describe() => Actor is null
        ? "it has changed"
        : $"{Actor} {(Action switch { "create" => "created", "delete" => "deleted", _ => "changed" })} it at {At:yyyy-MM-dd HH:mm:ss} UTC (version {Version})";
}

/// <summary>Why an edit was refused before anything was validated.</summary>
public enum EditRefusalKind { NotFound, AlreadyExists, Malformed }

public sealed record EditRefusal(EditRefusalKind Kind, string Detail);

/// <summary>
/// One change to one object: <see cref="Change"/> edits the document (or refuses), and when
/// <see cref="BasedOn"/> is given the edit applies only if the object is still at that version.
/// </summary>
public sealed record PolicyEdit(PolicyObjectKind Kind, string Name, long? BasedOn, Func<PolicyDocument, EditRefusal?> Change);

public enum EditStatus { Applied, Refused, Conflict, Invalid }

public sealed record EditResult(
    EditStatus Status,
    IReadOnlyList<PolicyChange> Changes,
    IReadOnlyList<PolicyError> Errors,
    EditRefusal? Refusal,
    PolicyObjectVersion Version)
{
    public static EditResult Applied(IReadOnlyList<PolicyChange> changes, PolicyObjectVersion version) => new(EditStatus.Applied, changes, [], null, version);
    public static EditResult Refused(EditRefusal refusal) => new(EditStatus.Refused, [], [], refusal, PolicyObjectVersion.None);
    /// <summary>The object changed since the version the edit was based on; <see cref="Version"/> says who changed it.</summary>
    public static EditResult Conflict(PolicyObjectVersion current) => new(EditStatus.Conflict, [], [], null, current);
    public static EditResult Invalid(IReadOnlyList<PolicyError> errors) => new(EditStatus.Invalid, [], errors, null, PolicyObjectVersion.None);
}

/// <summary>
/// Re-addresses a whole-document validation error for someone who edited one object: paths inside
/// that object lose the document prefix (<c>targets[3].upstream.host</c> → <c>upstream.host</c>),
/// paths in other objects name them (<c>agents[1].role</c> → <c>agent 'ci'.role</c>).
/// </summary>
public static partial class PolicyErrorPaths
{
    [GeneratedRegex(@"^(targets|roles|agents|trustedIssuers)\[(\d+)\](.*)$")]
    private static partial Regex IndexedPath();

    public static IReadOnlyList<PolicyError> ForObject(IReadOnlyList<PolicyError> errors, PolicyDocument doc, PolicyObjectKind kind, string name) =>
        errors.Select(e => new PolicyError(Localize(e.Path, doc, kind, name), e.Message)).ToList();

    private static string Localize(string path, PolicyDocument doc, PolicyObjectKind kind, string name)
    {
        var match = IndexedPath().Match(path);
        if (!match.Success)
            return path;
        var listKind = Enum.GetValues<PolicyObjectKind>().First(k => k.Collection() == match.Groups[1].Value);
        var names = listKind.NamesIn(doc);
        var index = int.Parse(match.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture);
        if (index >= names.Count || names[index] is not { } itemName)
            return path;
        var rest = match.Groups[3].Value;
        if (listKind == kind && itemName == name)
            return rest.Length == 0 ? "$" : rest.TrimStart('.');
        return $"{listKind.Noun()} '{itemName}'{rest}";
    }
}
