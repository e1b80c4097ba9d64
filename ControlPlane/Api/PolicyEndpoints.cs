using Airlock.ControlPlane.Identity;
using Airlock.ControlPlane.Policies;

namespace Airlock.ControlPlane.Api;

/// <summary>
/// <c>/api/v1/policy</c> (the whole document) and the per-entity endpoints for targets, roles,
/// rules and agents. Every write goes through <see cref="PolicyStore.ApplyAsync"/>: one validator,
/// one audit trail, one notification path.
/// </summary>
internal static class PolicyEndpoints
{
    public static RouteGroupBuilder MapPolicyEndpoints(this RouteGroupBuilder api)
    {
        api.MapGet("/policy", async (HttpRequest request, PolicyStore store, CancellationToken ct) =>
        {
            var yaml = WantsYaml(request);
            var doc = await store.ExportAsync(ct);
            return Results.Text(PolicyFormat.Write(doc, yaml), yaml ? PolicyFormat.YamlMediaType : PolicyFormat.JsonMediaType);
        }).RequireAuthorization(AccessPolicies.Viewer);

        api.MapPut("/policy", async (HttpRequest request, bool? dryRun, PolicyStore store, CancellationToken ct) =>
        {
            var (doc, problem) = await RequestBody.ReadAsync<PolicyDocument>(request, ct);
            if (problem is not null)
                return problem;
            var result = await store.ApplyAsync(doc!, request.HttpContext.User.Actor(), dryRun ?? false, ct);
            return result.Succeeded
                ? Results.Ok(new { dryRun = dryRun ?? false, changed = result.Changes.Count, changes = result.Changes })
                : ApiProblems.Validation(result.Errors);
        }).RequireAuthorization(AccessPolicies.Admin);

        MapEntity(api, "targets", "target", d => d.Targets!, s => s.Name);
        MapEntity(api, "roles", "role", d => d.Roles!, s => s.Name);
        MapEntity(api, "agents", "agent", d => d.Agents!, s => s.Name);
        MapEntity(api, "trusted-issuers", "trusted issuer", d => d.TrustedIssuers!, s => s.Name);
        MapRules(api);
        MapAgentCredentials(api);
        api.MapPost("/simulate", async (SimulateRequest body, Simulator simulator, CancellationToken ct) =>
        {
            try
            {
                return Results.Ok(await simulator.SimulateAsync(body, ct));
            }
            catch (SimulationException e)
            {
                return Results.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Cannot simulate", detail: e.Message,
                    type: "https://airlock.dev/problems/simulation");
            }
        }).RequireAuthorization(AccessPolicies.Viewer);
        return api;
    }

    private static bool WantsYaml(HttpRequest request) =>
        string.Equals(request.Query["format"], "yaml", StringComparison.OrdinalIgnoreCase)
        || PolicyFormat.IsYaml(request.Headers.Accept.ToString());

    /// <summary>GET list, GET one, POST create (409 when it exists), PUT upsert, DELETE — for one list of the document.</summary>
    private static void MapEntity<TSpec>(RouteGroupBuilder api, string collection, string singular, Func<PolicyDocument, List<TSpec>> list, Func<TSpec, string?> nameOf)
        where TSpec : class
    {
        api.MapGet($"/{collection}", async (PolicyStore store, CancellationToken ct) => Results.Ok(list(await store.ExportAsync(ct))))
            .RequireAuthorization(AccessPolicies.Viewer);

        api.MapGet($"/{collection}/{{name}}", async (string name, PolicyStore store, CancellationToken ct) =>
            list(await store.ExportAsync(ct)).FirstOrDefault(s => nameOf(s) == name) is { } spec
                ? Results.Ok(spec)
                : ApiProblems.NotFound($"{singular} '{name}'"))
            .RequireAuthorization(AccessPolicies.Viewer);

        api.MapPost($"/{collection}", async (HttpRequest request, PolicyStore store, CancellationToken ct) =>
        {
            var (spec, problem) = await RequestBody.ReadAsync<TSpec>(request, ct);
            if (problem is not null)
                return problem;
            var name = nameOf(spec!);
            return await EditAsync(request, store, collection, list, doc =>
            {
                if (name is not null && list(doc).Any(s => nameOf(s) == name))
                    return Results.Problem(statusCode: 409, title: "Already exists", detail: $"{singular} '{name}' already exists; use PUT to change it");
                list(doc).Add(spec!);
                return null;
            }, created: $"/api/v1/{collection}/{name}", ct);
        }).RequireAuthorization(AccessPolicies.Admin);

        api.MapPut($"/{collection}/{{name}}", async (string name, HttpRequest request, PolicyStore store, CancellationToken ct) =>
        {
            var (spec, problem) = await RequestBody.ReadAsync<TSpec>(request, ct);
            if (problem is not null)
                return problem;
            if (nameOf(spec!) is { } bodyName && bodyName != name)
                return Results.Problem(statusCode: 400, title: "Name mismatch", detail: $"the body names '{bodyName}' but the URL names '{name}'; renaming is delete + create");
            typeof(TSpec).GetProperty("Name")!.SetValue(spec, name);
            return await EditAsync(request, store, collection, list, doc =>
            {
                var items = list(doc);
                var index = items.FindIndex(s => nameOf(s) == name);
                if (index < 0)
                    items.Add(spec!);
                else
                    items[index] = spec!;
                return null;
            }, created: null, ct);
        }).RequireAuthorization(AccessPolicies.Admin);

        api.MapDelete($"/{collection}/{{name}}", async (string name, HttpRequest request, PolicyStore store, CancellationToken ct) =>
            await EditAsync(request, store, collection, list, doc =>
                list(doc).RemoveAll(s => nameOf(s) == name) == 0 ? ApiProblems.NotFound($"{singular} '{name}'") : null,
                created: null, ct))
            .RequireAuthorization(AccessPolicies.Admin);
    }

    private static void MapRules(RouteGroupBuilder api)
    {
        api.MapGet("/roles/{role}/rules", async (string role, PolicyStore store, CancellationToken ct) =>
            (await store.ExportAsync(ct)).Roles!.FirstOrDefault(r => r.Name == role) is { } spec
                ? Results.Ok(spec.Rules)
                : ApiProblems.NotFound($"role '{role}'"))
            .RequireAuthorization(AccessPolicies.Viewer);

        api.MapPut("/roles/{role}/rules/{name}", async (string role, string name, HttpRequest request, PolicyStore store, CancellationToken ct) =>
        {
            var (rule, problem) = await RequestBody.ReadAsync<RuleSpec>(request, ct);
            if (problem is not null)
                return problem;
            rule!.Name = name;
            return await EditAsync(request, store, "roles", d => d.Roles!, doc =>
            {
                if (doc.Roles!.FirstOrDefault(r => r.Name == role) is not { } spec)
                    return ApiProblems.NotFound($"role '{role}'");
                var index = spec.Rules!.FindIndex(r => r.Name == name);
                if (index < 0)
                    spec.Rules.Add(rule);
                else
                    spec.Rules[index] = rule;
                return null;
            }, created: null, ct);
        }).RequireAuthorization(AccessPolicies.Admin);

        api.MapDelete("/roles/{role}/rules/{name}", async (string role, string name, HttpRequest request, PolicyStore store, CancellationToken ct) =>
            await EditAsync(request, store, "roles", d => d.Roles!, doc =>
                doc.Roles!.FirstOrDefault(r => r.Name == role) is not { } spec ? ApiProblems.NotFound($"role '{role}'")
                : spec.Rules!.RemoveAll(r => r.Name == name) == 0 ? ApiProblems.NotFound($"rule '{name}' of role '{role}'")
                : null,
                created: null, ct))
            .RequireAuthorization(AccessPolicies.Admin);
    }

    /// <summary>An agent's credentials for Airlock's token endpoint: a secret (shown once) and/or public keys.</summary>
    private static void MapAgentCredentials(RouteGroupBuilder api)
    {
        api.MapGet("/agents/{name}/credentials", async (string name, AgentCredentials credentials, CancellationToken ct) =>
            await credentials.GetAsync(name, ct) is { } view ? Results.Ok(view) : ApiProblems.NotFound($"agent '{name}'"))
            .RequireAuthorization(AccessPolicies.Viewer);

        api.MapPost("/agents/{name}/secret", async (string name, AgentCredentials credentials, HttpContext http, CancellationToken ct) =>
            await credentials.RotateSecretAsync(name, http.User.Actor(), ct) is { } secret
                ? Results.Ok(new { clientId = name, clientSecret = secret, tokenEndpoint = (await credentials.GetAsync(name, ct))!.TokenEndpoint })
                : ApiProblems.NotFound($"agent '{name}'"))
            .RequireAuthorization(AccessPolicies.Admin);

        api.MapPut("/agents/{name}/keys", async (string name, HttpRequest request, AgentCredentials credentials, CancellationToken ct) =>
        {
            using var reader = new StreamReader(request.Body);
            var errors = await credentials.SetPublicKeysAsync(name, await reader.ReadToEndAsync(ct), request.HttpContext.User.Actor(), ct);
            return errors switch
            {
                null => ApiProblems.NotFound($"agent '{name}'"),
                { Count: > 0 } => ApiProblems.Validation(errors, "The keys are invalid"),
                _ => Results.Ok(await credentials.GetAsync(name, ct)),
            };
        }).RequireAuthorization(AccessPolicies.Admin);

        api.MapDelete("/agents/{name}/credentials", async (string name, AgentCredentials credentials, HttpContext http, CancellationToken ct) =>
            await credentials.RevokeAsync(name, http.User.Actor(), ct) ? Results.NoContent() : ApiProblems.NotFound($"credentials of agent '{name}'"))
            .RequireAuthorization(AccessPolicies.Admin);
    }

    /// <summary>Exports the document, lets <paramref name="edit"/> change it (or refuse), then applies it whole.</summary>
    private static async Task<IResult> EditAsync<TSpec>(
        HttpRequest request, PolicyStore store, string collection, Func<PolicyDocument, List<TSpec>> list,
        Func<PolicyDocument, IResult?> edit, string? created, CancellationToken ct)
    {
        var doc = await store.ExportAsync(ct);
        if (edit(doc) is { } refused)
            return refused;
        var result = await store.ApplyAsync(doc, request.HttpContext.User.Actor(), dryRun: false, ct);
        if (!result.Succeeded)
            return ApiProblems.Validation(result.Errors, "The change is invalid; nothing was applied");
        var body = new { changed = result.Changes.Count, changes = result.Changes };
        return created is null ? Results.Ok(body) : Results.Created(created, body);
    }
}
