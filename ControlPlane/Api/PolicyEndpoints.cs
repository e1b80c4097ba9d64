using System.Text.Json;
using Airlock.ControlPlane.Identity;
using Airlock.ControlPlane.Policies;

namespace Airlock.ControlPlane.Api;

/// <summary>
/// <c>/api/v1/policy</c> (the whole document) and the per-entity endpoints for targets, roles,
/// rules and agents. Every write goes through <see cref="PolicyStore.ApplyAsync"/> (a document) or
/// <see cref="PolicyStore.EditAsync"/> (one object, in one transaction): one validator, one audit
/// trail, one notification path — the console's forms call the same two.
/// </summary>
internal static class PolicyEndpoints
{
    public static RouteGroupBuilder MapPolicyEndpoints(this RouteGroupBuilder api)
    {
        api.MapGet("/policy", async (HttpRequest request, PolicyStore store, CancellationToken ct) =>
        {
            var yaml = WantsYaml(request);
            var version = await store.DocumentVersionAsync(ct); // before the export, as above
            var doc = await store.ExportAsync(ct);
            request.HttpContext.Response.Headers.ETag = EntityTag(version);
            return Results.Text(PolicyFormat.Write(doc, yaml), yaml ? PolicyFormat.YamlMediaType : PolicyFormat.JsonMediaType);
        }).RequireAuthorization(AccessPolicies.Viewer);

        api.MapPut("/policy", async (HttpRequest request, bool? dryRun, PolicyStore store, CancellationToken ct) =>
        {
            var (doc, problem) = await RequestBody.ReadAsync<PolicyDocument>(request, ct);
            if (problem is not null)
                return problem;
            if (!TryReadIfMatch(request, "GET /api/v1/policy", out var basedOn, out var badIfMatch))
                return badIfMatch!;
            var (result, conflict, version) = await store.ApplyAsync(doc!, request.HttpContext.User.Actor(), dryRun ?? false, basedOn, ct);
            if (conflict is not null)
                return ApiProblems.Conflict("the policy", basedOn, conflict, "Export it again and redo your change.");
            if (!result!.Succeeded)
                return ApiProblems.Validation(result.Errors);
            if (!(dryRun ?? false))
                request.HttpContext.Response.Headers.ETag = EntityTag(version);
            return Results.Ok(new { dryRun = dryRun ?? false, changed = result.Changes.Count, changes = result.Changes });
        }).RequireAuthorization(AccessPolicies.Admin);

        MapEntity(api, PolicyObjectKind.Target, d => d.Targets!, s => s.Name);
        MapEntity(api, PolicyObjectKind.Role, d => d.Roles!, s => s.Name);
        MapEntity(api, PolicyObjectKind.Agent, d => d.Agents!, s => s.Name);
        MapEntity(api, PolicyObjectKind.TrustedIssuer, d => d.TrustedIssuers!, s => s.Name);
        MapRules(api);
        api.MapPost("/targets/{name}/test", async (string name, Sidecars.TargetTests tests, HttpContext http, CancellationToken ct) =>
            await tests.TestAsync(name, http.User.Actor(), ct) is { } outcome
                ? Results.Ok(outcome)
                : ApiProblems.NotFound($"target '{name}'"))
            .RequireAuthorization(AccessPolicies.Admin);
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

    /// <summary>
    /// GET list, GET one (with its version as the ETag), POST create (409 when it exists), PUT
    /// replace, PATCH (JSON merge patch), DELETE — for one list of the document. A write that sends
    /// <c>If-Match</c> applies only to that version of the object; otherwise it gets 409.
    /// </summary>
    private static void MapEntity<TSpec>(RouteGroupBuilder api, PolicyObjectKind kind, Func<PolicyDocument, List<TSpec>> list, Func<TSpec, string?> nameOf)
        where TSpec : class
    {
        var collection = kind.RoutePath();
        var singular = kind.Noun();
        api.MapGet($"/{collection}", async (PolicyStore store, CancellationToken ct) => Results.Ok(list(await store.ExportAsync(ct))))
            .RequireAuthorization(AccessPolicies.Viewer);

        api.MapGet($"/{collection}/{{name}}", async (string name, HttpResponse response, PolicyStore store, CancellationToken ct) =>
        {
            // The version first: a change between the two reads then makes a write based on it a harmless 409.
            var version = await store.VersionOfAsync(kind, name, ct);
            if (list(await store.ExportAsync(ct)).FirstOrDefault(s => nameOf(s) == name) is not { } spec)
                return ApiProblems.NotFound($"{singular} '{name}'");
            response.Headers.ETag = EntityTag(version);
            return Results.Ok(spec);
        }).RequireAuthorization(AccessPolicies.Viewer);

        api.MapPost($"/{collection}", async (HttpRequest request, PolicyStore store, CancellationToken ct) =>
        {
            var (spec, problem) = await RequestBody.ReadAsync<TSpec>(request, ct);
            if (problem is not null)
                return problem;
            if (nameOf(spec!) is not { Length: > 0 } name)
                return ApiProblems.Validation([new PolicyError("name", $"is required: the {singular}'s name")], "The change is invalid; nothing was applied");
            return await EditAsync(request, store, new PolicyEdit(kind, name, null, doc =>
            {
                if (list(doc).Any(s => nameOf(s) == name))
                    return new EditRefusal(EditRefusalKind.AlreadyExists, $"{singular} '{name}' already exists; use PUT or PATCH to change it");
                list(doc).Add(spec!);
                return null;
            }), created: $"/api/v1/{collection}/{name}", ct);
        }).RequireAuthorization(AccessPolicies.Admin);

        api.MapPut($"/{collection}/{{name}}", async (string name, HttpRequest request, PolicyStore store, CancellationToken ct) =>
        {
            var (spec, problem) = await RequestBody.ReadAsync<TSpec>(request, ct);
            if (problem is not null)
                return problem;
            if (nameOf(spec!) is { } bodyName && bodyName != name)
                return Results.Problem(statusCode: 400, title: "Name mismatch", detail: $"the body names '{bodyName}' but the URL names '{name}'; renaming is delete + create");
            typeof(TSpec).GetProperty("Name")!.SetValue(spec, name);
            return await EditAsync(request, store, new PolicyEdit(kind, name, null, doc =>
            {
                var items = list(doc);
                var index = items.FindIndex(s => nameOf(s) == name);
                if (index < 0)
                    items.Add(spec!);
                else
                    items[index] = spec!;
                return null;
            }), created: null, ct);
        }).RequireAuthorization(AccessPolicies.Admin);

        api.MapPatch($"/{collection}/{{name}}", async (string name, HttpRequest request, PolicyStore store, CancellationToken ct) =>
        {
            var (patch, problem) = await RequestBody.ReadMergePatchAsync(request, ct);
            if (problem is not null)
                return problem;
            if (patch!["name"] is { } patchedName && patchedName.GetValueKind() == JsonValueKind.String && patchedName.GetValue<string>() != name)
                return Results.Problem(statusCode: 400, title: "Name mismatch", detail: $"the patch renames '{name}'; renaming is delete + create");
            return await EditAsync(request, store, new PolicyEdit(kind, name, null, doc =>
            {
                var items = list(doc);
                var index = items.FindIndex(s => nameOf(s) == name);
                if (index < 0)
                    return new EditRefusal(EditRefusalKind.NotFound, $"{singular} '{name}' does not exist");
                var merged = MergePatch.Apply(JsonSerializer.SerializeToNode(items[index], PolicyFormat.Json), patch);
                var (spec, error) = PolicyFormat.Parse<TSpec>(merged?.ToJsonString() ?? "null", yaml: false);
                if (error is not null)
                    return new EditRefusal(EditRefusalKind.Malformed, $"{error.Path}: {error.Message}");
                typeof(TSpec).GetProperty("Name")!.SetValue(spec, name);
                items[index] = spec!;
                return null;
            }), created: null, ct);
        }).RequireAuthorization(AccessPolicies.Admin);

        api.MapDelete($"/{collection}/{{name}}", async (string name, HttpRequest request, PolicyStore store, CancellationToken ct) =>
            await EditAsync(request, store, new PolicyEdit(kind, name, null, doc =>
                list(doc).RemoveAll(s => nameOf(s) == name) == 0 ? new EditRefusal(EditRefusalKind.NotFound, $"{singular} '{name}' does not exist") : null),
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
            return await EditAsync(request, store, new PolicyEdit(PolicyObjectKind.Role, role, null, doc =>
            {
                if (doc.Roles!.FirstOrDefault(r => r.Name == role) is not { } spec)
                    return new EditRefusal(EditRefusalKind.NotFound, $"role '{role}' does not exist");
                var index = spec.Rules!.FindIndex(r => r.Name == name);
                if (index < 0)
                    spec.Rules.Add(rule);
                else
                    spec.Rules[index] = rule;
                return null;
            }), created: null, ct);
        }).RequireAuthorization(AccessPolicies.Admin);

        api.MapDelete("/roles/{role}/rules/{name}", async (string role, string name, HttpRequest request, PolicyStore store, CancellationToken ct) =>
            await EditAsync(request, store, new PolicyEdit(PolicyObjectKind.Role, role, null, doc =>
                doc.Roles!.FirstOrDefault(r => r.Name == role) is not { } spec ? new EditRefusal(EditRefusalKind.NotFound, $"role '{role}' does not exist")
                : spec.Rules!.RemoveAll(r => r.Name == name) == 0 ? new EditRefusal(EditRefusalKind.NotFound, $"rule '{name}' of role '{role}' does not exist")
                : null),
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

    /// <summary>
    /// Runs one object's edit through <see cref="PolicyStore.EditAsync"/>, based on the version the
    /// request's <c>If-Match</c> names (when it names one), and answers with the object's new ETag.
    /// </summary>
    private static async Task<IResult> EditAsync(HttpRequest request, PolicyStore store, PolicyEdit edit, string? created, CancellationToken ct)
    {
        if (!TryReadIfMatch(request, $"a GET of the {edit.Kind.Noun()}", out var basedOn, out var badIfMatch))
            return badIfMatch!;
        edit = edit with { BasedOn = basedOn };
        var result = await store.EditAsync(edit, request.HttpContext.User.Actor(), ct);
        switch (result.Status)
        {
            case EditStatus.Refused:
                return result.Refusal!.Kind switch
                {
                    EditRefusalKind.NotFound => Results.Problem(statusCode: 404, title: "Not found", detail: result.Refusal.Detail),
                    EditRefusalKind.AlreadyExists => Results.Problem(statusCode: 409, title: "Already exists", detail: result.Refusal.Detail),
                    _ => ApiProblems.Validation([new PolicyError("$", result.Refusal.Detail)], "The patch cannot be applied; nothing was applied"),
                };
            case EditStatus.Conflict:
                return ApiProblems.Conflict($"{edit.Kind.Noun()} '{edit.Name}'", edit.BasedOn, result.Version, "Read it again and redo your change.");
            case EditStatus.Invalid:
                return ApiProblems.Validation(result.Errors, HttpMethods.IsPut(request.Method)
                    ? "The change is invalid; nothing was applied (PUT replaces the whole object: to change some fields, PATCH them)"
                    : "The change is invalid; nothing was applied");
        }
        request.HttpContext.Response.Headers.ETag = EntityTag(result.Version);
        var body = new { changed = result.Changes.Count, changes = result.Changes, version = result.Version.Version };
        return created is null ? Results.Ok(body) : Results.Created(created, body);
    }

    /// <summary>The version <c>If-Match</c> names (null without one), or a 400 naming where the ETag comes from.</summary>
    private static bool TryReadIfMatch(HttpRequest request, string etagSource, out long? basedOn, out IResult? problem)
    {
        (basedOn, problem) = (null, null);
        if (request.Headers.IfMatch.Count == 0)
            return true;
        basedOn = ParseEntityTag(request.Headers.IfMatch.ToString());
        if (basedOn is null)
            problem = Results.Problem(statusCode: 400, title: "Bad If-Match", detail: $"If-Match must be the ETag {etagSource} returned, such as \"42\"");
        return problem is null;
    }

    private static string EntityTag(PolicyObjectVersion version) =>
        $"\"{version.Version.ToString(System.Globalization.CultureInfo.InvariantCulture)}\"";

    /// <summary><c>"42"</c> (or <c>W/"42"</c>, or a bare 42) → 42; anything else is not one of ours.</summary>
    internal static long? ParseEntityTag(string value)
    {
        var tag = value.Trim();
        if (tag.StartsWith("W/", StringComparison.Ordinal))
            tag = tag[2..];
        if (tag.Length >= 2 && tag[0] == '"' && tag[^1] == '"')
            tag = tag[1..^1];
        return long.TryParse(tag, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var version) ? version : null;
    }
}
