using System.ComponentModel.DataAnnotations;

namespace Airlock.ControlPlane.Identity;

/// <summary>Section <c>Airlock:Identity</c>: Airlock as the OIDC issuer of agent tokens.</summary>
public sealed class AgentTokenOptions : IValidatableObject
{
    /// <summary>The <c>iss</c> of agent tokens and the discovery base. Default: the console URL.</summary>
    public string? Issuer { get; set; }

    /// <summary>The <c>aud</c> of agent tokens; sidecars accept only this.</summary>
    [Required]
    public string Audience { get; set; } = "airlock";

    /// <summary>Access-token lifetime: default 15 minutes, at most 60.</summary>
    [Range(1, 60)]
    public int TokenLifetimeMinutes { get; set; } = 15;

    /// <summary>
    /// RFC 7591 at <c>/connect/register</c>: MCP clients register themselves to act for people (each person still
    /// consents, and lends only agents they own). Off by default: admins register clients (<c>POST /api/v1/mcp-clients</c>).
    /// </summary>
    public bool DynamicClientRegistration { get; set; }

    /// <summary>Dynamically registered clients kept at most: registration is anonymous, so it must not fill the store.</summary>
    [Range(1, 100_000)]
    public int MaxDynamicClients { get; set; } = 100;

    /// <summary>How often issuers without a static JWKS are re-fetched.</summary>
    [Range(1, 24 * 60)]
    public int IssuerRefreshMinutes { get; set; } = 15;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (Issuer is not null && (!Uri.TryCreate(Issuer, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || !string.IsNullOrEmpty(uri.Query)))
            yield return new ValidationResult($"Airlock:Identity:Issuer '{Issuer}' must be an absolute http(s) URL without a query", [nameof(Issuer)]);
    }
}
