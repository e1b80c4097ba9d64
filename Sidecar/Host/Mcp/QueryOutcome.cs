using Airlock.Sidecar.Policy;
using Airlock.Sidecar.Policy.Guardrails;
using Airlock.Sidecar.Protocols.Postgres;

namespace Airlock.Sidecar.Mcp;

/// <summary>
/// What a statement's answer on the wire means to an agent (pure): <c>completed</c> with its rows;
/// <c>blocked</c> when the guard refused it (the deciding rule named); <c>pending_approval</c> when a
/// fail-fast rule raised a request (send it again once approved); <c>denied</c> when approvers denied it,
/// let it expire or it was cancelled while held; <c>failed</c> for everything the target itself refused,
/// and for the statement timeout.
/// </summary>
internal static class QueryOutcome
{
    public static QueryResult Of(string target, string? session, WireAnswer answer)
    {
        var result = answer.Result;
        var duration = Math.Round(answer.DurationMs, 3);
        if (answer.TimedOut)
            return new QueryResult(CallStatus.Failed, target, DurationMs: duration, Session: session,
                Error: new CallError(SqlStates.QueryCanceled, "the statement ran past the statement timeout (Sidecar:Mcp:StatementTimeoutSeconds) and was cancelled", Code: "limit"));
        if (answer.CopyStopped)
            return new QueryResult(CallStatus.Failed, target, DurationMs: duration, Session: session, TruncatedBy: "copy", Truncated: true,
                Error: new CallError(SqlStates.QueryCanceled, "the COPY output ran past the result's byte cap (Sidecar:Mcp:MaxResultBytes) and was stopped; COPY data is not returned through MCP", Code: "limit"));
        var approval = answer.Held is { } held ? new ApprovalInfo(held.Ticket.RequestId, held.Rule, held.Ticket.ExpiresAt, held.Ticket.ConsoleUrl) : null;
        if (result.Error is not { } error)
            return new QueryResult(CallStatus.Completed, target, result.Command, result.Columns ?? [], result.Rows, result.Rows.Count,
                result.TruncatedBy is not null, result.TruncatedBy, duration, Approval: approval, Session: session);

        var refusedByGateway = error.SqlState == SqlStates.InsufficientPrivilege;
        var status = answer switch
        {
            { Refused: { } verdict } when refusedByGateway && verdict.Decision == Decision.Name(DecisionAction.Block) => CallStatus.Blocked,
            { Held.Mode: ApprovalModes.FailFast } when refusedByGateway => CallStatus.PendingApproval,
            { Held: not null } when refusedByGateway || error.SqlState == SqlStates.QueryCanceled => CallStatus.Denied,
            { Refused: not null } when refusedByGateway => CallStatus.Blocked,
            _ => CallStatus.Failed,
        };
        var rule = answer.Refused?.Rule ?? (status is CallStatus.Denied or CallStatus.PendingApproval ? answer.Held?.Rule : null);
        return new QueryResult(status, target, DurationMs: duration,
            Error: new CallError(error.SqlState, error.Message, error.Detail, error.Hint, rule), Approval: approval, Session: session);
    }
}
