using Airlock.ControlPlane.Approvals;
using Airlock.ControlPlane.Identity;

namespace Airlock.ControlPlane.Api;

public sealed record VoteRequest(string? Comment);

/// <param name="Format"><c>json</c> (default) or <c>slack</c>.</param>
/// <param name="Secret">The HMAC secret; left out, a random one is made and returned once.</param>
public sealed record WebhookRequest(string? Name, string? Url, string? Format, string? Secret);

/// <summary>A time-boxed grant: <see cref="Agent"/> is judged on <see cref="Target"/> by <see cref="Role"/>'s rules for <see cref="Minutes"/> once approved.</summary>
public sealed record GrantRequest(string? Agent, string? Target, string? Role, int? Minutes, string? Reason);

/// <summary>
/// <c>/api/v1/approvals</c>: list and read requests; approve or deny (signed-in console users with the
/// Approver or Admin role). <c>/api/v1/grants</c>: ask for a time-boxed grant (the agent's owner), list, revoke (Admin).
/// </summary>
internal static class ApprovalEndpoints
{
    public static RouteGroupBuilder MapApprovalEndpoints(this RouteGroupBuilder api)
    {
        api.MapGet("/approvals", (string? status, int? take, ApprovalService approvals, CancellationToken ct) =>
            approvals.ListAsync(status, take ?? 100, ct))
            .RequireAuthorization(AccessPolicies.Viewer);
        api.MapGet("/approvals/{id:long}", async (long id, ApprovalService approvals, CancellationToken ct) =>
            await approvals.GetAsync(id, ct) is { } a ? Results.Ok(a) : ApiProblems.NotFound($"approval request #{id}"))
            .RequireAuthorization(AccessPolicies.Viewer);
        api.MapPost("/approvals/{id:long}/approve", (long id, VoteRequest? body, ApprovalService approvals, HttpContext http, CancellationToken ct) =>
            VoteAsync(id, approve: true, body, approvals, http, ct))
            .RequireAuthorization(AccessPolicies.Approver);
        api.MapPost("/approvals/{id:long}/deny", (long id, VoteRequest? body, ApprovalService approvals, HttpContext http, CancellationToken ct) =>
            VoteAsync(id, approve: false, body, approvals, http, ct))
            .RequireAuthorization(AccessPolicies.Approver);
        api.MapGet("/grants", (bool? active, ApprovalService approvals, CancellationToken ct) => approvals.GrantsAsync(active ?? false, ct))
            .RequireAuthorization(AccessPolicies.Viewer);
        api.MapPost("/grants", async (GrantRequest body, ApprovalService approvals, HttpContext http, CancellationToken ct) =>
            ToResult(await approvals.RequestGrantAsync(http.User.Actor(), body.Agent, body.Target, body.Role, body.Minutes, body.Reason, ct)))
            .RequireAuthorization(AccessPolicies.Viewer);
        api.MapPost("/grants/{id:long}/revoke", async (long id, ApprovalService approvals, HttpContext http, CancellationToken ct) =>
            ToResult(await approvals.RevokeGrantAsync(id, http.User.Actor(), ct)))
            .RequireAuthorization(AccessPolicies.Admin);
        api.MapGet("/webhooks", (WebhookService webhooks, CancellationToken ct) => webhooks.ListAsync(ct))
            .RequireAuthorization(AccessPolicies.Admin);
        api.MapPost("/webhooks", async (WebhookRequest body, WebhookService webhooks, HttpContext http, CancellationToken ct) =>
        {
            var (created, problem, status) = await webhooks.CreateAsync(body.Name, body.Url, body.Format, body.Secret, http.User.Actor(), ct);
            return created is not null
                ? Results.Created($"/api/v1/webhooks/{created.Webhook.Name}", created)
                : Results.Problem(statusCode: status, title: status == 409 ? "Conflict" : "Invalid webhook", detail: problem);
        }).RequireAuthorization(AccessPolicies.Admin);
        api.MapDelete("/webhooks/{name}", async (string name, WebhookService webhooks, HttpContext http, CancellationToken ct) =>
            await webhooks.DeleteAsync(name, http.User.Actor(), ct) ? Results.NoContent() : ApiProblems.NotFound($"webhook '{name}'"))
            .RequireAuthorization(AccessPolicies.Admin);
        api.MapGet("/webhooks/deliveries", (string? webhook, int? take, WebhookService webhooks, CancellationToken ct) => webhooks.DeliveriesAsync(webhook, take ?? 100, ct))
            .RequireAuthorization(AccessPolicies.Admin);
        return api;
    }

    private static async Task<IResult> VoteAsync(long id, bool approve, VoteRequest? body, ApprovalService approvals, HttpContext http, CancellationToken ct) =>
        ToResult(await approvals.VoteAsync(id, http.User.Actor(), approve, body?.Comment, ct));

    internal static IResult ToResult(ApprovalChange change) => change.Status switch
    {
        200 => Results.Ok(change.Approval),
        201 => Results.Created($"/api/v1/approvals/{change.Approval!.Id}", change.Approval),
        404 => Results.Problem(statusCode: 404, title: "Not found", detail: change.Problem),
        400 => Results.Problem(statusCode: 400, title: "Invalid request", detail: change.Problem),
        403 => Results.Problem(statusCode: 403, title: "Not allowed", detail: change.Problem),
        _ => Results.Problem(statusCode: change.Status, title: change.Status == 409 ? "Not pending" : "Refused", detail: change.Problem),
    };
}
