using Microsoft.EntityFrameworkCore;
using Airlock.ControlPlane.Identity;
using Airlock.ControlPlane.Sessions;

namespace Airlock.ControlPlane.Api;

public sealed record TerminateRequest(string? Reason);

/// <summary><c>/api/v1/sessions</c>: list and filter recorded sessions, read their events, verify their chains.</summary>
internal static class SessionEndpoints
{
    public static RouteGroupBuilder MapSessionEndpoints(this RouteGroupBuilder api)
    {
        api.MapGet("/sessions", (string? agent, string? target, string? status, DateTimeOffset? from, DateTimeOffset? to, int? take, SessionQueries q, CancellationToken ct) =>
            q.ListAsync(new SessionFilter(agent, target, status, from, to, take ?? 100), ct))
            .RequireAuthorization(AccessPolicies.Viewer);
        api.MapGet("/refused-connections", async (string? target, string? agent, DateTimeOffset? since, int? take, Data.AirlockDbContext db, CancellationToken ct) =>
        {
            var query = db.RefusedConnections.AsNoTracking();
            if (!string.IsNullOrEmpty(target))
                query = query.Where(r => r.Target == target);
            if (!string.IsNullOrEmpty(agent))
                query = query.Where(r => r.Agent == agent);
            if (since is { } from)
                query = query.Where(r => r.At >= from);
            return await query.OrderByDescending(r => r.Id).Take(Math.Clamp(take ?? 100, 1, 1000)).ToListAsync(ct);
        }).RequireAuthorization(AccessPolicies.Viewer);
        api.MapGet("/sessions/{id:guid}", async (Guid id, SessionQueries q, CancellationToken ct) =>
            await q.GetAsync(id, ct) is { } s ? Results.Ok(s) : ApiProblems.NotFound($"session {id}"))
            .RequireAuthorization(AccessPolicies.Viewer);
        api.MapGet("/sessions/{id:guid}/events", async (Guid id, long? after, int? take, SessionQueries q, CancellationToken ct) =>
            await q.GetAsync(id, ct) is null ? ApiProblems.NotFound($"session {id}") : Results.Ok(await q.EventsAsync(id, after ?? 0, take ?? 1000, ct)))
            .RequireAuthorization(AccessPolicies.Viewer);
        api.MapPost("/sessions/{id:guid}/verify", async (Guid id, SessionQueries q, CancellationToken ct) =>
            await q.VerifyAsync(id, ct) is { } verdict ? Results.Ok(verdict) : ApiProblems.NotFound($"session {id}"))
            .RequireAuthorization(AccessPolicies.Viewer);
        // Streamed: a session of any length is exported in bounded memory.
        api.MapGet("/sessions/{id:guid}/export", async (Guid id, SessionQueries q, TimeProvider time, HttpContext http, CancellationToken ct) =>
            await q.GetAsync(id, ct) is null
                ? ApiProblems.NotFound($"session {id}")
                : Results.Stream(async body => await q.WriteExportAsync(id, body, time, ct), "application/json"))
            .RequireAuthorization(AccessPolicies.Viewer);
        api.MapPost("/sessions/{id:guid}/terminate", async (Guid id, TerminateRequest? body, SessionControl control, HttpContext http, CancellationToken ct) =>
            await control.TerminateAsync(id, body?.Reason ?? "terminated by an administrator", http.User.Actor(), ct)
                ? Results.Accepted()
                : Results.Problem(statusCode: 409, title: "Not terminable", detail: "the session is not live, or its sidecar is not connected"))
            .RequireAuthorization(AccessPolicies.Admin);
        return api;
    }
}
