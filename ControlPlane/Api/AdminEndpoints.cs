using Airlock.ControlPlane.Data;
using Airlock.ControlPlane.Identity;
using Airlock.ControlPlane.Policies;
using Airlock.ControlPlane.Sidecars;
using Airlock.Contracts;
using Microsoft.EntityFrameworkCore;

namespace Airlock.ControlPlane.Api;

public sealed record CreateSidecarRequest(string? Name, string? Description);
/// <param name="Reenroll">Required (true) for a sidecar that is already enrolled: whoever uses the token becomes that sidecar.</param>
public sealed record CreateTokenRequest(int? TtlMinutes, bool? Reenroll = null);
/// <param name="Groups">Approver groups (a rule's <c>approval.group</c> names one); null leaves them alone on update.</param>
public sealed record UserRequest(string? UserName, string? Password, string? Role, bool? Disabled, List<string>? Groups = null);
public sealed record CreateApiKeyRequest(string? Name, string? Role);
public sealed record ApiKeyView(Guid Id, string Name, string Prefix, string Role, string CreatedBy, DateTimeOffset CreatedAt, DateTimeOffset? LastUsedAt, DateTimeOffset? RevokedAt);

/// <summary>Sidecars, enrollment, console users, API keys, signing keys and the audit log.</summary>
internal static class AdminEndpoints
{
    public static RouteGroupBuilder MapAdminEndpoints(this RouteGroupBuilder api)
    {
        // --- sidecars and enrollment -------------------------------------------------------
        api.MapGet("/sidecars", (SidecarService s, CancellationToken ct) => s.ListAsync(ct)).RequireAuthorization(AccessPolicies.Viewer);
        api.MapGet("/sidecars/{name}", (string name, SidecarService s, CancellationToken ct) => s.GetAsync(name, ct)).RequireAuthorization(AccessPolicies.Viewer);
        api.MapPost("/sidecars", async (CreateSidecarRequest body, SidecarService s, HttpContext http, CancellationToken ct) =>
        {
            var view = await s.CreateAsync(body.Name, body.Description, http.User.Actor(), ct);
            return Results.Created($"/api/v1/sidecars/{view.Name}", view);
        }).RequireAuthorization(AccessPolicies.Admin);
        api.MapPost("/sidecars/{name}/revoke", async (string name, SidecarService s, HttpContext http, CancellationToken ct) =>
        {
            await s.RevokeAsync(name, http.User.Actor(), ct);
            return Results.Ok(await s.GetAsync(name, ct));
        }).RequireAuthorization(AccessPolicies.Admin);
        api.MapDelete("/sidecars/{name}", async (string name, SidecarService s, HttpContext http, CancellationToken ct) =>
        {
            await s.DeleteAsync(name, http.User.Actor(), ct);
            return Results.NoContent();
        }).RequireAuthorization(AccessPolicies.Admin);
        api.MapGet("/sidecars/{name}/enrollment-tokens", (string name, SidecarService s, CancellationToken ct) => s.ListEnrollmentTokensAsync(name, ct))
            .RequireAuthorization(AccessPolicies.Admin);
        api.MapPost("/sidecars/{name}/enrollment-tokens", async (string name, CreateTokenRequest? body, SidecarService s, HttpContext http, CancellationToken ct) =>
        {
            var lifetime = body?.TtlMinutes is { } minutes ? TimeSpan.FromMinutes(minutes) : (TimeSpan?)null;
            var (token, view) = await s.CreateEnrollmentTokenAsync(name, lifetime, http.User.Actor(), ct, body?.Reenroll ?? false);
            return Results.Created($"/api/v1/sidecars/{name}/enrollment-tokens/{view.Id}", new { token, view.Id, view.Sidecar, view.ExpiresAt });
        }).RequireAuthorization(AccessPolicies.Admin);
        api.MapDelete("/sidecars/{name}/enrollment-tokens/{id:guid}", async (string name, Guid id, SidecarService s, HttpContext http, CancellationToken ct) =>
        {
            await s.DeleteEnrollmentTokenAsync(name, id, http.User.Actor(), ct);
            return Results.NoContent();
        }).RequireAuthorization(AccessPolicies.Admin);
        // Anonymous by design: the one-time token is the authentication.
        api.MapPost("/enroll", (EnrollRequest body, SidecarService s, CancellationToken ct) => s.EnrollAsync(body, ct)).AllowAnonymous();

        // --- console users -------------------------------------------------------------------
        api.MapGet("/users", (UserAdministration users, CancellationToken ct) => users.ListAsync(ct)).RequireAuthorization(AccessPolicies.Admin);
        api.MapPost("/users", async (UserRequest body, UserAdministration users, HttpContext http, CancellationToken ct) =>
            ToResult(await users.CreateAsync(body.UserName, body.Password, body.Role, body.Disabled ?? false, http.User.Actor(), ct, body.Groups)))
            .RequireAuthorization(AccessPolicies.Admin);
        api.MapPut("/users/{userName}", async (string userName, UserRequest body, UserAdministration users, HttpContext http, CancellationToken ct) =>
            ToResult(await users.UpdateAsync(userName, body.Password, body.Role, body.Disabled, http.User.Actor(), ct, body.Groups)))
            .RequireAuthorization(AccessPolicies.Admin);
        api.MapDelete("/users/{userName}", async (string userName, UserAdministration users, HttpContext http, CancellationToken ct) =>
            ToResult(await users.DeleteAsync(userName, http.User.Actor(), ct)))
            .RequireAuthorization(AccessPolicies.Admin);

        // --- API keys --------------------------------------------------------------------------
        api.MapGet("/api-keys", async (AirlockDbContext db, CancellationToken ct) =>
            (await db.ApiKeys.AsNoTracking().ToListAsync(ct)).OrderBy(k => k.CreatedAt)
                .Select(k => new ApiKeyView(k.Id, k.Name, k.Prefix, k.Role, k.CreatedBy, k.CreatedAt, k.LastUsedAt, k.RevokedAt)))
            .RequireAuthorization(AccessPolicies.Admin);
        api.MapPost("/api-keys", async (CreateApiKeyRequest body, AirlockDbContext db, TimeProvider time, HttpContext http, CancellationToken ct) =>
        {
            if (string.IsNullOrWhiteSpace(body.Name) || body.Name.Length > 100)
                return ApiProblems.Validation([new("name", "is required, at most 100 characters")], "The API key is invalid");
            // No default: a key made without thinking about its role must not be an Admin key.
            if (body.Role is not { } role)
                return ApiProblems.Validation([new("role", $"is required: one of {string.Join(", ", ConsoleRoles.All)}")], "The API key is invalid");
            if (!ConsoleRoles.IsKnown(role))
                return ApiProblems.Validation([new("role", $"must be one of: {string.Join(", ", ConsoleRoles.All)}")], "The API key is invalid");
            var secret = Secrets.New(Secrets.ApiKeyPrefix);
            var now = time.GetUtcNow();
            var key = new ApiKey { Id = Guid.NewGuid(), Name = body.Name, Prefix = secret[..8], KeyHash = Secrets.Hash(secret), Role = role, CreatedBy = http.User.Actor(), CreatedAt = now };
            db.ApiKeys.Add(key);
            db.Record(now, http.User.Actor(), "create", "api-key", key.Name, null, new { key.Name, key.Role, key = AuditLog.Redacted });
            await db.SaveChangesAsync(ct);
            return Results.Created($"/api/v1/api-keys/{key.Id}", new { key = secret, key.Id, key.Name, key.Role });
        }).RequireAuthorization(AccessPolicies.Admin);
        api.MapDelete("/api-keys/{id:guid}", async (Guid id, AirlockDbContext db, TimeProvider time, HttpContext http, CancellationToken ct) =>
        {
            var key = await db.ApiKeys.SingleOrDefaultAsync(k => k.Id == id, ct);
            if (key is null)
                return ApiProblems.NotFound($"API key {id}");
            key.RevokedAt ??= time.GetUtcNow();
            db.Record(time.GetUtcNow(), http.User.Actor(), "revoke", "api-key", key.Name, null, null);
            await db.SaveChangesAsync(ct);
            return Results.NoContent();
        }).RequireAuthorization(AccessPolicies.Admin);

        // --- snapshot signing keys ---------------------------------------------------------------
        api.MapGet("/signing-keys", (KeysAndIssuers keys, CancellationToken ct) => keys.SigningKeysAsync(ct))
            .RequireAuthorization(AccessPolicies.Viewer);
        api.MapPost("/signing-keys/rotate", async (int? overlapMinutes, string? purpose, string? algorithm, KeysAndIssuers keys, HttpContext http, CancellationToken ct) =>
        {
            var (key, errors) = await keys.RotateAsync(purpose, algorithm, overlapMinutes, http.User.Actor(), ct);
            return key is null ? ApiProblems.Validation(errors, "Invalid rotation") : Results.Ok(new { key.Id, key.ActivatesAt });
        }).RequireAuthorization(AccessPolicies.Admin);

        // --- trusted issuers: key status (their definition is part of the policy document) ---------
        api.MapGet("/trusted-issuer-status", (KeysAndIssuers keys, CancellationToken ct) => keys.IssuerStatusAsync(ct))
            .RequireAuthorization(AccessPolicies.Viewer);

        // --- the endpoint index: every route this control plane serves, with who may call it ----------
        api.MapGet("/endpoints", (EndpointDataSource endpoints) => EndpointIndex.Of(endpoints))
            .RequireAuthorization(AccessPolicies.Admin);

        // --- audit log -----------------------------------------------------------------------
        api.MapGet("/audit", async (int? take, int? skip, string? entityType, string? entityName, string? actor, DateTimeOffset? since, DateTimeOffset? until,
            AuditQueries audit, HttpResponse response, CancellationToken ct) =>
        {
            var (entries, total) = await audit.SearchAsync(new AuditFilter(actor, entityType, entityName, since, until), skip ?? 0, take ?? 100, ct);
            response.Headers["X-Total-Count"] = total.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return entries;
        }).RequireAuthorization(AccessPolicies.Viewer);

        return api;
    }

    private static IResult ToResult(UserChange change) => change.Status switch
    {
        200 => Results.Ok(change.User),
        201 => Results.Created($"/api/v1/users/{change.User!.UserName}", change.User),
        204 => Results.NoContent(),
        400 => ApiProblems.Validation(change.Errors, "The user change is invalid"),
        _ => Results.Problem(statusCode: change.Status, title: change.Status == 404 ? "Not found" : "Conflict", detail: change.Errors[0].Message),
    };
}
