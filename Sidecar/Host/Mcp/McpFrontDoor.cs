using System.Globalization;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Airlock.Sidecar.Identity;
using Airlock.Sidecar.Snapshots;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Options;

namespace Airlock.Sidecar.Mcp;

/// <summary>
/// The MCP front door's hosting: its own HTTPS endpoint (Kestrel endpoint <c>Mcp</c>), the streamable HTTP
/// transport at <c>/mcp</c> for agents with a token for this resource, and the protected-resource metadata
/// (RFC 9728) that tells a client which issuer to ask. Nothing else is served on that port, and none of it
/// on the others.
/// </summary>
internal static class McpFrontDoor
{
    public const string Path = "/mcp";
    public const string MetadataPath = "/.well-known/oauth-protected-resource";
    public const string TargetRouteValue = "target";

    /// <summary>The target whose own endpoint the request is for (per-target endpoints), or null (the one endpoint).</summary>
    public static string? EndpointTarget(HttpContext context, McpOptions mcp) =>
        mcp.PerTarget ? context.GetRouteValue(TargetRouteValue) as string : null;

    public static void AddMcpFrontDoor(this WebApplicationBuilder builder, Hosting.SidecarOptions options)
    {
        var mcp = options.Mcp;
        if (!mcp.Enabled)
            return;
        var address = System.Net.IPAddress.Parse(mcp.ListenAddress);
        var host = address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{address}]" : address.ToString();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Kestrel:Endpoints:Mcp:Url"] = $"https://{host}:{mcp.Port}",
            ["Kestrel:Endpoints:Mcp:Certificate:Path"] = mcp.CertificatePath ?? options.Postgres.CertificatePath,
            ["Kestrel:Endpoints:Mcp:Certificate:KeyPath"] = mcp.KeyPath ?? options.Postgres.KeyPath,
        });
        builder.Services.AddAuthentication().AddScheme<AuthenticationSchemeOptions, AgentBearer>(AgentBearer.Scheme, null);
        builder.Services.AddAuthorizationBuilder().AddPolicy(AgentBearer.Scheme, p => p.AddAuthenticationSchemes(AgentBearer.Scheme).RequireAuthenticatedUser());
        builder.Services.AddSingleton<McpGateway>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<McpGateway>());
        builder.Services.AddMcpServer(o =>
            {
                o.ServerInfo = new() { Name = "airlock", Title = "Airlock", Version = Airlock.Sidecar.ControlPlane.SoftwareVersion.Current };
                o.ServerInstructions = "Databases behind Airlock: every statement is judged by your role's rules, masked, recorded, and may need a human's approval. " + AirlockTools.ResultsAreData;
            })
            // Clients of the initialize handshake keep an MCP session, so that their name and version (clientInfo)
            // reach the recording; the recorded session itself follows the agent's token, whatever the transport keeps.
            .WithHttpTransport(o => o.SessionMode = ModelContextProtocol.AspNetCore.HttpServerSessionMode.StatefulForInitializeClients)
            .WithTools<AirlockTools>();
    }

    public static void MapMcpFrontDoor(this WebApplication app)
    {
        var mcp = app.Services.GetRequiredService<IOptions<Hosting.SidecarOptions>>().Value.Mcp;
        if (!mcp.Enabled)
            return;
        // One port, one purpose: MCP and its metadata only on the MCP endpoint; health and metrics never there.
        // Before authentication, so no token is even looked at on the wrong port.
        app.Use((context, next) =>
        {
            var onMcpPort = OnFrontDoor(context, mcp);
            var mcpPath = context.Request.Path.StartsWithSegments(Path) || context.Request.Path.StartsWithSegments(MetadataPath);
            if (onMcpPort != mcpPath)
            {
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                return Task.CompletedTask;
            }
            return next(context);
        });
        app.UseAuthentication();
        app.UseAuthorization();
        // One endpoint for all the targets, or one per target ({target} in the route): each is a resource of its own.
        var path = mcp.PerTarget ? Path + "/{" + TargetRouteValue + "}" : Path;
        app.MapGet(MetadataPath + path, Metadata);
        if (!mcp.PerTarget)
            app.MapGet(MetadataPath, Metadata);
        // A statement and its parameters, JSON-escaped, with room for the envelope.
        app.MapMcp(path).RequireAuthorization(AgentBearer.Scheme)
            .WithMetadata(new Microsoft.AspNetCore.Mvc.RequestSizeLimitAttribute(2L * mcp.MaxStatementBytes + 64 * 1024));
        app.Logger.LogInformation("MCP front door at {Resource} (port {Port})", mcp.PerTarget ? mcp.ResourceOf("{target}") : mcp.Resource, mcp.Port);
    }

    /// <summary>Whether the request came in on the front door's own endpoint (its port, and its address unless it listens on all).</summary>
    public static bool OnFrontDoor(HttpContext context, McpOptions mcp)
    {
        if (context.Connection.LocalPort != mcp.Port)
            return false;
        var listen = System.Net.IPAddress.Parse(mcp.ListenAddress);
        return listen.Equals(System.Net.IPAddress.Any) || listen.Equals(System.Net.IPAddress.IPv6Any)
            || (context.Connection.LocalIpAddress is { } local && (local.Equals(listen) || (local.IsIPv4MappedToIPv6 && local.MapToIPv4().Equals(listen))));
    }

    /// <summary>RFC 9728: this resource, and Airlock's issuer as the one authorization server for it.</summary>
    private static IResult Metadata(HttpContext context, SnapshotStore snapshots, IOptions<Hosting.SidecarOptions> options, Airlock.Sidecar.ControlPlane.SidecarIdentity identity)
    {
        var issuer = snapshots.Current?.Policy.Identity?.Issuer;
        if (issuer is null)
            return Results.Problem(statusCode: 503, title: "No policy", detail: "this sidecar has no valid policy snapshot yet, so it does not know its issuer");
        return Results.Json(new Dictionary<string, object>
        {
            ["resource"] = options.Value.Mcp.ResourceOf(EndpointTarget(context, options.Value.Mcp)),
            ["authorization_servers"] = new[] { issuer },
            ["bearer_methods_supported"] = new[] { "header" },
            ["resource_name"] = $"Airlock sidecar {identity.SidecarName}",
            ["scopes_supported"] = Array.Empty<string>(),
        });
    }
}

/// <summary>
/// Bearer authentication of agents at the MCP front door: the same offline token check as the PostgreSQL
/// listeners (<see cref="AgentAuthenticator"/>), except that the token's audience must be this resource. A
/// refusal is a 401 with <c>WWW-Authenticate: Bearer resource_metadata=…</c> and the reason.
/// </summary>
internal sealed class AgentBearer(
    IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder,
    AgentAuthenticator authenticator, IOptions<Hosting.SidecarOptions> sidecar) : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public new const string Scheme = "AirlockAgent";
    private const string TokenKeyClaim = "airlock:token";
    private const string ExpiresClaim = "airlock:exp";
    private const string AddressClaim = "airlock:address";
    private const string PersonClaim = "airlock:person";
    private const string PersonReadOnlyClaim = "airlock:person-read-only";

    /// <summary>The resource this request's endpoint is: the one front door, or one target's.</summary>
    private string Resource => sidecar.Value.Mcp.ResourceOf(McpFrontDoor.EndpointTarget(Context, sidecar.Value.Mcp));

    private const string EndpointTargetClaim = "airlock:endpoint-target";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        string? header = Request.Headers.Authorization;
        if (header is null || !McpFrontDoor.OnFrontDoor(Context, sidecar.Value.Mcp))
            return Task.FromResult(AuthenticateResult.NoResult());
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            return Task.FromResult(AuthenticateResult.Fail("the Authorization header is not a Bearer token"));
        var token = header["Bearer ".Length..].Trim();
        var check = authenticator.Authenticate(token, Resource);
        if (!check.IsValid)
        {
            // The reason may quote the unverified token (its iss, kid): printable and short in the log.
            Logger.LogInformation("MCP call from {Client} refused: {Reason}", Context.Connection.RemoteIpAddress, Quoted(check.Reason!));
            return Task.FromResult(AuthenticateResult.Fail(check.Reason!));
        }
        var agent = check.Agent!;
        var identity = new ClaimsIdentity(
        [
            new Claim(ClaimTypes.NameIdentifier, agent.Id),
            new Claim(ClaimTypes.Name, agent.Name),
            new Claim(TokenKeyClaim, Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(token)))[..32]),
            new Claim(ExpiresClaim, check.ExpiresAt.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture)),
            new Claim(AddressClaim, $"{Context.Connection.RemoteIpAddress}:{Context.Connection.RemotePort}"),
        ], Scheme);
        if (McpFrontDoor.EndpointTarget(Context, sidecar.Value.Mcp) is { } endpointTarget)
            identity.AddClaim(new Claim(EndpointTargetClaim, endpointTarget));
        if (check.Person is { } person)
        {
            identity.AddClaim(new Claim(PersonClaim, person));
            identity.AddClaim(new Claim(PersonReadOnlyClaim, check.PersonReadOnly ? "true" : "false"));
        }
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), Scheme)));
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        var failure = (await HandleAuthenticateOnceSafeAsync()).Failure?.Message;
        var resource = new Uri(Resource);
        var metadata = new Uri(resource, McpFrontDoor.MetadataPath + resource.AbsolutePath.TrimEnd('/'));
        var challenge = $"Bearer resource_metadata=\"{metadata}\"";
        if (failure is not null)
            challenge += $", error=\"invalid_token\", error_description=\"{Quoted(failure)}\"";
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.WWWAuthenticate = challenge;
        await Response.WriteAsJsonAsync(new
        {
            type = "https://airlock.dev/problems/unauthorized",
            title = failure is null ? "No token" : "Token refused",
            status = 401,
            detail = failure ?? $"send an agent token for resource {Resource} as 'Authorization: Bearer <token>' (the token endpoint's 'resource' parameter)",
        }, options: null, contentType: "application/problem+json");
    }

    /// <summary>A header's quoted-string: printable ASCII without quotes or backslashes.</summary>
    private static string Quoted(string text) =>
        new(text.Take(300).Select(c => c is >= ' ' and <= '~' and not '"' and not '\\' ? c : '?').ToArray());

    public static McpCaller Caller(ClaimsPrincipal user, string? clientName, string? clientVersion)
    {
        string Claim(string type) => user.FindFirst(type)?.Value ?? throw new InvalidOperationException($"the agent's principal has no {type}");
        return new McpCaller(Claim(ClaimTypes.NameIdentifier), Claim(TokenKeyClaim),
            DateTimeOffset.FromUnixTimeSeconds(long.Parse(Claim(ExpiresClaim), CultureInfo.InvariantCulture)), Claim(AddressClaim),
            Trim(clientName), Trim(clientVersion))
        {
            Person = user.FindFirst(PersonClaim)?.Value,
            PersonReadOnly = user.FindFirst(PersonReadOnlyClaim)?.Value == "true",
            EndpointTarget = user.FindFirst(EndpointTargetClaim)?.Value,
        };
    }

    /// <summary>The client's self-description is the agent's to choose: short, printable, for reading.</summary>
    private static string? Trim(string? text) =>
        text is null ? null : new string(text.Take(100).Select(c => char.IsControl(c) ? '?' : c).ToArray());
}
