using System.Text.Json;
using Airlock.ControlPlane.Data;
using Airlock.ControlPlane.Policies;
using Microsoft.EntityFrameworkCore;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Airlock.ControlPlane.Identity;

public sealed record AgentCredentialView(string Agent, bool HasSecret, IReadOnlyList<string> PublicKeys, DateTimeOffset? LastTokenIssuedAt, DateTimeOffset? LastUsedAt, string TokenEndpoint);

/// <summary>
/// An agent's credentials for Airlock's token endpoint, kept as an OpenIddict application whose
/// client id is the agent name: a client secret (stored hashed by OpenIddict, shown once) and/or
/// public keys for <c>private_key_jwt</c> (recommended: no shared secret at all).
/// </summary>
public sealed class AgentCredentials(AirlockDbContext db, IOpenIddictApplicationManager applications, Microsoft.Extensions.Options.IOptions<AgentTokenOptions> options, TimeProvider time)
{
    public async Task<AgentCredentialView?> GetAsync(string agentName, CancellationToken ct)
    {
        var agent = await db.Agents.AsNoTracking().SingleOrDefaultAsync(a => a.Name == agentName, ct);
        if (agent is null)
            return null;
        var application = await applications.FindByClientIdAsync(agentName, ct);
        var keys = application is null ? null : await applications.GetJsonWebKeySetAsync(application, ct);
        var hasSecret = application is not null && !string.IsNullOrEmpty(await ClientSecretAsync(application, ct));
        return new AgentCredentialView(agentName, hasSecret, keys?.Keys.Select(k => k.Kid).ToList() ?? [], agent.LastTokenIssuedAt, agent.LastUsedAt, options.Value.Issuer!.TrimEnd('/') + AgentTokenIssuer.TokenPath);
    }

    /// <summary>Issues a new client secret (replacing any earlier one); returns it — the only time it is visible.</summary>
    public async Task<string?> RotateSecretAsync(string agentName, string actor, CancellationToken ct)
    {
        if (!await db.Agents.AnyAsync(a => a.Name == agentName, ct))
            return null;
        var secret = Secrets.New("cs_");
        await UpsertAsync(agentName, d => d.ClientSecret = secret, ct);
        db.Record(time.GetUtcNow(), actor, "rotate-secret", "agent", agentName, null, new { clientSecret = AuditLog.Redacted });
        await db.SaveChangesAsync(ct);
        return secret;
    }

    /// <summary>Registers or replaces the agent's public keys (a JWKS) for <c>private_key_jwt</c>.</summary>
    public async Task<IReadOnlyList<PolicyError>?> SetPublicKeysAsync(string agentName, string jwksJson, string actor, CancellationToken ct)
    {
        if (!await db.Agents.AnyAsync(a => a.Name == agentName, ct))
            return null;
        JsonWebKeySet set;
        try
        {
            set = new JsonWebKeySet(jwksJson);
        }
        catch (Exception e) when (e is ArgumentException or JsonException)
        {
            return [new PolicyError("keys", $"not a JWKS document: {e.Message}")];
        }
        var usable = Jwks.Parse(jwksJson);
        if (usable.Count == 0 || usable.Count != set.Keys.Count)
            return [new PolicyError("keys", "give one or more public RSA (2048+) or EC P-256 keys, each with a kid, and nothing else")];
        if (set.Keys.Any(k => k.HasPrivateKey))
            return [new PolicyError("keys", "a private key was sent: register only the public part, and treat the private key as leaked")];
        await UpsertAsync(agentName, d => d.JsonWebKeySet = set, ct);
        db.Record(time.GetUtcNow(), actor, "set-public-keys", "agent", agentName, null, new { keys = usable.Select(k => k.Kid) });
        await db.SaveChangesAsync(ct);
        return [];
    }

    /// <summary>Removes every credential of an agent (its tokens stay valid until they expire, at most 1 h).</summary>
    public async Task<bool> RevokeAsync(string agentName, string actor, CancellationToken ct)
    {
        var application = await applications.FindByClientIdAsync(agentName, ct);
        if (application is null)
            return false;
        await applications.DeleteAsync(application, ct);
        db.Record(time.GetUtcNow(), actor, "revoke-credentials", "agent", agentName, null, null);
        await db.SaveChangesAsync(ct);
        return true;
    }

    /// <summary>Deletes the applications of agents that no longer exist (after a policy apply).</summary>
    public async Task RemoveOrphansAsync(IEnumerable<string> deletedAgents, CancellationToken ct)
    {
        foreach (var name in deletedAgents)
            if (await applications.FindByClientIdAsync(name, ct) is { } application)
                await applications.DeleteAsync(application, ct);
    }

    private async Task UpsertAsync(string agentName, Action<OpenIddictApplicationDescriptor> change, CancellationToken ct)
    {
        var application = await applications.FindByClientIdAsync(agentName, ct);
        var descriptor = new OpenIddictApplicationDescriptor();
        if (application is not null)
            await applications.PopulateAsync(descriptor, application, ct);
        descriptor.ClientId = agentName;
        descriptor.ClientType = ClientTypes.Confidential;
        descriptor.DisplayName = $"agent {agentName}";
        descriptor.Permissions.Clear();
        descriptor.Permissions.UnionWith([Permissions.Endpoints.Token, Permissions.GrantTypes.ClientCredentials]);
        change(descriptor);
        if (application is null)
            await applications.CreateAsync(descriptor, ct);
        else
            await applications.UpdateAsync(application, descriptor, ct);
    }

    private async Task<string?> ClientSecretAsync(object application, CancellationToken ct)
    {
        var descriptor = new OpenIddictApplicationDescriptor();
        await applications.PopulateAsync(descriptor, application, ct);
        return descriptor.ClientSecret;
    }
}
