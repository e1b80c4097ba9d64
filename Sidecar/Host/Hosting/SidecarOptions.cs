using System.ComponentModel.DataAnnotations;

namespace Airlock.Sidecar.Hosting;

/// <summary>Section <c>Sidecar</c>; the command line maps <c>--control-plane</c>, <c>--enrollment-token</c> and <c>--state-dir</c> here.</summary>
public sealed class SidecarOptions : IValidatableObject
{
    public const string Section = "Sidecar";

    /// <summary>Control-plane base URL (REST, SignalR). Needed to enroll and to connect.</summary>
    public string? ControlPlane { get; set; }

    /// <summary>One-time token, used on first start only.</summary>
    public string? EnrollmentToken { get; set; }

    /// <summary>Credential, keys and the cached snapshot (files are 0600).</summary>
    public string StateDirectory { get; set; } = Path.Combine(".state", "sidecar");

    [Range(1, 300)]
    public int HeartbeatSeconds { get; set; } = 10;

    /// <summary>Reconnect backoff ceiling.</summary>
    [Range(1, 600)]
    public int MaxBackoffSeconds { get; set; } = 30;

    /// <summary>
    /// Group commit of the recording spool: how long recorded events may wait for their fsync and
    /// signed chain head. Longer costs less per event (fewer fsyncs, signatures and uploads) but
    /// widens what a crash of this machine could take from the recording, and the live view's lag.
    /// </summary>
    [Range(10, 1000)]
    public int RecordingFlushMilliseconds { get; set; } = 100;

    /// <summary>
    /// Uploads of flushed events start at most this often (a backlog is sent without pause). Each
    /// upload costs the control plane a transaction, signature checks and a round trip whatever its
    /// size, so fewer, larger uploads cost less per event; the price is the live view's lag. The
    /// spool's durability does not depend on it.
    /// </summary>
    [Range(0, 5000)]
    public int RecordingUploadMilliseconds { get; set; } = 250;

    /// <summary>
    /// Exposes <c>POST /v1/synthetic-sessions</c>, which records generated sessions through the real
    /// recorder: for load tests and demos of the recording pipeline. Off by default; it needs
    /// <see cref="SyntheticSessionsToken"/>, which every request must present as a bearer token.
    /// </summary>
    public bool SyntheticSessions { get; set; }

    /// <summary>The bearer token the synthetic-sessions endpoint requires (at least 32 characters).</summary>
    public string? SyntheticSessionsToken { get; set; }

    /// <summary>Section <c>Sidecar:CredentialReferences</c>: which <c>env:</c> and <c>file:</c> credential references this sidecar resolves (none by default).</summary>
    public Airlock.Sidecar.Credentials.CredentialReferenceOptions CredentialReferences { get; set; } = new();

    /// <summary>Section <c>Sidecar:Limits</c>: connections in startup (globally, per source address), sessions per target, startup timeout.</summary>
    public Airlock.Sidecar.Gateway.ConnectionLimitOptions Limits { get; set; } = new();

    /// <summary>Section <c>Sidecar:Postgres</c>: the PostgreSQL gateway's listeners.</summary>
    public Airlock.Sidecar.Postgres.PostgresGatewayOptions Postgres { get; set; } = new();

    /// <summary>Section <c>Sidecar:Mcp</c>: the MCP front door for AI agents (off by default).</summary>
    public Airlock.Sidecar.Mcp.McpOptions Mcp { get; set; } = new();

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (ControlPlane is not null
            && (!Uri.TryCreate(ControlPlane, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps)))
            yield return new ValidationResult($"--control-plane (Sidecar:ControlPlane) '{ControlPlane}' is not an http(s) URL", [nameof(ControlPlane)]);
        if (SyntheticSessions && (SyntheticSessionsToken is null || SyntheticSessionsToken.Length < 32))
            yield return new ValidationResult("SyntheticSessions needs Sidecar:SyntheticSessionsToken (at least 32 characters): the endpoint writes recordings and must not be open", [nameof(SyntheticSessionsToken)]);
        if (string.IsNullOrWhiteSpace(StateDirectory))
            yield return new ValidationResult("--state-dir (Sidecar:StateDirectory) must not be empty", [nameof(StateDirectory)]);
        var nested = new List<ValidationResult>();
        Validator.TryValidateObject(Postgres, new ValidationContext(Postgres), nested, validateAllProperties: true);
        foreach (var result in nested)
            yield return new ValidationResult(result.ErrorMessage, result.MemberNames.Select(m => $"Postgres:{m}"));
        nested.Clear();
        Validator.TryValidateObject(Limits, new ValidationContext(Limits), nested, validateAllProperties: true);
        foreach (var result in nested)
            yield return new ValidationResult(result.ErrorMessage, result.MemberNames.Select(m => $"Limits:{m}"));
        nested.Clear();
        Validator.TryValidateObject(Mcp, new ValidationContext(Mcp), nested, validateAllProperties: true);
        foreach (var result in nested)
            yield return new ValidationResult(result.ErrorMessage, result.MemberNames.Select(m => $"Mcp:{m}"));
        if (Mcp.Enabled && Mcp.CertificatePath is null && Postgres.CertificatePath is null)
            yield return new ValidationResult("the MCP front door needs a TLS certificate (agents send it their tokens): set Sidecar:Mcp:CertificatePath and KeyPath, or Sidecar:Postgres:CertificatePath and KeyPath", ["Mcp:CertificatePath"]);
        foreach (var result in CredentialReferences.Validate(new ValidationContext(CredentialReferences)))
            yield return new ValidationResult(result.ErrorMessage, result.MemberNames.Select(m => $"CredentialReferences:{m}"));
    }
}
