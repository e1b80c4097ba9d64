namespace Airlock.ControlPlane.Policies;

// The policy-as-code document: GET /api/v1/policy exports it, PUT applies it. The same specs are
// the bodies of the per-entity REST endpoints. Properties are nullable so that a missing field is
// reported as a validation error with its path instead of a parser exception.

public sealed class PolicyDocument
{
    public List<TargetSpec>? Targets { get; set; }
    public List<RoleSpec>? Roles { get; set; }
    public List<AgentSpec>? Agents { get; set; }
    public List<TrustedIssuerSpec>? TrustedIssuers { get; set; }
}

/// <summary>An external OIDC issuer and the bindings that map its tokens to agents.</summary>
public sealed class TrustedIssuerSpec
{
    public string? Name { get; set; }

    /// <summary>The <c>iss</c> its tokens carry, e.g. <c>https://token.actions.githubusercontent.com</c>; discovery is fetched from it unless <see cref="Jwks"/> is given.</summary>
    public string? Issuer { get; set; }

    /// <summary><c>oidc</c> (default): JWTs validated by sidecars. <c>saml</c>: SAML 2.0 assertions exchanged at <c>/connect/token</c> (RFC 7522).</summary>
    public string? Kind { get; set; }

    /// <summary>SAML only: the identity provider's signing certificate, PEM.</summary>
    public string? Certificate { get; set; }

    public List<string>? Audiences { get; set; }

    /// <summary>A static JWKS (<c>{"keys": [...]}</c>) for air-gapped setups; nothing is fetched then.</summary>
    public JwksSpec? Jwks { get; set; }

    public List<BindingSpec>? Bindings { get; set; }
}

public sealed class JwksSpec
{
    public List<JwkSpec>? Keys { get; set; }
}

/// <summary>A public JWK as issuers publish it; unknown members are ignored by design (x5c, x5t …).</summary>
public sealed class JwkSpec
{
    public string? Kid { get; set; }
    public string? Kty { get; set; }
    public string? Alg { get; set; }
    public string? Use { get; set; }
    public string? N { get; set; }
    public string? E { get; set; }
    public string? Crv { get; set; }
    public string? X { get; set; }
    public string? Y { get; set; }
}

public sealed class BindingSpec
{
    public string? Name { get; set; }
    public string? Agent { get; set; }
    public List<ConditionSpec>? Claims { get; set; }
}

/// <summary>One claim condition: exactly one of <see cref="Exact"/>, <see cref="Glob"/>, <see cref="OneOf"/>.</summary>
public sealed class ConditionSpec
{
    public string? Claim { get; set; }
    public string? Exact { get; set; }
    public string? Glob { get; set; }
    public List<string>? OneOf { get; set; }
}

public sealed class TargetSpec
{
    public string? Name { get; set; }
    public string? Kind { get; set; }
    public string? Sidecar { get; set; }
    public int? ListenPort { get; set; }
    public Dictionary<string, string>? Labels { get; set; }

    /// <summary>
    /// Agents send their token as a cleartext password, so the sidecar asks for it only inside TLS —
    /// or, when this is true, also from clients on the sidecar's own host (loopback). Default false.
    /// </summary>
    public bool? AllowCleartextOnLoopback { get; set; }

    public UpstreamSpec? Upstream { get; set; }
}

public sealed class UpstreamSpec
{
    public string? Host { get; set; }
    public int? Port { get; set; }
    public string? Database { get; set; }
    public string? Username { get; set; }
    public string? Tls { get; set; }

    /// <summary>
    /// Authentication methods the sidecar may use for its own login, as libpq's <c>require_auth</c>
    /// names them: <c>scram-sha-256</c>, <c>md5</c>, <c>password</c> (cleartext; never without TLS),
    /// <c>none</c> (the server asks for nothing). Default: <c>[scram-sha-256]</c>, or <c>[none]</c>
    /// for a target without a credential.
    /// </summary>
    public List<string>? Auth { get; set; }

    /// <summary><c>env:NAME</c>, <c>file:/path</c> (resolved only at the sidecar) or <c>stored</c>.</summary>
    public string? Credential { get; set; }

    /// <summary>Write-only: a credential to store encrypted (then <see cref="Credential"/> is <c>stored</c>). Never exported.</summary>
    public string? Password { get; set; }
}

public sealed class RoleSpec
{
    public string? Name { get; set; }
    public string? Description { get; set; }
    /// <summary>A named rule template the role starts from: <c>agent-safe</c> (its rules come first; the role's own rules extend it).</summary>
    public string? Baseline { get; set; }
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
    /// <summary>Functions called (lower case; <c>pg_catalog.</c> is folded away).</summary>
    public List<string>? Functions { get; set; }
    /// <summary>Classifier flags (<c>unfiltered_write</c>, <c>file_access</c>, <c>role_change</c> …).</summary>
    public List<string>? Flags { get; set; }
    /// <summary>A regular expression over the normalized statement (comments dropped, single spaces, keywords in upper case).</summary>
    public string? Pattern { get; set; }
}

public sealed class MaskSpecDoc
{
    public List<string>? Columns { get; set; }
    public List<string>? Detectors { get; set; }
    public string? Strategy { get; set; }
    public int? KeepLast { get; set; }
    /// <summary><c>default</c> (plain output masked, filters allowed, any other use refused), <c>strict</c> (filters refused too) or <c>output_only</c> (weaker: other uses allowed, unmasked).</summary>
    public string? Mode { get; set; }
}

public sealed class ApprovalSpecDoc
{
    public string? Mode { get; set; }
    public int? Approvals { get; set; }
    /// <summary>Console users of this group (with the Approver or Admin role) vote; null: any Approver or Admin.</summary>
    public string? Group { get; set; }
    public int? TimeoutSeconds { get; set; }
    /// <summary>Fail-fast only: minutes after approval during which the identical statement runs; absent: once.</summary>
    public int? WindowMinutes { get; set; }
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
