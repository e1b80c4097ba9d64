using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Routing;

namespace Airlock.ControlPlane.Api;

/// <summary>One route the control plane serves and what it takes to call it.</summary>
/// <param name="Access">
/// <c>anonymous</c>; the authorization policies it requires (<c>airlock:admin</c> …);
/// <c>authenticated</c> (signed in, any role); or <c>open</c> when nothing is required — which
/// nothing but the listed public routes may be (the authorization matrix test holds it to that).
/// </param>
public sealed record EndpointInfo(string Methods, string Route, string Access);

/// <summary>
/// <c>GET /api/v1/endpoints</c> (Admins): every route with its authorization, read from the
/// routing table itself, so a new endpoint cannot go unlisted.
/// </summary>
internal static class EndpointIndex
{
    public static IReadOnlyList<EndpointInfo> Of(EndpointDataSource source) =>
        source.Endpoints.OfType<RouteEndpoint>()
            .Select(e => new EndpointInfo(
                string.Join(",", e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? ["*"]),
                "/" + (e.RoutePattern.RawText ?? "").TrimStart('/'),
                Access(e)))
            .Distinct()
            .OrderBy(e => e.Route, StringComparer.Ordinal).ThenBy(e => e.Methods, StringComparer.Ordinal)
            .ToList();

    private static string Access(Endpoint e)
    {
        if (e.Metadata.GetMetadata<IAllowAnonymous>() is not null)
            return "anonymous";
        var data = e.Metadata.GetOrderedMetadata<IAuthorizeData>();
        if (data.Count == 0)
            return "open";
        var policies = data.Select(d => d.Policy ?? (d.Roles is { } roles ? $"roles:{roles}" : "authenticated")).Distinct().Order(StringComparer.Ordinal);
        return string.Join("+", policies);
    }
}
