namespace Airlock.ControlPlane.Policies;

// The policy-as-code document: GET /api/v1/policy exports it, PUT applies it. The same specs are
// the bodies of the per-entity REST endpoints. Properties are nullable so that a missing field is
// reported as a validation error with its path instead of a parser exception.

public sealed class PolicyDocument
{
    public List<TargetSpec>? Targets { get; set; }
    public List<RoleSpec>? Roles { get; set; }
    public List<AgentSpec>? Agents { get; set; }
}

public sealed class TargetSpec
{
    public string? Name { get; set; }
    public string? Kind { get; set; }
    public string? Sidecar { get; set; }
    public int? ListenPort { get; set; }
    public Dictionary<string, string>? Labels { get; set; }
    public UpstreamSpec? Upstream { get; set; }
}

public sealed class UpstreamSpec
{
    public string? Host { get; set; }
    public int? Port { get; set; }
    public string? Database { get; set; }
    public string? Username { get; set; }
    public string? Tls { get; set; }

    /// <summary><c>env:NAME</c>, <c>file:/path</c> (resolved only at the sidecar) or <c>stored</c>.</summary>
    public string? Credential { get; set; }

    /// <summary>Write-only: a credential to store encrypted (then <see cref="Credential"/> is <c>stored</c>). Never exported.</summary>
    public string? Password { get; set; }
}

public sealed class RoleSpec
{
    public string? Name { get; set; }
    public string? Description { get; set; }
    public List<GrantSpec>? Grants { get; set; }
    public List<RuleSpec>? Rules { get; set; }
}

public sealed class GrantSpec
{
    public string? Target { get; set; }
    public Dictionary<string, string>? Selector { get; set; }
}

public sealed class RuleSpec
{
    public string? Name { get; set; }
    public string? Action { get; set; }
    public List<string>? Targets { get; set; }
    public MatchSpec? Match { get; set; }
    public string? Message { get; set; }
    public MaskSpecDoc? Mask { get; set; }
    public ApprovalSpecDoc? Approval { get; set; }
}

public sealed class MatchSpec
{
    public List<string>? Classes { get; set; }
    public List<string>? Commands { get; set; }
    public List<string>? Tables { get; set; }
    public string? Pattern { get; set; }
}

public sealed class MaskSpecDoc
{
    public List<string>? Columns { get; set; }
    public List<string>? Detectors { get; set; }
    public string? Strategy { get; set; }
    public int? KeepLast { get; set; }
}

public sealed class ApprovalSpecDoc
{
    public string? Mode { get; set; }
    public int? Approvals { get; set; }
    public string? Group { get; set; }
    public int? TimeoutSeconds { get; set; }
}

public sealed class AgentSpec
{
    public string? Name { get; set; }
    public string? Description { get; set; }
    public string? Owner { get; set; }
    public string? Role { get; set; }
    public bool? Enabled { get; set; }
}

/// <summary>One validation problem, located by a JSON-path-like address such as <c>targets[2].upstream.port</c>.</summary>
public sealed record PolicyError(string Path, string Message);
