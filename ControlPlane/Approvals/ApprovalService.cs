using System.Text.RegularExpressions;
using Airlock.ControlPlane.Data;
using Airlock.ControlPlane.Identity;
using Airlock.ControlPlane.Sidecars;
using Airlock.Contracts.Hubs;
using Airlock.Sidecar.Policy;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Airlock.ControlPlane.Approvals;

/// <summary>An approval request as the console and the API show it.</summary>
public sealed record ApprovalView(
    long Id,
    string Kind,
    string Status,
    string Agent,
    string AgentOwner,
    string Role,
    string Target,
    string? RequestedBy,
    IReadOnlyList<string> Statements,
    IReadOnlyList<string?> Parameters,
    string Classification,
    string Rule,
    string Mode,
    string? Group,
    int Required,
    int Approvals,
    int? WindowMinutes,
    string? GrantRole,
    string? Reason,
    Guid? Session,
    DateTimeOffset CreatedAt,
    DateTimeOffset ExpiresAt,
    DateTimeOffset? DecidedAt,
    string? DecidedBy,
    string? Comment,
    DateTimeOffset? ValidUntil,
    int Uses,
    string? Settlement,
    IReadOnlyList<ApprovalVoteInfo> Votes);

/// <summary>The outcome of a vote or a grant request: the request, or an HTTP status and the problem.</summary>
public sealed record ApprovalChange(ApprovalView? Approval, int Status, string? Problem = null);

/// <summary>A request a sidecar may not raise (outside its reach, no such rule…): the hub answers with this message.</summary>
public sealed class ApprovalRefusedException(string message) : Exception(message);

/// <summary>
/// Just-in-time approvals: requests raised by sidecars (a statement) or by people (a time-boxed grant),
/// votes, decisions, expiry and settlement. The contract:
/// <list type="number">
/// <item>A sidecar is believed only within its reach; the rule's settings (approvals, group, expiry,
/// window) come from the store, never from the sidecar.</item>
/// <item>A vote is by a signed-in console user with the Approver or Admin role, in the rule's group
/// when it names one; never by the agent's owner or the person who asked; one vote per person.</item>
/// <item>One deny decides; the required number of approvals decides. A status moves out of
/// <see cref="ApprovalStatus.Pending"/> once, by a conditional update, so two replicas (or a vote
/// racing the expiry) cannot decide a request twice.</item>
/// <item>Every step is in the audit log, in the same transaction as the change.</item>
/// <item>A fail-fast approval covers the identical statement (same fingerprint, agent and target)
/// within its window: once, or any number of times for the rule's minutes.</item>
/// </list>
/// </summary>
public sealed partial class ApprovalService(
    AirlockDbContext db,
    ApprovalBroadcaster broadcaster,
    Policies.PolicyChangeNotifier policyChanged,
    IOptions<AgentTokenOptions> issuer,
    TimeProvider time)
{
    /// <summary>How long a grant request waits for its decision.</summary>
    public static readonly TimeSpan GrantRequestExpiry = TimeSpan.FromHours(1);

    public const int MaxGrantMinutes = 1440;

    /// <summary>Pending requests one agent may have at a time.</summary>
    public const int MaxPendingPerAgent = 20;

    /// <summary>How far a sidecar's clock may run ahead of the control plane's when it names a grant that just lapsed.</summary>
    private static readonly TimeSpan GrantClockSkew = TimeSpan.FromSeconds(30);

    public const int MaxStatements = 50;
    public const int MaxStatementChars = 64 * 1024;
    public const int MaxParameterChars = 2000;

    [GeneratedRegex("^[0-9a-f]{64}$")]
    private static partial Regex FingerprintPattern();

    /// <summary>The console page of a request.</summary>
    public string ConsoleUrl(long id) => new Uri(new Uri(issuer.Value.Issuer!), $"approvals/{id}").AbsoluteUri;

    /// <summary>Stores a statement request from a sidecar (or finds the one it repeats); throws <see cref="ApprovalRefusedException"/> when the sidecar may not raise it.</summary>
    public Task<ApprovalTicket> RaiseAsync(Guid sidecarId, ApprovalRequest request, CancellationToken ct) =>
        // One transaction, so a try the embedded store refused as busy leaves nothing behind and runs again whole.
        StoreBusy.RetryAsync(db, async () =>
        {
            await using var transaction = await db.Database.BeginTransactionAsync(ct);
            var ticket = await RaiseOnceAsync(sidecarId, request, ct);
            await transaction.CommitAsync(ct);
            if (_raised is { } raised)
                broadcaster.Changed(raised.Id, raised.Notify);
            _raised = null;
            return ticket;
        }, ct);

    /// <summary>The request stored by the last <see cref="RaiseOnceAsync"/>, announced once its transaction committed.</summary>
    private (long Id, bool Notify)? _raised;

    private async Task<ApprovalTicket> RaiseOnceAsync(Guid sidecarId, ApprovalRequest request, CancellationToken ct)
    {
        _raised = null;
        if (request.Statements is not { Count: > 0 and <= MaxStatements } || request.Statements.Any(s => s is null || s.Length > MaxStatementChars))
            throw new ApprovalRefusedException($"an approval request carries 1–{MaxStatements} statements of at most {MaxStatementChars} characters");
        if (request.Fingerprint is null || !FingerprintPattern().IsMatch(request.Fingerprint))
            throw new ApprovalRefusedException("an approval request's fingerprint is 64 lower-case hex digits");
        if (request.Parameters is { Count: > 1000 })
            throw new ApprovalRefusedException("an approval request carries at most 1000 parameter values");
        var sidecar = await db.Sidecars.AsNoTracking().SingleAsync(s => s.Id == sidecarId, ct);
        var reach = await SidecarReach.LoadAsync(db, sidecarId, ct);
        if (reach.Problem(sidecar.Name, request.Agent, request.Target) is { } problem)
            throw new ApprovalRefusedException(problem);
        var agent = await db.Agents.AsNoTracking().Include(a => a.Role).ThenInclude(r => r!.Rules).SingleAsync(a => a.Name == request.Agent, ct);
        var now = time.GetUtcNow();
        // The rule is the role's that judged the statement: the agent's own, or a time-boxed grant's in force.
        var role = agent.Role!;
        if (request.Grant is { } grantId)
        {
            var grant = await db.Approvals.AsNoTracking().SingleOrDefaultAsync(a => a.Id == grantId && a.Kind == ApprovalKind.Grant && a.Status == ApprovalStatus.Approved
                && a.Agent == agent.Name && a.Target == request.Target, ct);
            if (grant is null || !(grant.ValidUntil > now - GrantClockSkew))
                throw new ApprovalRefusedException($"grant #{grantId} of agent '{agent.Name}' on target '{request.Target}' is not in force");
            role = await db.Roles.AsNoTracking().Include(r => r.Rules).SingleOrDefaultAsync(r => r.Name == grant.GrantRole, ct)
                ?? throw new ApprovalRefusedException($"role '{grant.GrantRole}' of grant #{grantId} no longer exists");
        }
        var rule = role.Rules.FirstOrDefault(r => r.Name == request.Rule && r.Action == RuleActions.RequireApproval && r.Approval is not null)
            ?? throw new ApprovalRefusedException($"role '{role.Name}' {(request.Grant is null ? $"of agent '{agent.Name}'" : $"(granted by #{request.Grant})")} has no require_approval rule named '{request.Rule}'");
        var spec = rule.Approval!;

        if (await ReuseAsync(request, rule.Name, spec, now, ct) is { } reused)
            return reused;
        // An agent cannot flood approvers: its pending requests are capped.
        if (await db.Approvals.CountAsync(a => a.Agent == agent.Name && a.Status == ApprovalStatus.Pending && a.ExpiresAt > now, ct) >= MaxPendingPerAgent)
            throw new ApprovalRefusedException($"agent '{agent.Name}' already has {MaxPendingPerAgent} approval requests waiting; wait for them to be decided");

        var approval = new Approval
        {
            Kind = ApprovalKind.Statement,
            Status = ApprovalStatus.Pending,
            SidecarId = sidecarId,
            SessionId = request.Session,
            Agent = agent.Name,
            AgentOwner = agent.Owner,
            Role = role.Name,
            Target = request.Target,
            Statements = [.. request.Statements],
            Parameters = [.. (request.Parameters ?? []).Select(p => p is { Length: > MaxParameterChars } ? p[..MaxParameterChars] + "…" : p)],
            Classification = Cut(request.Classification, 200),
            Rule = rule.Name,
            Fingerprint = request.Fingerprint,
            Mode = spec.Mode,
            Group = spec.Group,
            Required = spec.Approvals,
            WindowMinutes = spec.WindowMinutes,
            CreatedAt = now,
            ExpiresAt = now.AddSeconds(spec.TimeoutSeconds),
        };
        db.Approvals.Add(approval);
        await db.SaveChangesAsync(ct);
        db.Record(now, $"sidecar:{sidecar.Name}", "approval.raised", "approval", approval.Id.ToString(), null,
            new { approval.Agent, approval.Target, approval.Rule, approval.Mode, approval.Required, approval.Group, approval.Fingerprint, session = approval.SessionId });
        var notify = await WebhookService.EnqueueAsync(db, WebhookEvents.Requested, ToView(approval), ConsoleUrl(approval.Id), now, ct);
        await db.SaveChangesAsync(ct);
        _raised = (approval.Id, notify);
        return new ApprovalTicket(approval.Id, approval.ExpiresAt, ApprovalOutcomes.Pending, ConsoleUrl(approval.Id));
    }

    /// <summary>
    /// The same statement again: a pending request of it is the one to wait for (not a second one); a
    /// fail-fast approval whose window is open covers this run (claimed here, so "once" means once).
    /// </summary>
    private async Task<ApprovalTicket?> ReuseAsync(ApprovalRequest request, string rule, ApprovalData spec, DateTimeOffset now, CancellationToken ct)
    {
        var same = await db.Approvals.AsNoTracking()
            .Where(a => a.Kind == ApprovalKind.Statement && a.Fingerprint == request.Fingerprint && a.Agent == request.Agent && a.Target == request.Target
                        && (a.Status == ApprovalStatus.Pending || a.Status == ApprovalStatus.Approved))
            .OrderByDescending(a => a.Id).ToListAsync(ct);
        foreach (var a in same)
        {
            // Only under the same rule as it stands now: a rule made stricter since does not honour older approvals.
            if (a.Rule != rule || a.Required < spec.Approvals || a.Group != spec.Group || a.WindowMinutes != spec.WindowMinutes)
                continue;
            if (a.Status == ApprovalStatus.Pending && a.ExpiresAt > now && a.Mode == spec.Mode && spec.Mode == ApprovalModes.FailFast)
                return new ApprovalTicket(a.Id, a.ExpiresAt, ApprovalOutcomes.Pending, ConsoleUrl(a.Id));
            if (a.Status != ApprovalStatus.Approved || a.Mode != ApprovalModes.FailFast || !(a.ValidUntil > now))
                continue;
            // Claim one use: only the update that still sees the approval open counts.
            var claimed = a.WindowMinutes is null
                ? await db.Approvals.Where(x => x.Id == a.Id && x.Status == ApprovalStatus.Approved && x.Uses == 0)
                    .ExecuteUpdateAsync(u => u.SetProperty(x => x.Uses, 1).SetProperty(x => x.Status, ApprovalStatus.Executed), ct)
                : await db.Approvals.Where(x => x.Id == a.Id && x.Status == ApprovalStatus.Approved)
                    .ExecuteUpdateAsync(u => u.SetProperty(x => x.Uses, x => x.Uses + 1), ct);
            if (claimed == 0)
                continue;
            db.Record(now, "sidecar", "approval.executed", "approval", a.Id.ToString(), null, new { use = a.Uses + 1, session = request.Session });
            await db.SaveChangesAsync(ct);
            broadcaster.Changed(a.Id);
            return new ApprovalTicket(a.Id, a.ValidUntil!.Value, ApprovalOutcomes.Approved, ConsoleUrl(a.Id));
        }
        return null;
    }

    /// <summary>A vote by <paramref name="voter"/> (a console user name); decides the request when it is a deny or the last approval needed.</summary>
    public async Task<ApprovalChange> VoteAsync(long id, string voter, bool approve, string? comment, CancellationToken ct)
    {
        comment = string.IsNullOrWhiteSpace(comment) ? null : Cut(comment.Trim(), 1000);
        var user = await db.Users.AsNoTracking().SingleOrDefaultAsync(u => u.UserName == voter, ct);
        if (user is null || user.Disabled)
            return new ApprovalChange(null, 403, "only a signed-in console user votes (an API key cannot)");
        if (user.Role is not (ConsoleRoles.Admin or ConsoleRoles.Approver))
            return new ApprovalChange(null, 403, "voting needs the Approver or Admin role");
        var approval = await db.Approvals.Include(a => a.Votes).SingleOrDefaultAsync(a => a.Id == id, ct);
        if (approval is null)
            return new ApprovalChange(null, 404, $"approval request #{id} does not exist");
        var now = time.GetUtcNow();
        if (approval.Status != ApprovalStatus.Pending || approval.ExpiresAt <= now)
            return new ApprovalChange(ToView(approval), 409, $"approval request #{id} is {Name(approval.ExpiresAt <= now && approval.Status == ApprovalStatus.Pending ? ApprovalStatus.Expired : approval.Status)}; it takes no more votes");
        var ownerNow = await db.Agents.AsNoTracking().Where(a => a.Name == approval.Agent).Select(a => a.Owner).SingleOrDefaultAsync(ct);
        if (string.Equals(approval.AgentOwner, voter, StringComparison.Ordinal) || string.Equals(ownerNow, voter, StringComparison.Ordinal))
            return new ApprovalChange(ToView(approval), 403, $"you own agent '{approval.Agent}'; a request raised by an agent you own is decided by someone else");
        if (approval.Kind == ApprovalKind.Grant && user.Role != ConsoleRoles.Admin)
            return new ApprovalChange(ToView(approval), 403, "a grant changes what an agent may do: an Admin decides it");
        if (string.Equals(approval.RequestedBy, voter, StringComparison.Ordinal))
            return new ApprovalChange(ToView(approval), 403, "you asked for this; it is decided by someone else");
        if (approval.Group is { } group && !user.Groups.Contains(group, StringComparer.Ordinal))
            return new ApprovalChange(ToView(approval), 403, $"this request is decided by the approver group '{group}', and you are not in it");
        if (approval.Votes.Any(v => v.Voter == voter))
            return new ApprovalChange(ToView(approval), 409, "you have already voted on this request");

        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        // Votes on one request take turns: this update locks its row (PostgreSQL) or the store (SQLite)
        // until the transaction ends, so the count below sees every vote committed before it.
        if (await db.Approvals.Where(a => a.Id == id && a.Status == ApprovalStatus.Pending).ExecuteUpdateAsync(u => u.SetProperty(a => a.Status, ApprovalStatus.Pending), ct) == 0)
            return new ApprovalChange(null, 409, $"approval request #{id} was decided meanwhile");
        var vote = new ApprovalVote { ApprovalId = id, Voter = voter, Approve = approve, Comment = comment, At = now };
        approval.Votes.Add(vote);
        db.Record(now, voter, "approval.vote", "approval", id.ToString(), null, new { approve, comment });
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException)
        {
            return new ApprovalChange(null, 409, "you have already voted on this request"); // the same person, twice at once
        }
        var approvals = await db.ApprovalVotes.CountAsync(v => v.ApprovalId == id && v.Approve, ct);
        ApprovalStatus? decided = !approve ? ApprovalStatus.Denied : approvals >= approval.Required ? ApprovalStatus.Approved : null;
        if (decided is { } status)
        {
            DateTimeOffset? validUntil = status != ApprovalStatus.Approved ? null
                : approval.Kind == ApprovalKind.Grant ? now.AddMinutes(approval.WindowMinutes ?? 0)
                : approval.Mode == ApprovalModes.FailFast ? now.AddMinutes(approval.WindowMinutes ?? Math.Max(1, (approval.ExpiresAt - approval.CreatedAt).TotalMinutes))
                : null;
            var changed = await db.Approvals.Where(a => a.Id == id && a.Status == ApprovalStatus.Pending)
                .ExecuteUpdateAsync(u => u.SetProperty(a => a.Status, status).SetProperty(a => a.DecidedAt, now).SetProperty(a => a.DecidedBy, voter)
                    .SetProperty(a => a.Comment, comment).SetProperty(a => a.ValidUntil, validUntil), ct);
            if (changed == 0)
            {
                await transaction.RollbackAsync(ct);
                return new ApprovalChange(null, 409, $"approval request #{id} was decided or expired meanwhile");
            }
            db.Record(now, voter, status == ApprovalStatus.Approved ? "approval.approved" : "approval.denied", "approval", id.ToString(), null,
                new { votes = approval.Votes.Select(v => new { v.Voter, v.Approve }).ToList(), validUntil });
            await db.SaveChangesAsync(ct);
        }
        var decidedView = decided is null ? null : await GetAsync(id, ct);
        var notify = decidedView is not null && await WebhookService.EnqueueAsync(db, WebhookEvents.Decided, decidedView, ConsoleUrl(id), now, ct);
        await db.SaveChangesAsync(ct);
        await transaction.CommitAsync(ct);
        db.ChangeTracker.Clear();
        var after = await db.Approvals.AsNoTracking().Include(a => a.Votes).SingleAsync(a => a.Id == id, ct);
        if (decided is not null)
            await broadcaster.DecidedAsync(after, ToDecision(after));
        if (decided == ApprovalStatus.Approved && after.Kind == ApprovalKind.Grant)
            policyChanged.Publish(); // the grant reaches its target's sidecar in the next snapshot
        broadcaster.Changed(id, notify);
        return new ApprovalChange(ToView(after), 200);
    }

    /// <summary>
    /// A person asks for a time-boxed grant: <paramref name="agent"/> is judged on <paramref name="target"/>
    /// by <paramref name="role"/>'s rules for <paramref name="minutes"/> once someone else approves. Only
    /// the agent's owner (or an Admin) asks; neither the asker nor the owner approves.
    /// </summary>
    public async Task<ApprovalChange> RequestGrantAsync(string requester, string? agent, string? target, string? role, int? minutes, string? reason, CancellationToken ct)
    {
        var person = await db.Users.AsNoTracking().SingleOrDefaultAsync(u => u.UserName == requester, ct);
        if (person is null || person.Disabled)
            return new ApprovalChange(null, 403, "only a signed-in console user asks for a grant (an API key cannot)");
        var problems = new List<string>();
        var agentRow = agent is null ? null : await db.Agents.AsNoTracking().SingleOrDefaultAsync(a => a.Name == agent, ct);
        if (agentRow is null)
            problems.Add($"agent: '{agent}' does not exist");
        if (target is null || !await db.Targets.AsNoTracking().AnyAsync(t => t.Name == target, ct))
            problems.Add($"target: '{target}' does not exist");
        if (role is null || !await db.Roles.AsNoTracking().AnyAsync(r => r.Name == role, ct))
            problems.Add($"role: '{role}' does not exist");
        if (minutes is not (>= 1 and <= MaxGrantMinutes))
            problems.Add($"minutes: must be between 1 and {MaxGrantMinutes}");
        if (reason is { Length: > 500 })
            problems.Add("reason: at most 500 characters");
        if (problems.Count > 0)
            return new ApprovalChange(null, 400, string.Join("; ", problems));
        if (agentRow!.Owner != requester && person.Role != ConsoleRoles.Admin)
            return new ApprovalChange(null, 403, $"only the owner of agent '{agent}' ({agentRow.Owner}) or an Admin asks for its grants");
        var now = time.GetUtcNow();
        var approval = new Approval
        {
            Kind = ApprovalKind.Grant,
            Status = ApprovalStatus.Pending,
            Agent = agentRow.Name,
            AgentOwner = agentRow.Owner,
            Role = role!,
            GrantRole = role,
            Target = target!,
            RequestedBy = requester,
            Statements = [$"grant: agent {agentRow.Name} is judged by role {role} on target {target} for {minutes} minutes"],
            Classification = "grant",
            Rule = "grant",
            Mode = "grant",
            Required = 1,
            WindowMinutes = minutes,
            Reason = string.IsNullOrWhiteSpace(reason) ? null : reason.Trim(),
            CreatedAt = now,
            ExpiresAt = now + GrantRequestExpiry,
        };
        db.Approvals.Add(approval);
        await db.SaveChangesAsync(ct);
        db.Record(now, requester, "grant.requested", "approval", approval.Id.ToString(), null, new { approval.Agent, approval.Target, role, minutes, approval.Reason });
        var notify = await WebhookService.EnqueueAsync(db, WebhookEvents.Requested, ToView(approval), ConsoleUrl(approval.Id), now, ct);
        await db.SaveChangesAsync(ct);
        broadcaster.Changed(approval.Id, notify);
        return new ApprovalChange(ToView(approval), 201);
    }

    /// <summary>An Admin ends an approved grant at once.</summary>
    public async Task<ApprovalChange> RevokeGrantAsync(long id, string actor, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var changed = await db.Approvals.Where(a => a.Id == id && a.Kind == ApprovalKind.Grant && (a.Status == ApprovalStatus.Approved || a.Status == ApprovalStatus.Pending))
            .ExecuteUpdateAsync(u => u.SetProperty(a => a.Status, ApprovalStatus.Revoked).SetProperty(a => a.ValidUntil, now).SetProperty(a => a.DecidedAt, a => a.DecidedAt ?? now), ct);
        if (changed == 0)
            return await db.Approvals.AsNoTracking().AnyAsync(a => a.Id == id && a.Kind == ApprovalKind.Grant, ct)
                ? new ApprovalChange(await GetAsync(id, ct), 409, $"grant #{id} is not in force")
                : new ApprovalChange(null, 404, $"grant #{id} does not exist");
        db.Record(now, actor, "grant.revoked", "approval", id.ToString(), null, null);
        await db.SaveChangesAsync(ct);
        policyChanged.Publish(); // sidecars drop it with the next snapshot, within a second
        broadcaster.Changed(id);
        return new ApprovalChange(await GetAsync(id, ct), 200);
    }

    /// <summary>Grants, newest first: all, or only those in force now.</summary>
    public async Task<IReadOnlyList<ApprovalView>> GrantsAsync(bool activeOnly, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var query = db.Approvals.AsNoTracking().Include(a => a.Votes).Where(a => a.Kind == ApprovalKind.Grant);
        if (activeOnly)
            query = query.Where(a => a.Status == ApprovalStatus.Approved && a.ValidUntil > now);
        return (await query.OrderByDescending(a => a.Id).Take(200).ToListAsync(ct)).Select(ToView).ToList();
    }

    /// <summary>Pending requests past their expiry become expired (each by one replica only); returns how many.</summary>
    public async Task<int> ExpireDueAsync(CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var due = await db.Approvals.AsNoTracking().Where(a => a.Status == ApprovalStatus.Pending && a.ExpiresAt <= now).OrderBy(a => a.Id).Select(a => a.Id).Take(500).ToListAsync(ct);
        var expired = 0;
        foreach (var id in due)
        {
            // The status, its audit entry and its webhook deliveries commit together.
            await using var transaction = await db.Database.BeginTransactionAsync(ct);
            if (await db.Approvals.Where(a => a.Id == id && a.Status == ApprovalStatus.Pending)
                    .ExecuteUpdateAsync(u => u.SetProperty(a => a.Status, ApprovalStatus.Expired).SetProperty(a => a.DecidedAt, now), ct) == 0)
                continue;
            db.Record(now, "airlock", "approval.expired", "approval", id.ToString(), null, null);
            var approval = await db.Approvals.AsNoTracking().Include(a => a.Votes).SingleAsync(a => a.Id == id, ct);
            var notify = await WebhookService.EnqueueAsync(db, WebhookEvents.Decided, ToView(approval), ConsoleUrl(id), now, ct);
            await db.SaveChangesAsync(ct);
            await transaction.CommitAsync(ct);
            await broadcaster.DecidedAsync(approval, ToDecision(approval));
            broadcaster.Changed(id, notify);
            expired++;
        }
        return expired;
    }

    /// <summary>The sidecar's report of what became of a request it raised (executed, cancelled, …), which also acknowledges its decision.</summary>
    public async Task SettleAsync(Guid sidecarId, ApprovalSettlement settlement, string sidecarName, CancellationToken ct)
    {
        var approval = await db.Approvals.SingleOrDefaultAsync(a => a.Id == settlement.RequestId && a.SidecarId == sidecarId, ct);
        if (approval is null || approval.Settled)
            return; // not this sidecar's, or reported already (a reconnect may repeat it): never applied twice
        var now = time.GetUtcNow();
        var outcome = Cut(settlement.Outcome ?? "", 40);
        approval.Settled = true;
        approval.Settlement = outcome;
        if (outcome == ApprovalOutcomes.Executed && approval.Status == ApprovalStatus.Approved)
        {
            approval.Status = ApprovalStatus.Executed;
            approval.Uses++;
        }
        else if (outcome == ApprovalOutcomes.Cancelled && approval.Status == ApprovalStatus.Pending)
        {
            approval.Status = ApprovalStatus.Cancelled;
            approval.DecidedAt = now;
        }
        db.Record(now, $"sidecar:{sidecarName}", $"approval.{(outcome is ApprovalOutcomes.Executed or ApprovalOutcomes.Cancelled ? outcome : "settled")}", "approval", approval.Id.ToString(), null,
            new { outcome, detail = settlement.Detail is null ? null : Cut(settlement.Detail, 500) });
        await db.SaveChangesAsync(ct);
        broadcaster.Changed(approval.Id);
    }

    /// <summary>Decisions on held statements of this sidecar that it has not acknowledged, while a wait for them may still be on: sent again when it connects.</summary>
    public async Task<IReadOnlyList<ApprovalDecision>> UnsettledDecisionsAsync(Guid sidecarId, CancellationToken ct)
    {
        // A held wait ends at the request's expiry at the latest (the sidecar keeps time too): later, no one waits.
        var since = time.GetUtcNow().AddMinutes(-1);
        var rows = await db.Approvals.AsNoTracking().Include(a => a.Votes)
            .Where(a => a.SidecarId == sidecarId && !a.Settled && a.Mode == ApprovalModes.Hold && a.ExpiresAt > since
                        && (a.Status == ApprovalStatus.Approved || a.Status == ApprovalStatus.Denied || a.Status == ApprovalStatus.Expired))
            .OrderBy(a => a.Id).Take(500).ToListAsync(ct);
        return rows.Select(ToDecision).ToList();
    }

    public async Task<IReadOnlyList<ApprovalView>> ListAsync(string? status, int take, CancellationToken ct)
    {
        var query = db.Approvals.AsNoTracking().Include(a => a.Votes).AsQueryable();
        if (status is not null && Enum.TryParse<ApprovalStatus>(status, ignoreCase: true, out var s))
            query = query.Where(a => a.Status == s);
        var rows = await query.OrderByDescending(a => a.Id).Take(Math.Clamp(take, 1, 500)).ToListAsync(ct);
        return rows.Select(ToView).ToList();
    }

    public async Task<ApprovalView?> GetAsync(long id, CancellationToken ct) =>
        await db.Approvals.AsNoTracking().Include(a => a.Votes).SingleOrDefaultAsync(a => a.Id == id, ct) is { } a ? ToView(a) : null;

    /// <summary>Pending requests <paramref name="user"/> could vote on now.</summary>
    public async Task<int> PendingForAsync(string user, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var person = await db.Users.AsNoTracking().SingleOrDefaultAsync(u => u.UserName == user, ct);
        if (person is null || person.Role is not (ConsoleRoles.Admin or ConsoleRoles.Approver))
            return 0;
        var pending = await db.Approvals.AsNoTracking().Include(a => a.Votes)
            .Where(a => a.Status == ApprovalStatus.Pending && a.ExpiresAt > now).ToListAsync(ct);
        return pending.Count(a => a.AgentOwner != user && a.RequestedBy != user && (a.Group is null || person.Groups.Contains(a.Group)) && a.Votes.All(v => v.Voter != user));
    }

    internal static ApprovalDecision ToDecision(Approval a) =>
        new(a.Id, Name(a.Status == ApprovalStatus.Executed ? ApprovalStatus.Approved : a.Status), a.DecidedBy, a.Comment,
            a.Votes.OrderBy(v => v.At).Select(v => new ApprovalVoteInfo(v.Voter, v.Approve, v.Comment, v.At)).ToList());

    public static string Name(ApprovalStatus status) => status.ToString().ToLowerInvariant();

    public static string Name(ApprovalKind kind) => kind.ToString().ToLowerInvariant();

    internal static ApprovalView ToView(Approval a) => new(
        a.Id, Name(a.Kind), Name(a.Status), a.Agent, a.AgentOwner, a.Role, a.Target, a.RequestedBy, a.Statements, a.Parameters,
        a.Classification, a.Rule, a.Mode, a.Group, a.Required, a.Votes.Count(v => v.Approve), a.WindowMinutes, a.GrantRole, a.Reason,
        a.SessionId, a.CreatedAt, a.ExpiresAt, a.DecidedAt, a.DecidedBy, a.Comment, a.ValidUntil, a.Uses, a.Settlement,
        a.Votes.OrderBy(v => v.At).Select(v => new ApprovalVoteInfo(v.Voter, v.Approve, v.Comment, v.At)).ToList());

    private static string Cut(string s, int max) => s.Length <= max ? s : s[..max];
}
