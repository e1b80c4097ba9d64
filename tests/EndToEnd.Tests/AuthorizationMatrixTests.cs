using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Airlock.Testing;

namespace Airlock.EndToEnd.Tests;

/// <summary>
/// Every route the control plane serves, every console role and anonymous: the routing table is
/// read from the running control plane (<c>GET /api/v1/endpoints</c>), each route must have a row
/// below saying who may call it, and each row is then called for real as anonymous, an Auditor, an
/// Approver and an Admin — pages with the console's cookie, the API with API keys.
/// </summary>
public sealed class AuthorizationMatrixTests(ControlPlaneFixture fixture) : IClassFixture<ControlPlaneFixture>
{
    /// <summary>Who may call a route.</summary>
    /// <remarks><see cref="ViewerPerson"/> and <see cref="ApproverPerson"/>: a signed-in person of that role; API keys are refused (a vote or a grant request is a person's).</remarks>
    public enum Access { Public, Authenticated, Viewer, Approver, Admin, Sidecar, ViewerPerson, ApproverPerson }

    private enum Caller { Anonymous, Auditor, Approver, Admin }

    /// <summary>The expected table: "METHODS route" as the routing table names it → who may call it.</summary>
    private static readonly Dictionary<string, Access> Expected = new(StringComparer.Ordinal)
    {
        // Console pages
        ["GET,POST /"] = Access.Viewer,
        ["GET,POST /account/denied"] = Access.Authenticated,
        ["GET,POST /account/login"] = Access.Public,
        ["POST /account/login"] = Access.Public,
        ["POST /account/logout"] = Access.Public, // signs out whoever calls it; nobody signed in is a no-op
        ["GET /account/sso"] = Access.Public, // off to the identity provider (404 when single sign-on is not configured)
        ["GET,POST /account/password"] = Access.Viewer,
        ["GET,POST /connect/consent"] = Access.Viewer,
        ["GET,POST /agents"] = Access.Viewer,
        ["GET,POST /agents/{Selected}"] = Access.Viewer,
        ["GET,POST /approvals"] = Access.Viewer,
        ["GET,POST /approvals/{Id:long}"] = Access.Viewer,
        ["GET,POST /audit"] = Access.Viewer,
        ["GET,POST /roles"] = Access.Viewer,
        ["GET,POST /sessions"] = Access.Viewer,
        ["GET,POST /sessions/{Id:guid}"] = Access.Viewer,
        ["GET,POST /settings"] = Access.Viewer,
        ["GET,POST /sidecars"] = Access.Viewer,
        ["GET,POST /simulator"] = Access.Viewer,
        ["GET,POST /targets"] = Access.Viewer,
        ["GET,POST /users"] = Access.Admin,
        ["GET,POST /webhooks"] = Access.Admin,

        // Blazor's circuit and the framework's own files: open by design (a page's authorization applies inside the circuit)
        ["* /_blazor"] = Access.Public,
        ["* /_blazor/disconnect/"] = Access.Public,
        ["* /_blazor/initializers/"] = Access.Public,
        ["* /_blazor/negotiate"] = Access.Public,
        ["GET /_framework/opaque-redirect"] = Access.Public,

        // Identity for agents, health, metrics
        ["GET /.well-known/jwks"] = Access.Public,
        ["GET /.well-known/openid-configuration"] = Access.Public,
        ["GET /.well-known/oauth-authorization-server"] = Access.Public,
        ["GET,POST /connect/authorize"] = Access.Public, // OpenIddict checks the request; no one signed in goes to the sign-in page
        ["POST /connect/register"] = Access.Public,
        ["GET /api/v1/mcp-clients"] = Access.Viewer,
        ["POST /api/v1/mcp-clients"] = Access.Admin,
        ["DELETE /api/v1/mcp-clients/{clientId}"] = Access.Admin,
        ["POST /connect/token"] = Access.Public,
        ["POST /api/v1/enroll"] = Access.Public, // the one-time token is the credential
        ["* /healthz"] = Access.Public,
        ["* /metrics"] = Access.Public,

        // Sidecars
        ["POST /airlock.v1.PolicySync/Acknowledge"] = Access.Sidecar,
        ["POST /airlock.v1.PolicySync/Subscribe"] = Access.Sidecar,
        ["* /airlock.v1.PolicySync/{unimplementedMethod:grpcunimplemented}"] = Access.Public,
        ["* /{unimplementedService}/{unimplementedMethod:grpcunimplemented}"] = Access.Public,
        ["* /hubs/sidecar"] = Access.Sidecar,
        ["* /hubs/sidecar/negotiate"] = Access.Sidecar,

        // REST API
        ["GET /api/v1/policy"] = Access.Viewer,
        ["PUT /api/v1/policy"] = Access.Admin,
        ["GET /api/v1/endpoints"] = Access.Admin,
        ["GET /api/v1/audit"] = Access.Viewer,
        ["POST /api/v1/simulate"] = Access.Viewer,
        ["GET /api/v1/agents/{name}/credentials"] = Access.Viewer,
        ["DELETE /api/v1/agents/{name}/credentials"] = Access.Admin,
        ["PUT /api/v1/agents/{name}/keys"] = Access.Admin,
        ["POST /api/v1/agents/{name}/secret"] = Access.Admin,
        ["GET /api/v1/roles/{role}/rules"] = Access.Viewer,
        ["PUT /api/v1/roles/{role}/rules/{name}"] = Access.Admin,
        ["DELETE /api/v1/roles/{role}/rules/{name}"] = Access.Admin,
        ["GET /api/v1/api-keys"] = Access.Admin,
        ["POST /api/v1/api-keys"] = Access.Admin,
        ["DELETE /api/v1/api-keys/{id:guid}"] = Access.Admin,
        ["GET /api/v1/approvals"] = Access.Viewer,
        ["GET /api/v1/approvals/{id:long}"] = Access.Viewer,
        ["POST /api/v1/approvals/{id:long}/approve"] = Access.ApproverPerson,
        ["POST /api/v1/approvals/{id:long}/deny"] = Access.ApproverPerson,
        ["GET /api/v1/grants"] = Access.Viewer,
        ["POST /api/v1/grants"] = Access.ViewerPerson, // the agent's owner asks (or an Admin); the service checks who
        ["POST /api/v1/grants/{id:long}/revoke"] = Access.Admin,
        ["GET /api/v1/sessions"] = Access.Viewer,
        ["GET /api/v1/refused-connections"] = Access.Viewer,
        ["POST /api/v1/targets/{name}/test"] = Access.Admin,
        ["GET /api/v1/sessions/{id:guid}"] = Access.Viewer,
        ["GET /api/v1/sessions/{id:guid}/events"] = Access.Viewer,
        ["GET /api/v1/sessions/{id:guid}/export"] = Access.Viewer,
        ["POST /api/v1/sessions/{id:guid}/verify"] = Access.Viewer,
        ["POST /api/v1/sessions/{id:guid}/terminate"] = Access.Admin,
        ["GET /api/v1/sidecars"] = Access.Viewer,
        ["POST /api/v1/sidecars"] = Access.Admin,
        ["GET /api/v1/sidecars/{name}"] = Access.Viewer,
        ["DELETE /api/v1/sidecars/{name}"] = Access.Admin,
        ["GET /api/v1/sidecars/{name}/enrollment-tokens"] = Access.Admin,
        ["POST /api/v1/sidecars/{name}/enrollment-tokens"] = Access.Admin,
        ["DELETE /api/v1/sidecars/{name}/enrollment-tokens/{id:guid}"] = Access.Admin,
        ["POST /api/v1/sidecars/{name}/revoke"] = Access.Admin,
        ["GET /api/v1/signing-keys"] = Access.Viewer,
        ["POST /api/v1/signing-keys/rotate"] = Access.Admin,
        ["GET /api/v1/trusted-issuer-status"] = Access.Viewer,
        ["GET /api/v1/users"] = Access.Admin,
        ["POST /api/v1/users"] = Access.Admin,
        ["PUT /api/v1/users/{userName}"] = Access.Admin,
        ["DELETE /api/v1/users/{userName}"] = Access.Admin,
        ["GET /api/v1/webhooks"] = Access.Admin,
        ["POST /api/v1/webhooks"] = Access.Admin,
        ["GET /api/v1/webhooks/deliveries"] = Access.Admin,
        ["DELETE /api/v1/webhooks/{name}"] = Access.Admin,
    };

    static AuthorizationMatrixTests()
    {
        foreach (var collection in new[] { "targets", "roles", "agents", "trusted-issuers" })
        {
            Expected[$"GET /api/v1/{collection}"] = Access.Viewer;
            Expected[$"POST /api/v1/{collection}"] = Access.Admin;
            Expected[$"GET /api/v1/{collection}/{{name}}"] = Access.Viewer;
            foreach (var method in new[] { "PUT", "PATCH", "DELETE" })
                Expected[$"{method} /api/v1/{collection}/{{name}}"] = Access.Admin;
        }
    }

    /// <summary>The access policy names the control plane reports for each expected access.</summary>
    private static string Reported(Access access) => access switch
    {
        Access.Public => "anonymous|open",
        Access.Authenticated => "authenticated",
        Access.Viewer or Access.ViewerPerson => "airlock:viewer",
        Access.Approver or Access.ApproverPerson => "airlock:approver",
        Access.Admin => "airlock:admin",
        _ => "airlock:sidecar",
    };

    private static bool IsStaticFile(EndpointRow e) =>
        e.Methods == "GET,HEAD" && (e.Route == "/{**path:file}" || e.Route.StartsWith("/_content/", StringComparison.Ordinal)
            || e.Route.StartsWith("/_framework/", StringComparison.Ordinal) || Path.HasExtension(e.Route));

    private sealed record EndpointRow(string Methods, string Route, string Access)
    {
        public string Key => $"{Methods} {Route}";
    }

    private async Task<List<EndpointRow>> RoutesAsync() =>
        (await fixture.Cp.Api.GetFromJsonAsync<List<EndpointRow>>("/api/v1/endpoints", new JsonSerializerOptions(JsonSerializerDefaults.Web)))!;

    [Fact]
    public async Task Every_route_has_a_row_and_its_declared_access_is_the_expected_one()
    {
        var routes = await RoutesAsync();
        Assert.True(routes.Count > 80, $"only {routes.Count} routes listed");
        var problems = new List<string>();
        foreach (var route in routes)
        {
            if (IsStaticFile(route))
            {
                if (route.Access != "open")
                    problems.Add($"static file {route.Key} is {route.Access}");
                continue;
            }
            if (!Expected.TryGetValue(route.Key, out var access))
                problems.Add($"{route.Key} ({route.Access}) has no row in the table: say who may call it");
            else if (!Reported(access).Split('|').Contains(route.Access))
                problems.Add($"{route.Key} is {route.Access}, expected {access}");
        }
        foreach (var key in Expected.Keys.Where(k => !routes.Any(r => r.Key == k)))
            problems.Add($"{key} is in the table but not served");
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    [Fact]
    public async Task Every_route_refuses_every_caller_its_row_does_not_admit_and_admits_the_rest()
    {
        var cp = fixture.Cp;
        var callers = new Dictionary<Caller, (HttpClient Api, HttpClient Cookie)>
        {
            [Caller.Anonymous] = (Plain(cp.Url, null), Plain(cp.Url, null)),
        };
        foreach (var (caller, role) in new[] { (Caller.Auditor, "Auditor"), (Caller.Approver, "Approver"), (Caller.Admin, "Admin") })
        {
            var user = $"matrix-{role.ToLowerInvariant()}";
            await cp.EnsureSuccessAsync(await cp.Api.PostAsJsonAsync("/api/v1/users", new { userName = user, password = "matrix-long-password", role }));
            var key = await cp.Api.PostAsJsonAsync("/api/v1/api-keys", new { name = user, role });
            await cp.EnsureSuccessAsync(key);
            var secret = JsonDocument.Parse(await key.Content.ReadAsStringAsync()).RootElement.GetProperty("key").GetString()!;
            callers[caller] = (Plain(cp.Url, secret), (await ConsoleSignIn.SignInAsync(cp.Url, user, "matrix-long-password")).Client);
        }

        var failures = new List<string>();
        var checkedCalls = 0;
        foreach (var route in (await RoutesAsync()).Where(r => !IsStaticFile(r) && Expected.ContainsKey(r.Key)))
        {
            var access = Expected[route.Key];
            // A public route's own answer to a placeholder call may well be 401 (enroll with no token):
            // that it asks no authorization is what the other test checks.
            if (access == Access.Public)
                continue;
            var page = !route.Route.StartsWith("/api/", StringComparison.Ordinal) && route.Methods.StartsWith("GET,POST", StringComparison.Ordinal);
            var person = access is Access.ViewerPerson or Access.ApproverPerson;
            foreach (var caller in Enum.GetValues<Caller>())
            {
                foreach (var viaCookie in person ? [false, true] : new[] { page })
                {
                    var client = viaCookie ? callers[caller].Cookie : callers[caller].Api;
                    using var request = Request(route, page);
                    using var response = await client.SendAsync(request);
                    checkedCalls++;
                    var admitted = Admits(access, caller) && (!person || viaCookie);
                    var (refused, what) = Refused(response, page);
                    if (admitted == refused)
                        failures.Add($"{request.Method} {request.RequestUri} as {caller}{(viaCookie ? " (cookie)" : "")}: {(admitted ? "refused" : "admitted")} ({what}); {access} {(admitted ? "admits" : "refuses")} it");
                }
            }
        }
        Assert.True(checkedCalls > 300, $"only {checkedCalls} calls checked");
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    private static bool Admits(Access access, Caller caller) => access switch
    {
        Access.Public => true,
        Access.Authenticated or Access.Viewer or Access.ViewerPerson => caller != Caller.Anonymous,
        Access.Approver or Access.ApproverPerson => caller is Caller.Approver or Caller.Admin,
        Access.Admin => caller == Caller.Admin,
        _ => false, // sidecar routes: no person and no API key is a sidecar
    };

    /// <summary>Whether the answer is a refusal: 401/403 for the API; for pages, a redirect to sign in or to "denied".</summary>
    private static (bool Refused, string What) Refused(HttpResponseMessage response, bool page)
    {
        var status = (int)response.StatusCode;
        if (status is 401 or 403)
            return (true, status.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (page && response.StatusCode == HttpStatusCode.Redirect)
        {
            var location = response.Headers.Location?.OriginalString ?? "";
            return (location.Contains("/account/login", StringComparison.Ordinal) || location.Contains("/account/denied", StringComparison.Ordinal), $"302 {location}");
        }
        return (false, status.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    private static HttpClient Plain(string baseUrl, string? bearer)
    {
        var client = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = new Uri(baseUrl), Timeout = TimeSpan.FromSeconds(30) };
        if (bearer is not null)
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        return client;
    }

    /// <summary>A call of the route with placeholder values: what matters is who gets past authorization, not what the call does.</summary>
    private static HttpRequestMessage Request(EndpointRow route, bool page)
    {
        var path = System.Text.RegularExpressions.Regex.Replace(route.Route, @"\{([^}:]+)(:([^}]+))?\}", m => m.Groups[3].Value switch
        {
            "guid" => Guid.Empty.ToString(),
            "long" => "1",
            _ => "matrix-none",
        });
        var method = route.Methods.Split(',')[0] switch
        {
            "*" => route.Route.EndsWith("/negotiate", StringComparison.Ordinal) ? HttpMethod.Post : HttpMethod.Get,
            var m => new HttpMethod(m),
        };
        var request = new HttpRequestMessage(method, path);
        if (page)
            request.Headers.Accept.ParseAdd("text/html"); // as a browser asks for a page
        if (method != HttpMethod.Get && method != HttpMethod.Delete)
            request.Content = new StringContent("{}", Encoding.UTF8, "application/json");
        return request;
    }
}
