using Airlock.ControlPlane.Data;
using Airlock.Sidecar.Policy;
using Airlock.Sidecar.Policy.Guardrails;
using Airlock.Sidecar.Policy.Masking;
using Airlock.Sidecar.Protocols.Sql;
using Microsoft.EntityFrameworkCore;

namespace Airlock.ControlPlane.Policies;

/// <summary>"What would happen if agent X (or role R) sent this SQL to target Y": the sidecar's own classifier and evaluator, on the stored policy.</summary>
public sealed record SimulateRequest(string? Agent, string? Role, string? Target, string? Sql);

public sealed record SimulatedStatement(
    string Text,
    string Command,
    string Classification,
    IReadOnlyList<string> Flags,
    IReadOnlyList<string> TablesRead,
    IReadOnlyList<string> TablesWritten,
    IReadOnlyList<string> Functions,
    string Decision,
    string Rule,
    string Reason,
    IReadOnlyList<SimulatedMask>? Masked = null);

/// <summary>A column the statement would return masked: <c>table.column</c> as the rule names it, the rule and its strategy.</summary>
public sealed record SimulatedMask(string Column, string Rule, string Strategy);

/// <param name="Decision">The message's decision: a text with one refused statement runs nothing.</param>
/// <param name="ReadOnlySession">The role allows no writes on the target, so its sessions run read-only upstream.</param>
/// <param name="Note">What the simulator cannot know (the target's catalog for unknown functions; prepared statements of a live session).</param>
public sealed record SimulateResponse(
    string Role,
    string Target,
    bool ReadOnlySession,
    string Decision,
    string Rule,
    string Reason,
    IReadOnlyList<SimulatedStatement> Statements,
    string Note);

public sealed class SimulationException(string message) : Exception(message);

/// <summary>Runs the simulator: the role's rules on the target as a sidecar's snapshot would carry them (baseline first), judged by <see cref="SqlSessionJudge"/>.</summary>
public sealed class Simulator(AirlockDbContext db)
{
    /// <summary>The rule columns a statement returns as plain output columns: named ones, and for a star every masked column of the tables it reads.</summary>
    private static List<SimulatedMask>? MaskedOutputs(MaskRules rules, SqlStatement statement, IReadOnlyList<string>? outputs)
    {
        if (outputs is not { Count: > 0 })
            return null;
        var tables = statement.TablesRead.Concat(statement.TablesWritten).Select(t => t[(t.LastIndexOf('.') + 1)..]).ToHashSet(StringComparer.OrdinalIgnoreCase);
        var result = new List<SimulatedMask>();
        foreach (var column in rules.Columns.Where(c => tables.Contains(c.Table)))
        {
            var shown = outputs.Any(o => o == "*" || (o.EndsWith(".*", StringComparison.Ordinal)) || string.Equals(o, column.Column, StringComparison.OrdinalIgnoreCase));
            if (shown && !result.Any(r => r.Column == $"{column.Table}.{column.Column}"))
                result.Add(new SimulatedMask($"{column.Table}.{column.Column}", column.Mask.Rule, column.Mask.Strategy.ToString().ToLowerInvariant()));
        }
        return result.Count == 0 ? null : result;
    }

    public const int MaxSqlChars = 1024 * 1024;

    public async Task<SimulateResponse> SimulateAsync(SimulateRequest request, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(request.Sql))
            throw new SimulationException("give the SQL text to judge ('sql')");
        if (request.Sql.Length > MaxSqlChars)
            throw new SimulationException($"the SQL text is over {MaxSqlChars} characters");
        if (string.IsNullOrWhiteSpace(request.Target))
            throw new SimulationException("name the target ('target')");
        if ((request.Agent is null) == (request.Role is null))
            throw new SimulationException("name exactly one of 'agent' or 'role'");

        string roleName;
        if (request.Agent is { } agentName)
        {
            var agent = await db.Agents.AsNoTracking().Include(a => a.Role).FirstOrDefaultAsync(a => a.Name == agentName, ct)
                ?? throw new SimulationException($"agent '{agentName}' does not exist");
            roleName = agent.Role?.Name ?? throw new SimulationException($"agent '{agentName}' has no role, so it cannot connect anywhere");
        }
        else
        {
            roleName = request.Role!;
        }
        var role = await db.Roles.AsNoTracking().Include(r => r.Rules).FirstOrDefaultAsync(r => r.Name == roleName, ct)
            ?? throw new SimulationException($"role '{roleName}' does not exist");
        var target = await db.Targets.AsNoTracking().FirstOrDefaultAsync(t => t.Name == request.Target, ct)
            ?? throw new SimulationException($"target '{request.Target}' does not exist");
        return Judge(role, target, request.Sql);
    }

    /// <summary>
    /// Judges SQL with a role that is not saved (the Roles page's form as it stands), against a stored
    /// target. The draft must be valid: the caller validates it with the rest of the policy first.
    /// </summary>
    public async Task<SimulateResponse> SimulateDraftAsync(RoleSpec draft, string? targetName, string? sql, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(sql))
            throw new SimulationException("give the SQL text to judge");
        if (sql.Length > MaxSqlChars)
            throw new SimulationException($"the SQL text is over {MaxSqlChars} characters");
        var target = await db.Targets.AsNoTracking().FirstOrDefaultAsync(t => t.Name == targetName, ct)
            ?? throw new SimulationException($"target '{targetName}' does not exist");
        return Judge(PolicyStore.ToUnsavedEntity(draft), target, sql);
    }

    private static SimulateResponse Judge(Role role, Target target, string sql)
    {
        const string Note = "Functions the classifier does not know are judged as volatile here (the sidecar asks the target's catalog); EXECUTE of a statement prepared earlier in a session is judged as unknown.";
        if (!role.Grants.Any(g => SnapshotCompiler.Grants(g, target)))
        {
            var reason = $"role \"{role.Name}\" is not granted target \"{target.Name}\": the agent cannot connect to it";
            return new SimulateResponse(role.Name, target.Name, false, Decision.Name(DecisionAction.Block), "no-grant", reason, [], Note);
        }
        var policyRules = SnapshotCompiler.RulesFor(role, [target.Name]);
        var rules = RuleSet.Compile(role.Name, policyRules);
        var judge = new SqlSessionJudge(readOnlySession: !rules.AllowsWrites);
        var judgement = judge.Judge(rules, sql);
        // Masking as far as the rules' own names tell (the sidecar also resolves the target's catalog:
        // inheritance children, views and functions over masked tables).
        var maskRules = MaskRules.Compile(policyRules.Where(r => r.Targets.Count == 0 || r.Targets.Contains(target.Name)));
        var masked = maskRules.IsEmpty ? null : MaskedTarget.Build(maskRules, [], [], []);
        var statements = judgement.Statements.Select(s =>
        {
            var text = sql.Substring(s.Statement.Start, s.Statement.Length);
            var decision = s.Decision;
            List<SimulatedMask>? columns = null;
            if (masked is not null && decision.Allowed)
            {
                var verdict = MaskingJudge.Judge(masked, role.Name, text, [s.Statement with { Start = 0 }]);
                if (verdict.Refusal is { } refusal)
                    decision = refusal;
                else
                    columns = MaskedOutputs(maskRules, s.Statement, SqlMaskRoutes.Check(text, s.Statement with { Start = 0 }, masked.Schema).Outputs);
            }
            return new SimulatedStatement(text, s.Statement.Command, StatementNames.Of(s.Statement.Class), StatementNames.Names(s.Statement.Flags),
                s.Statement.TablesRead, s.Statement.TablesWritten, s.Statement.Functions, Decision.Name(decision.Action), decision.DecidedBy, decision.Reason, columns);
        }).ToList();
        var refused = statements.FirstOrDefault(s => s.Decision != Decision.Name(DecisionAction.Allow));
        var (messageDecision, messageRule, messageReason) = judgement.Decision.Allowed && refused is not null
            ? (refused.Decision, refused.Rule, refused.Reason)
            : (Decision.Name(judgement.Decision.Action), judgement.Decision.DecidedBy, judgement.Decision.Reason);
        return new SimulateResponse(role.Name, target.Name, !rules.AllowsWrites, messageDecision, messageRule, messageReason, statements,
            masked is null ? Note : Note + " Masking is shown from the rules' column names; the sidecar also follows the catalog (inheritance children, views and functions over masked tables).");
    }
}
