using System.Security.Claims;
using System.Text.Json.Serialization;
using Airlock.ControlPlane.Api;
using Airlock.ControlPlane.Data;
using Airlock.ControlPlane.Policies;
using Microsoft.AspNetCore;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Abstractions;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Airlock.ControlPlane.Identity;

/// <summary>An MCP client registered to act for people (OAuth public client: authorization code with PKCE).</summary>
public sealed record McpClientView(string ClientId, string Name, IReadOnlyList<string> RedirectUris, bool Dynamic);

public sealed record McpClientRequest(string? Name, IReadOnlyList<string>? RedirectUris);

/// <summary>
/// An AI agent acting for a person. An MCP client (registered by an admin, or by itself when dynamic
/// client registration is on) sends a signed-in console user through <c>/connect/authorize</c> with PKCE and
/// the front door it wants (RFC 8707 <c>resource</c>); the person picks one of the agents they own, and the
/// token the client gets is that agent's, naming the person too. The person's rights only narrow the agent's:
/// an Auditor's delegation is read-only at the sidecar, and a person may lend only agents they own (so they
/// can never approve what the agent asks for, as owners cannot).
/// </summary>
public static class Delegation
{
    public const string AuthorizePath = "/connect/authorize";
    public const string RegisterPath = "/connect/register";
    public const string ConsentPath = "/connect/consent";

    /// <summary>Client ids of MCP clients start so; agent names cannot contain ':'.</summary>
    public const string ClientPrefix = "mcp:";

    /// <summary>The token claims a delegation adds: who it is for, and how far they let it go (<c>read</c> or <c>full</c>).</summary>
    public const string PersonClaim = "person";
    public const string PersonAccessClaim = "person_access";

    /// <summary>What the person's own console role lets a delegation do: an Auditor reads only.</summary>
    public static string AccessOf(string consoleRole) => consoleRole == ConsoleRoles.Auditor ? "read" : "full";

    public static WebApplication MapDelegation(this WebApplication app)
    {
        app.MapMethods(AuthorizePath, [HttpMethods.Get, HttpMethods.Post], AuthorizeAsync).AllowAnonymous();
        app.MapPost(RegisterPath, RegisterAsync).AllowAnonymous().DisableAntiforgery();
        const string Clients = "/api/v1/mcp-clients";
        app.MapGet(Clients, (McpClients clients, CancellationToken ct) => clients.ListAsync(ct)).RequireAuthorization(AccessPolicies.Viewer);
        app.MapPost(Clients, async (McpClientRequest request, McpClients clients, ClaimsPrincipal user, CancellationToken ct) =>
        {
            var (client, errors) = await clients.CreateAsync(request, dynamic: false, user.Identity!.Name!, ct);
            return client is null ? ApiProblems.Validation(errors) : Results.Created($"/api/v1/mcp-clients/{Uri.EscapeDataString(client.ClientId)}", client);
        }).RequireAuthorization(AccessPolicies.Admin);
        app.MapDelete(Clients + "/{clientId}", async (string clientId, McpClients clients, ClaimsPrincipal user, CancellationToken ct) =>
            await clients.DeleteAsync(clientId, user.Identity!.Name!, ct) ? Results.NoContent() : ApiProblems.NotFound($"MCP client '{clientId}'"))
            .RequireAuthorization(AccessPolicies.Admin);
        return app;
    }

    /// <summary>
    /// OpenIddict has validated the request (client, redirect URI, PKCE) when this runs. Not signed in: to the
    /// console's sign-in, back here after. GET: the consent page. POST (from it): the person's decision.
    /// </summary>
    private static async Task<IResult> AuthorizeAsync(HttpContext http, AirlockDbContext db, IOpenIddictApplicationManager applications,
        Microsoft.AspNetCore.Antiforgery.IAntiforgery antiforgery, IOptions<AgentTokenOptions> options, TimeProvider time, CancellationToken ct)
    {
        var request = http.GetOpenIddictServerRequest() ?? throw new InvalidOperationException("not an OpenID Connect request");
        // Only MCP clients lend agents, and only with S256 (OpenIddict requires PKCE; this pins the method).
        if (request.ClientId is not { } clientId || !clientId.StartsWith(ClientPrefix, StringComparison.Ordinal))
            return Refuse(Errors.UnauthorizedClient, "only registered MCP clients may ask a person to lend an agent");
        if (request.CodeChallengeMethod != CodeChallengeMethods.Sha256)
            return Refuse(Errors.InvalidRequest, "use PKCE with code_challenge_method=S256");
        var person = await http.AuthenticateAsync(CookieAuthenticationDefaults.AuthenticationScheme);
        if (!person.Succeeded || person.Principal.Identity?.Name is not { } userName)
            return Results.Challenge(new AuthenticationProperties { RedirectUri = http.Request.PathBase + http.Request.Path + http.Request.QueryString },
                [CookieAuthenticationDefaults.AuthenticationScheme]);
        var resources = (request.Resources ?? []).OfType<string>().ToList();
        if (resources.Count != 1)
            return Refuse(Errors.InvalidTarget, "name the one MCP front door the token is for (RFC 8707 'resource')");
        if ((AgentTokenIssuer.ResourceProblem(resources[0]) ?? AgentTokenIssuer.GatewayAudienceProblem(resources[0], options.Value)) is { } problem)
            return Refuse(Errors.InvalidTarget, problem);
        if (HttpMethods.IsGet(http.Request.Method))
            return Results.Redirect(ConsentPath + http.Request.QueryString);

        // The decision must come from the consent page itself: a forged cross-site POST would hand a code to the client.
        if (!await antiforgery.IsRequestValidAsync(http))
            return Results.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Not from the consent page",
                detail: "the decision did not come from Airlock's consent page (its antiforgery token is missing or stale); start the sign-in again from the client");
        var form = await http.Request.ReadFormAsync(ct);
        if (form["decision"] != "allow")
            return Refuse(Errors.AccessDenied, "the person did not let the client act for them");
        var user = await db.Users.AsNoTracking().SingleOrDefaultAsync(u => u.UserName == userName && !u.Disabled, ct);
        var agentName = form["agent"].ToString();
        var agent = await db.Agents.Include(a => a.Role).SingleOrDefaultAsync(a => a.Name == agentName, ct);
        // Only an agent the person owns: lending someone else's agent would widen the person's rights.
        if (user is null || agent is null || !agent.Enabled || !string.Equals(agent.Owner, user.UserName, StringComparison.OrdinalIgnoreCase))
            return Results.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Not your agent",
                detail: $"{userName} may let an MCP client act only as an enabled agent they own; '{agentName}' is not one");

        var client = await applications.FindByClientIdAsync(request.ClientId!, ct);
        var identity = new ClaimsIdentity(TokenValidationParameters.DefaultAuthenticationType, Claims.Name, Claims.Role);
        identity.SetClaim(Claims.Subject, agent.Id.ToString());
        identity.SetClaim(Claims.Name, agent.Name);
        identity.SetClaim(Claims.Role, agent.Role!.Name);
        identity.SetClaim("owner", agent.Owner);
        identity.SetClaim(PersonClaim, user.UserName);
        identity.SetClaim(PersonAccessClaim, AccessOf(user.Role));
        identity.SetClaim("client_id", request.ClientId);
        identity.SetAudiences(resources[0]);
        identity.SetResources(resources[0]);
        identity.SetDestinations(_ => [Destinations.AccessToken]);
        db.Record(time.GetUtcNow(), user.UserName, "delegate", "agent", agent.Name, null, new
        {
            client = request.ClientId,
            clientName = client is null ? null : await applications.GetDisplayNameAsync(client, ct),
            resource = resources[0],
            access = AccessOf(user.Role),
        });
        await db.SaveChangesAsync(ct);
        return Results.SignIn(new ClaimsPrincipal(identity), authenticationScheme: OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
    }

    /// <summary>
    /// The code's exchange at the token endpoint: the grant stands only while the agent is enabled, the person
    /// still an active console user who owns it, with the access their role gives now.
    /// </summary>
    internal static async Task<(ClaimsIdentity? Identity, string? Problem)> RedeemAsync(HttpContext http, AirlockDbContext db, CancellationToken ct)
    {
        var code = await http.AuthenticateAsync(OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
        if (code.Principal is not { } granted || granted.GetClaim(PersonClaim) is not { } personName || !Guid.TryParse(granted.GetClaim(Claims.Subject), out var agentId))
            return (null, "the authorization code is not a delegation");
        var agent = await db.Agents.Include(a => a.Role).SingleOrDefaultAsync(a => a.Id == agentId, ct);
        var user = await db.Users.AsNoTracking().SingleOrDefaultAsync(u => u.UserName == personName && !u.Disabled, ct);
        if (agent is null || !agent.Enabled)
            return (null, "the agent is gone or disabled");
        if (user is null || !string.Equals(agent.Owner, user.UserName, StringComparison.OrdinalIgnoreCase))
            return (null, $"{personName} is no longer an active console user who owns agent '{agent.Name}'");
        var identity = new ClaimsIdentity(granted.Claims, TokenValidationParameters.DefaultAuthenticationType, Claims.Name, Claims.Role);
        identity.SetClaim(Claims.Role, agent.Role!.Name);
        identity.SetClaim(PersonAccessClaim, AccessOf(user.Role));
        identity.SetDestinations(_ => [Destinations.AccessToken]);
        return (identity, null);
    }

    /// <summary>RFC 7591, only when an admin turned it on (Airlock:Identity:DynamicClientRegistration).</summary>
    private static async Task<IResult> RegisterAsync(HttpContext http, McpClients clients, IOptions<AgentTokenOptions> options, CancellationToken ct)
    {
        if (!options.Value.DynamicClientRegistration)
            // As if it did not exist (discovery does not list it): clients then fall back to a registered client id.
            return Results.Problem(statusCode: StatusCodes.Status404NotFound, title: "Dynamic client registration is off",
                detail: "Ask an Airlock admin to register your MCP client (POST /api/v1/mcp-clients), or to turn on Airlock:Identity:DynamicClientRegistration.");
        RegistrationRequest? body;
        try
        {
            // JSON only, as RFC 7591 says (this endpoint is anonymous: no other parser is offered to anyone).
            body = http.Request.HasJsonContentType() ? await http.Request.ReadFromJsonAsync<RegistrationRequest>(ct) : null;
        }
        catch (System.Text.Json.JsonException)
        {
            body = null;
        }
        if (body is null)
            return Results.Json(new { error = "invalid_client_metadata", error_description = "send the client's metadata as a JSON object (client_name, redirect_uris)" }, statusCode: 400);
        var (client, errors) = await clients.CreateAsync(new McpClientRequest(body.ClientName, body.RedirectUris), dynamic: true, "dynamic-registration", ct);
        if (client is null)
            return Results.Json(new { error = "invalid_client_metadata", error_description = string.Join("; ", errors.Select(e => $"{e.Path}: {e.Message}")) }, statusCode: 400);
        return Results.Json(new Dictionary<string, object>
        {
            ["client_id"] = client.ClientId,
            ["client_name"] = client.Name,
            ["redirect_uris"] = client.RedirectUris,
            ["token_endpoint_auth_method"] = "none",
            ["grant_types"] = new[] { GrantTypes.AuthorizationCode },
            ["response_types"] = new[] { ResponseTypes.Code },
        }, statusCode: StatusCodes.Status201Created);
    }

    private sealed record RegistrationRequest(
        [property: JsonPropertyName("client_name")] string? ClientName,
        [property: JsonPropertyName("redirect_uris")] IReadOnlyList<string>? RedirectUris);

    private static IResult Refuse(string error, string description) => AgentTokenIssuer.Refuse(error, description);
}

/// <summary>MCP clients as OpenIddict applications: public, authorization code only, PKCE required, exact redirect URIs.</summary>
public sealed class McpClients(AirlockDbContext db, IOpenIddictApplicationManager applications, IOptions<AgentTokenOptions> options, TimeProvider time)
{
    public const int MaxRedirectUris = 5;

    public async Task<IReadOnlyList<McpClientView>> ListAsync(CancellationToken ct)
    {
        var found = new List<McpClientView>();
        await foreach (var application in applications.ListAsync(count: null, offset: null, ct))
            if (await applications.GetClientIdAsync(application, ct) is { } id && id.StartsWith(Delegation.ClientPrefix, StringComparison.Ordinal))
                found.Add(await ViewAsync(application, ct));
        return found.OrderBy(c => c.Name, StringComparer.Ordinal).ToList();
    }

    /// <summary>Registrations take turns: the dynamic clients' cap is counted and kept in one step (in this process).</summary>
    private static readonly SemaphoreSlim Registering = new(1, 1);

    public async Task<(McpClientView? Client, IReadOnlyList<PolicyError> Errors)> CreateAsync(McpClientRequest request, bool dynamic, string actor, CancellationToken ct)
    {
        await Registering.WaitAsync(ct);
        try
        {
            return await CreateOnceAsync(request, dynamic, actor, ct);
        }
        finally
        {
            Registering.Release();
        }
    }

    private async Task<(McpClientView? Client, IReadOnlyList<PolicyError> Errors)> CreateOnceAsync(McpClientRequest request, bool dynamic, string actor, CancellationToken ct)
    {
        var errors = new List<PolicyError>();
        var name = request.Name?.Trim();
        // Shown on the consent page: printable, and no format characters (a right-to-left override could disguise it).
        if (string.IsNullOrEmpty(name) || name.Length > 100 || name.Any(c => char.IsControl(c) || char.GetUnicodeCategory(c) == System.Globalization.UnicodeCategory.Format))
            errors.Add(new PolicyError("name", "give the client a name of 1 to 100 printable characters"));
        var uris = request.RedirectUris ?? [];
        if (uris.Count is 0 or > MaxRedirectUris)
            errors.Add(new PolicyError("redirectUris", $"give 1 to {MaxRedirectUris} redirect URIs"));
        for (var i = 0; i < uris.Count && i < MaxRedirectUris; i++)
            if (RedirectProblem(uris[i]) is { } problem)
                errors.Add(new PolicyError($"redirectUris[{i}]", problem));
        if (dynamic && await CountDynamicAsync(ct) >= options.Value.MaxDynamicClients)
            errors.Add(new PolicyError("$", $"this Airlock holds {options.Value.MaxDynamicClients} dynamically registered clients already (Airlock:Identity:MaxDynamicClients)"));
        if (errors.Count > 0)
            return (null, errors);

        var descriptor = new OpenIddictApplicationDescriptor
        {
            ClientId = Delegation.ClientPrefix + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8)),
            ClientType = ClientTypes.Public,
            DisplayName = name,
            ConsentType = ConsentTypes.Explicit,
        };
        foreach (var uri in uris)
            descriptor.RedirectUris.Add(new Uri(uri));
        descriptor.Permissions.UnionWith([Permissions.Endpoints.Authorization, Permissions.Endpoints.Token, Permissions.GrantTypes.AuthorizationCode, Permissions.ResponseTypes.Code]);
        descriptor.Requirements.Add(Requirements.Features.ProofKeyForCodeExchange);
        descriptor.Properties["dynamic"] = System.Text.Json.JsonSerializer.SerializeToElement(dynamic);
        var application = await applications.CreateAsync(descriptor, ct);
        db.Record(time.GetUtcNow(), actor, "create", "mcp-client", descriptor.ClientId, null, new { name, redirectUris = uris, dynamic });
        await db.SaveChangesAsync(ct);
        return (await ViewAsync(application, ct), []);
    }

    public async Task<bool> DeleteAsync(string clientId, string actor, CancellationToken ct)
    {
        if (!clientId.StartsWith(Delegation.ClientPrefix, StringComparison.Ordinal) || await applications.FindByClientIdAsync(clientId, ct) is not { } application)
            return false;
        await applications.DeleteAsync(application, ct);
        db.Record(time.GetUtcNow(), actor, "delete", "mcp-client", clientId, null, null);
        await db.SaveChangesAsync(ct);
        return true;
    }

    /// <summary>Where a code may be sent: https, or http to this machine (a desktop client's local callback); no fragment.</summary>
    internal static string? RedirectProblem(string uri) =>
        !Uri.TryCreate(uri, UriKind.Absolute, out var parsed) ? "not an absolute URL"
        : parsed.Fragment.Length > 0 ? "a redirect URI has no fragment"
        : parsed.Scheme != Uri.UriSchemeHttps && !(parsed.Scheme == Uri.UriSchemeHttp && parsed.IsLoopback) ? "use https, or http to localhost / 127.0.0.1"
        : uri.Length > 500 ? "longer than 500 characters"
        : null;

    private async Task<int> CountDynamicAsync(CancellationToken ct) => (await ListAsync(ct)).Count(c => c.Dynamic);

    private async Task<McpClientView> ViewAsync(object application, CancellationToken ct)
    {
        var properties = await applications.GetPropertiesAsync(application, ct);
        return new McpClientView(
            (await applications.GetClientIdAsync(application, ct))!,
            await applications.GetDisplayNameAsync(application, ct) ?? "",
            (await applications.GetRedirectUrisAsync(application, ct)).ToList(),
            properties.TryGetValue("dynamic", out var dynamic) && dynamic.ValueKind == System.Text.Json.JsonValueKind.True);
    }
}
