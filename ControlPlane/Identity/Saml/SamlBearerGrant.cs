using System.Buffers.Text;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Airlock.ControlPlane.Data;
using Airlock.Sidecar.Policy.Identity;
using Microsoft.EntityFrameworkCore;

namespace Airlock.ControlPlane.Identity.Saml;

/// <summary>
/// RFC 7522 at the token endpoint: a base64url SAML 2.0 assertion in <c>assertion</c>, validated by
/// <see cref="SamlAssertionValidator"/>, used once, and bound to exactly one agent by the provider's
/// bindings (claim <c>NameID</c> is the subject; any other name is a SAML attribute).
/// </summary>
public static class SamlBearerGrant
{
    public const string GrantType = "urn:ietf:params:oauth:grant-type:saml2-bearer";
    public const string NameIdClaim = "NameID";

    /// <summary>Returns the agent name, or why the assertion is refused.</summary>
    public static async Task<(string? Agent, string? Problem)> ResolveAgentAsync(
        string? assertion, AirlockDbContext db, AgentTokenOptions options, DateTimeOffset now, CancellationToken ct)
    {
        if (string.IsNullOrEmpty(assertion))
            return (null, "the 'assertion' parameter is missing");
        string xml;
        try
        {
            xml = Encoding.UTF8.GetString(Base64Url.DecodeFromChars(assertion));
        }
        catch (FormatException)
        {
            return (null, "the assertion is not base64url");
        }

        var issuers = await db.TrustedIssuers.AsNoTracking().Where(t => t.Kind == TrustedIssuerKinds.Saml).ToListAsync(ct);
        var providers = issuers
            .Where(t => t.Certificate is not null)
            .Select(t => new SamlIdentityProvider(t.Name, t.Issuer, X509Certificate2.CreateFromPem(t.Certificate), t.Audiences.Count > 0 ? t.Audiences : [options.Issuer!]))
            .ToList();
        try
        {
            var recipient = options.Issuer!.TrimEnd('/') + AgentTokenIssuer.TokenPath;
            var check = SamlAssertionValidator.Validate(xml, providers, recipient, now);
            if (check.Assertion is not { } verified)
                return (null, check.Reason);

            var bindings = issuers.Single(i => i.Name == verified.Provider.Name).Bindings
                .Where(b => b.Conditions.All(c => Holds(c, verified)))
                .ToList();
            if (bindings.Count != 1)
                return (null, bindings.Count == 0
                    ? $"the assertion of '{verified.Provider.Name}' matches no binding"
                    : $"the assertion of '{verified.Provider.Name}' matches {bindings.Count} bindings ({string.Join(", ", bindings.Select(b => b.Name))}); it must match exactly one");

            // One-time use, across replicas: the store's primary key refuses a second insert.
            await db.UsedAssertions.Where(u => u.ExpiresAt < now).ExecuteDeleteAsync(ct);
            db.UsedAssertions.Add(new UsedAssertion
            {
                Id = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{verified.Provider.EntityId}\n{verified.Id}"))),
                ExpiresAt = verified.NotOnOrAfter + SamlAssertionValidator.MaxSkew,
            });
            try
            {
                await db.SaveChangesAsync(ct);
            }
            catch (DbUpdateException)
            {
                db.ChangeTracker.Clear();
                return (null, "the assertion was already used (replay)");
            }
            return (bindings[0].Agent, null);
        }
        finally
        {
            foreach (var p in providers)
                p.Certificate.Dispose();
        }
    }

    /// <summary>A condition holds when any value of the claim (NameID or a multi-valued attribute) satisfies it.</summary>
    private static bool Holds(ConditionData condition, SamlAssertion assertion)
    {
        IReadOnlyList<string> values = condition.Claim == NameIdClaim
            ? [assertion.NameId]
            : assertion.Attributes.GetValueOrDefault(condition.Claim) ?? [];
        return values.Any(v => condition.Match switch
        {
            ClaimMatches.Exact => condition.Values.Count == 1 && condition.Values[0] == v,
            ClaimMatches.OneOf => condition.Values.Contains(v, StringComparer.Ordinal),
            ClaimMatches.Glob => condition.Values.Count == 1 && TokenValidator.Glob(condition.Values[0], v),
            _ => false,
        });
    }
}
