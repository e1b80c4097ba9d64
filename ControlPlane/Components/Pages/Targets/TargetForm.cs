using Airlock.ControlPlane.Policies;

namespace Airlock.ControlPlane.Components.Pages.Targets;

/// <summary>How a target's upstream credential is given in the form.</summary>
public enum CredentialSource { None, Stored, Reference }

/// <summary>
/// The target form's fields, to and from a <see cref="TargetSpec"/>. Pure: the page binds to it,
/// the validator judges what <see cref="ToSpec"/> makes. A stored password is never read back:
/// the field starts empty, and empty keeps the stored one.
/// </summary>
public sealed class TargetForm
{
    public string? Name { get; set; }
    public string? Sidecar { get; set; }
    public int? ListenPort { get; set; }
    public string Labels { get; set; } = "";
    public bool AllowCleartextOnLoopback { get; set; }
    public string? Host { get; set; }
    public int? Port { get; set; }
    public string? Database { get; set; }
    public string? Username { get; set; }
    public string Tls { get; set; } = "prefer";
    public CredentialSource Source { get; set; } = CredentialSource.Stored;
    public string? Password { get; set; }
    public string? Reference { get; set; }
    public bool HasStoredCredential { get; private set; }

    /// <summary>True when editing an existing target (the name is fixed).</summary>
    public bool Existing { get; private set; }

    public static TargetForm New(string? sidecar) => new() { Sidecar = sidecar, Port = 5432, Tls = "prefer" };

    public static TargetForm From(TargetSpec spec) => new()
    {
        Existing = true,
        Name = spec.Name,
        Sidecar = spec.Sidecar,
        ListenPort = spec.ListenPort,
        Labels = string.Join(", ", (spec.Labels ?? []).Select(l => $"{l.Key}={l.Value}")),
        AllowCleartextOnLoopback = spec.AllowCleartextOnLoopback ?? false,
        Host = spec.Upstream?.Host,
        Port = spec.Upstream?.Port,
        Database = spec.Upstream?.Database,
        Username = spec.Upstream?.Username,
        Tls = spec.Upstream?.Tls ?? "prefer",
        Source = spec.Upstream?.Credential switch
        {
            null => CredentialSource.None,
            PolicyValidator.StoredCredential => CredentialSource.Stored,
            _ => CredentialSource.Reference,
        },
        Reference = spec.Upstream?.Credential is { } c && c != PolicyValidator.StoredCredential ? c : null,
        HasStoredCredential = spec.Upstream?.Credential == PolicyValidator.StoredCredential,
        _auth = spec.Upstream?.Auth,
        _kind = spec.Kind,
    };

    // Kept as they were: the form does not edit them (the API and the document do).
    private List<string>? _auth;
    private string? _kind;

    /// <summary>The spec, or the form's own errors (a label that is not <c>key=value</c>).</summary>
    public (TargetSpec? Spec, IReadOnlyList<PolicyError> Errors) ToSpec()
    {
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in Labels.Split([',', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
                return (null, [new PolicyError("labels", $"'{pair}' is not key=value")]);
            labels[pair[..eq].Trim()] = pair[(eq + 1)..].Trim();
        }
        var upstream = new UpstreamSpec
        {
            Host = Blank(Host),
            Port = Port,
            Database = Blank(Database),
            Username = Blank(Username),
            Tls = Tls,
            Auth = _auth,
        };
        switch (Source)
        {
            case CredentialSource.Stored when Blank(Password) is { } password:
                upstream.Password = password;
                break;
            case CredentialSource.Stored:
                // Empty keeps what is stored; with nothing stored the validator asks for a password.
                upstream.Credential = PolicyValidator.StoredCredential;
                break;
            case CredentialSource.Reference:
                upstream.Credential = Blank(Reference) ?? "";
                break;
        }
        return (new TargetSpec
        {
            Name = Blank(Name),
            Kind = _kind,
            Sidecar = Blank(Sidecar),
            ListenPort = ListenPort,
            Labels = labels,
            AllowCleartextOnLoopback = AllowCleartextOnLoopback,
            Upstream = upstream,
        }, []);
    }

    private static string? Blank(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();
}
