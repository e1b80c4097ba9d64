using Airlock.ControlPlane.Data;
using Airlock.Sidecar.Policy;
using Airlock.Sidecar.Policy.Guardrails;
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
    string Reason);

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

        const string Note = "Functions the classifier does not know are judged as volatile here (the sidecar asks the target's catalog); EXECUTE of a statement prepared earlier in a session is judged as unknown.";
        if (!role.Grants.Any(g => SnapshotCompiler.Grants(g, target)))
        {
            var reason = $"role \"{role.Name}\" is not granted target \"{target.Name}\": the agent cannot connect to it";
            return new SimulateResponse(role.Name, target.Name, false, Decision.Name(DecisionAction.Block), "no-grant", reason, [], Note);
        }
        var rules = RuleSet.Compile(role.Name, SnapshotCompiler.RulesFor(role, [target.Name]));
        var judge = new SqlSessionJudge(readOnlySession: !rules.AllowsWrites);
        var judgement = judge.Judge(rules, request.Sql);
        var statements = judgement.Statements.Select(s => new SimulatedStatement(
            request.Sql.Substring(s.Statement.Start, s.Statement.Length),
            s.Statement.Command,
            StatementNames.Of(s.Statement.Class),
            StatementNames.Names(s.Statement.Flags),
            s.Statement.TablesRead,
            s.Statement.TablesWritten,
            s.Statement.Functions,
            Decision.Name(s.Decision.Action),
            s.Decision.DecidedBy,
            s.Decision.Reason)).ToList();
        return new SimulateResponse(role.Name, target.Name, !rules.AllowsWrites, Decision.Name(judgement.Decision.Action), judgement.Decision.DecidedBy,
            judgement.Decision.Reason, statements, Note);
    }
}
