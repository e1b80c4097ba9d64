using System.ComponentModel.DataAnnotations;

namespace Airlock.Sidecar.Mcp;

/// <summary>
/// Section <c>Sidecar:Mcp</c>: the MCP front door, an HTTPS endpoint of the sidecar's own through which AI
/// agents reach its targets (tools <c>list_targets</c>, <c>describe</c>, <c>query</c>, <c>explain</c>,
/// <c>approval_status</c>). Off unless enabled; it needs a certificate, since agents send their tokens to it.
/// </summary>
public sealed class McpOptions : IValidatableObject
{
    public bool Enabled { get; set; }

    public string ListenAddress { get; set; } = "0.0.0.0";

    [Range(1, 65535)]
    public int Port { get; set; } = 8443;

    /// <summary>PEM certificate (chain) and key; by default the PostgreSQL listeners' (Sidecar:Postgres:CertificatePath).</summary>
    public string? CertificatePath { get; set; }

    public string? KeyPath { get; set; }

    /// <summary>
    /// The URL agents reach the endpoint at, and so the resource their tokens must be for (RFC 8707/9728):
    /// <c>https://host:port/mcp</c>. Default <c>https://localhost:{Port}/mcp</c>.
    /// </summary>
    public string? ResourceUrl { get; set; }

    /// <summary>The targets served through MCP (names); empty: every PostgreSQL target of this sidecar.</summary>
    public List<string> Targets { get; set; } = [];

    /// <summary>
    /// One endpoint per target, <c>{ResourceUrl}/{target}</c>, each its own resource (a token for one target's
    /// endpoint opens no other), instead of one endpoint for all of them at <see cref="ResourceUrl"/>.
    /// </summary>
    public bool PerTarget { get; set; }

    /// <summary>The resource of <paramref name="target"/>'s own endpoint (with <see cref="PerTarget"/>), or of the one endpoint.</summary>
    public string ResourceOf(string? target) =>
        PerTarget && target is not null ? $"{Resource.ToString().TrimEnd('/')}/{Uri.EscapeDataString(target)}" : Resource.ToString();

    /// <summary>Rows a <c>query</c> returns at most; the rest is not read from the target and the result says it was truncated.</summary>
    [Range(1, 100_000)]
    public int MaxRows { get; set; } = 500;

    /// <summary>Bytes of values a <c>query</c> returns at most (as text); rows past it are dropped and the result says so.</summary>
    [Range(1024, 64 * 1024 * 1024)]
    public int MaxResultBytes { get; set; } = 1024 * 1024;

    /// <summary>The target's statement_timeout for MCP sessions; a statement running longer fails with 57014.</summary>
    [Range(1, 3600)]
    public int StatementTimeoutSeconds { get; set; } = 30;

    /// <summary>Tool calls one agent may have running at once on this sidecar; more are refused, not queued.</summary>
    [Range(1, 1000)]
    public int MaxConcurrentCallsPerAgent { get; set; } = 4;

    /// <summary>MCP sessions one agent may hold on this sidecar (each is an upstream session); a new one replaces the least recently used idle one.</summary>
    [Range(1, 1000)]
    public int MaxSessionsPerAgent { get; set; } = 4;

    /// <summary>The largest statement (with its parameters) <c>query</c> and <c>explain</c> take, in bytes.</summary>
    [Range(1024, 16 * 1024 * 1024)]
    public int MaxStatementBytes { get; set; } = 1024 * 1024;

    /// <summary>How long <c>query</c> waits for a decision on a held statement before answering <c>pending_approval</c>.</summary>
    [Range(0, 300)]
    public int ApprovalWaitSeconds { get; set; } = 5;

    /// <summary>The longest <c>approval_status</c> waits, whatever the agent asks.</summary>
    [Range(1, 600)]
    public int MaxApprovalWaitSeconds { get; set; } = 120;

    /// <summary>An agent's MCP session on a target ends after this long without a call (its recording then ends).</summary>
    [Range(5, 86_400)]
    public int IdleSessionSeconds { get; set; } = 300;

    /// <summary>Tables <c>describe</c> lists at most.</summary>
    [Range(1, 100_000)]
    public int MaxDescribedTables { get; set; } = 500;

    public Uri Resource => new(ResourceUrl ?? $"https://localhost:{Port}/mcp", UriKind.Absolute);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!Enabled)
            yield break;
        if (ResourceUrl is not null && (!Uri.TryCreate(ResourceUrl, UriKind.Absolute, out var uri) || uri.Scheme != Uri.UriSchemeHttps || uri.Fragment.Length > 0))
            yield return new ValidationResult($"'{ResourceUrl}' is not an https URL without a fragment (the resource agents' tokens name)", [nameof(ResourceUrl)]);
        if (!System.Net.IPAddress.TryParse(ListenAddress, out _))
            yield return new ValidationResult($"'{ListenAddress}' is not an IP address", [nameof(ListenAddress)]);
        // The resource names the front door: left at localhost, tokens for one sidecar would open every other one left so.
        if (ResourceUrl is null && System.Net.IPAddress.TryParse(ListenAddress, out var address) && !System.Net.IPAddress.IsLoopback(address))
            yield return new ValidationResult("set the URL agents reach the front door at (it is the resource their tokens name, so it must be this sidecar's own)", [nameof(ResourceUrl)]);
        if ((CertificatePath is null) != (KeyPath is null))
            yield return new ValidationResult("give both CertificatePath and KeyPath, or neither (then the PostgreSQL listeners' are used)", [nameof(CertificatePath)]);
    }
}
