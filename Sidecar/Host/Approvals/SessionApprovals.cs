using Airlock.Contracts.Hubs;
using Airlock.Contracts.Recording;
using Airlock.Sidecar.Policy;
using Airlock.Sidecar.Policy.Approvals;
using Airlock.Sidecar.Postgres;
using Airlock.Sidecar.Protocols.Postgres;
using Airlock.Sidecar.Protocols.Sql;
using Airlock.Sidecar.Recording;

namespace Airlock.Sidecar.Approvals;

/// <summary>A statement a <c>require_approval</c> rule decided: the rule, the exact text, and (for a Bind) the parameter values it runs with.</summary>
/// <param name="ParameterTypes">The parameter types the statement's Parse declared (0: the server infers): the same bytes mean another value under another type.</param>
/// <param name="Shown">The parameter values as text, for approvers to read.</param>
internal sealed record ApprovalNeed(
    Policy.Guardrails.Decision Decision,
    string Text,
    string Classification,
    IReadOnlyList<BoundValue> Parameters,
    IReadOnlyList<int> ParameterTypes,
    IReadOnlyList<string?> Shown,
    bool StandardConformingStrings)
{
    public ApprovalSpec Spec => Decision.Approval ?? new ApprovalSpec(ApprovalModes.Hold, 1, null, 900);

    public string Rule => Decision.DecidedBy ?? "require_approval";
}

/// <summary>How a raised request stands: a ticket (pending, or approved for this run), or the refusal to answer with.</summary>
internal sealed record Raised(ApprovalTicket? Ticket, PgError? Refusal, string Mode);

/// <summary>How a held statement's wait ended.</summary>
internal enum HoldEnd
{
    Approved,
    Denied,
    Expired,
    /// <summary>The client sent a CancelRequest.</summary>
    Cancelled,
    /// <summary>The client closed the connection.</summary>
    ClientGone,
    /// <summary>The session ended for another reason (terminated, sidecar stopping).</summary>
    SessionEnded,
}

/// <summary>
/// One session's approvals: raises a request for a statement, waits for its decision while the relay
/// holds the statement, and writes every step (raised, each vote, the decision, executed or
/// cancelled) into the session's chain. The relay decides what the agent hears; this class decides
/// nothing else.
/// </summary>
/// <param name="activeGrant">The time-boxed grant whose rules judge the session now, if any (the control plane checks the rule against its role).</param>
internal sealed class SessionApprovals(
    ApprovalGate gate,
    IApprovalChannel channel,
    SessionRecording recording,
    AgentPolicy agent,
    TargetPolicy target,
    HoldCancellation cancel,
    Func<long?> activeGrant,
    TimeProvider time,
    ILogger logger)
{
    /// <summary>How long raising a request may take before the statement is refused (the control plane is unreachable).</summary>
    public static readonly TimeSpan RaiseTimeout = TimeSpan.FromSeconds(10);

    /// <summary>A held session sends the target a Flush this often, so nothing between them idles out.</summary>
    public static readonly TimeSpan KeepAliveEvery = TimeSpan.FromSeconds(30);

    /// <summary>Told when a request is raised and pending (held, or refused fail-fast): the MCP front door answers its call with it.</summary>
    public Action<ApprovalTicket, ApprovalNeed>? OnHeld { get; init; }

    /// <summary>Told when an approved statement goes to the target.</summary>
    public Action<long>? OnReleased { get; init; }

    public async Task<Raised> RaiseAsync(ApprovalNeed need)
    {
        var spec = need.Spec;
        var fingerprint = ApprovalFingerprint.Of(need.Text, need.Parameters, need.ParameterTypes, agent.Name, target.Name, need.StandardConformingStrings);
        // Approvers (and webhooks) read the text with password literals redacted; the fingerprint is the real text's.
        var shown = SqlRedaction.Redact(need.Text, need.StandardConformingStrings);
        var request = new ApprovalRequest(recording.Session, agent.Name, agent.Role, target.Name, [shown], need.Classification, need.Rule, fingerprint, spec.Mode, need.Shown, activeGrant());
        ApprovalTicket ticket;
        try
        {
            using var timeout = new CancellationTokenSource(RaiseTimeout);
            ticket = await channel.RequestAsync(request, timeout.Token);
        }
        catch (Exception e)
        {
            logger.LogWarning("Session {Session}: approval for rule {Rule} could not be raised: {Error}", recording.Session, need.Rule, e.Message);
            return new Raised(null, new PgError("ERROR", SqlStates.InsufficientPrivilege,
                $"approval required by rule \"{need.Rule}\", but no request could be raised: {Reason(e)}; nothing was run",
                null, "Try again when the Airlock control plane is reachable."), spec.Mode);
        }
        await RecordAsync(new ApprovalPayload(ticket.RequestId, ticket.Status == ApprovalOutcomes.Approved ? ApprovalOutcomes.Executed : ApprovalOutcomes.Raised,
            null, null, need.Rule, spec.Mode, fingerprint));
        if (ticket.Status == ApprovalOutcomes.Approved)
            return new Raised(ticket, null, spec.Mode);
        recording.Statements.AddHeld();
        OnHeld?.Invoke(ticket, need);
        if (spec.Mode == ApprovalModes.FailFast)
            return new Raised(ticket, new PgError("ERROR", SqlStates.InsufficientPrivilege,
                $"approval required by rule \"{need.Rule}\": request #{ticket.RequestId} was raised; nothing was run",
                $"Re-send the identical statement (same text and parameter values) once the request is approved{(spec.WindowMinutes is { } m ? $"; the approval then covers it for {m} minutes" : "; the approval covers one run")}.",
                ticket.ConsoleUrl is null ? null : $"Approvers decide at {ticket.ConsoleUrl}"), spec.Mode);
        return new Raised(ticket, null, spec.Mode);
    }

    /// <summary>The notice that tells the client its statement waits.</summary>
    public static PgError HoldNotice(ApprovalNeed need, ApprovalTicket ticket) =>
        new("NOTICE", SqlStates.SuccessfulCompletion,
            $"Airlock: waiting for approval request #{ticket.RequestId} (rule \"{need.Rule}\", {need.Spec.Approvals} approval{(need.Spec.Approvals == 1 ? "" : "s")} needed, expires {ticket.ExpiresAt.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC)",
            "The statement runs the moment it is approved; cancel the query to stop waiting.",
            ticket.ConsoleUrl is null ? null : $"Approvers decide at {ticket.ConsoleUrl}");

    /// <summary>
    /// Waits for the decision on a held statement, until the client cancels or goes away, the session
    /// ends, or the request expires (kept by this sidecar's clock too: a lost control plane cannot
    /// hold a statement past its expiry). <paramref name="keepAlive"/> runs every <see cref="KeepAliveEvery"/>.
    /// </summary>
    public async Task<(HoldEnd End, ApprovalDecision? Decision)> WaitAsync(ApprovalTicket ticket, Task clientGone, CancellationToken sessionEnded, Func<ValueTask> keepAlive)
    {
        using var cancelled = new CancellationTokenSource();
        using var armed = cancel.Arm(cancelled);
        var decided = gate.Wait(ticket.RequestId, out var registration);
        using var _ = registration;
        var cancelledTask = Task.Delay(Timeout.Infinite, cancelled.Token);
        var endedTask = Task.Delay(Timeout.Infinite, sessionEnded);
        while (true)
        {
            var left = ticket.ExpiresAt - time.GetUtcNow();
            if (left <= TimeSpan.Zero)
                return await EndAsync(ticket, HoldEnd.Expired, null);
            var tick = Task.Delay(left < KeepAliveEvery ? left : KeepAliveEvery);
            var first = await Task.WhenAny(decided, clientGone, cancelledTask, endedTask, tick);
            if (first == decided && cancelled.IsCancellationRequested)
                return await EndAsync(ticket, HoldEnd.Cancelled, null); // the client's cancel came as the decision did: it wins
            if (first == decided)
            {
                var decision = await decided;
                foreach (var vote in decision.Votes ?? [])
                    await RecordAsync(new ApprovalPayload(ticket.RequestId, ApprovalOutcomes.Vote, vote.Voter, vote.Comment, Approve: vote.Approve));
                await RecordAsync(new ApprovalPayload(ticket.RequestId, decision.Outcome, decision.DecidedBy, decision.Comment));
                var end = decision.Outcome switch
                {
                    ApprovalOutcomes.Approved => HoldEnd.Approved,
                    ApprovalOutcomes.Expired => HoldEnd.Expired,
                    _ => HoldEnd.Denied,
                };
                if (end != HoldEnd.Approved)
                    await SettleAsync(ticket.RequestId, decision.Outcome, null);
                return (end, decision);
            }
            if (first == clientGone)
                return await EndAsync(ticket, HoldEnd.ClientGone, null);
            if (first == cancelledTask)
                return await EndAsync(ticket, HoldEnd.Cancelled, null);
            if (first == endedTask)
                return await EndAsync(ticket, HoldEnd.SessionEnded, null);
            if (ticket.ExpiresAt > time.GetUtcNow())
                await keepAlive();
        }
    }

    private async Task<(HoldEnd, ApprovalDecision?)> EndAsync(ApprovalTicket ticket, HoldEnd end, ApprovalDecision? decision)
    {
        var outcome = end == HoldEnd.Expired ? ApprovalOutcomes.Expired : ApprovalOutcomes.Cancelled;
        var detail = end switch
        {
            HoldEnd.Cancelled => "the client cancelled the statement",
            HoldEnd.ClientGone => "the client went away",
            HoldEnd.SessionEnded => "the session ended",
            _ => "no decision before the request expired",
        };
        await RecordAsync(new ApprovalPayload(ticket.RequestId, outcome, null, detail));
        await SettleAsync(ticket.RequestId, outcome, detail);
        return (end, decision);
    }

    /// <summary>An approved statement that did not run after all (the rules changed while it waited).</summary>
    public async Task NotRunAsync(long requestId, string why)
    {
        await RecordAsync(new ApprovalPayload(requestId, ApprovalOutcomes.Cancelled, null, why));
        await SettleAsync(requestId, ApprovalOutcomes.Cancelled, why);
    }

    /// <summary>The held statement was sent to the target.</summary>
    public async Task ExecutedAsync(long requestId)
    {
        OnReleased?.Invoke(requestId);
        await RecordAsync(new ApprovalPayload(requestId, ApprovalOutcomes.Executed, null, null));
        await SettleAsync(requestId, ApprovalOutcomes.Executed, null);
    }

    /// <summary>What the agent hears when a held statement does not run.</summary>
    public static PgError Refusal(ApprovalNeed need, ApprovalTicket ticket, HoldEnd end, ApprovalDecision? decision) => end switch
    {
        HoldEnd.Cancelled => new PgError("ERROR", SqlStates.QueryCanceled, $"canceling statement due to user request (it was waiting for approval request #{ticket.RequestId}, which is now cancelled)"),
        HoldEnd.Denied => new PgError("ERROR", SqlStates.InsufficientPrivilege,
            $"approval request #{ticket.RequestId} for rule \"{need.Rule}\" was denied{(decision?.DecidedBy is { } by ? $" by {by}" : "")}{(decision?.Comment is { } c ? $": {c}" : "")}; nothing was run"),
        HoldEnd.Expired => new PgError("ERROR", SqlStates.InsufficientPrivilege,
            $"approval request #{ticket.RequestId} for rule \"{need.Rule}\" expired without a decision; nothing was run", null, "Send the statement again to raise a new request."),
        _ => new PgError("ERROR", SqlStates.InsufficientPrivilege, $"the wait for approval request #{ticket.RequestId} ended; nothing was run"),
    };

    private async Task SettleAsync(long requestId, string outcome, string? detail)
    {
        try
        {
            using var timeout = new CancellationTokenSource(RaiseTimeout);
            await channel.SettleAsync(new ApprovalSettlement(requestId, outcome, detail), timeout.Token);
        }
        catch (Exception e)
        {
            // The control plane sends an unsettled decision again at reconnect and expires what no one settles.
            logger.LogInformation("Session {Session}: approval request {Request} settled as {Outcome} here, not reported yet: {Error}", recording.Session, requestId, outcome, e.Message);
        }
    }

    private ValueTask RecordAsync(ApprovalPayload payload) =>
        recording.RecordAsync(RecordingEventTypes.Approval, RecordingJson.Encode(payload));

    private static string Reason(Exception e) => e switch
    {
        OperationCanceledException => "the control plane did not answer in time",
        Microsoft.AspNetCore.SignalR.HubException hub => hub.Message.Replace("An unexpected error occurred invoking 'RequestApproval' on the server. HubException: ", "", StringComparison.Ordinal),
        _ => "the control plane is not reachable",
    };
}
