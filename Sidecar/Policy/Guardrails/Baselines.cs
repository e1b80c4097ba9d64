using Airlock.Sidecar.Protocols.Sql;

namespace Airlock.Sidecar.Policy.Guardrails;

/// <summary>
/// Named rule templates a role starts from (<c>baseline: agent-safe</c> in the policy document); the
/// role's own rules follow them and can extend them (an <c>allow</c> for writes) but never loosen a
/// baseline <c>block</c>, since the most restrictive match wins.
/// </summary>
public static class Baselines
{
    public const string AgentSafe = "agent-safe";

    public static IReadOnlyList<string> All { get; } = [AgentSafe];

    /// <summary>
    /// <c>agent-safe</c>:
    /// <list type="bullet">
    /// <item>reads are allowed; nothing else is (no DDL, and writes only when the role adds an allow rule for them);</item>
    /// <item>blocked outright: role, privilege and server administration (classes dcl and admin), and
    /// every escape hatch whatever its class — role and session-authorization changes, search_path and
    /// other settings, server-side files, programs, network and large-object files, backend signalling,
    /// advisory and table locks, replication and WAL, procedural code and dynamic SQL, routines,
    /// triggers, rules, extensions;</item>
    /// <item><c>UPDATE</c>/<c>DELETE</c> without a real filter, and <c>TRUNCATE</c>, are blocked, so a role
    /// that allows writes still cannot change every row at once.</item>
    /// </list>
    /// </summary>
    public static IReadOnlyList<RulePolicy> AgentSafeRules { get; } =
    [
        Rule("agent-safe/reads", RuleActions.Allow, classes: ["read"], message: null),
        Rule("agent-safe/no-administration", RuleActions.Block, classes: ["dcl", "admin"],
            message: "the agent-safe baseline allows no role, privilege, setting or server administration"),
        Rule("agent-safe/no-escape-hatches", RuleActions.Block, flags:
            [
                StatementFlags.RoleChange, StatementFlags.SessionAuthorization, StatementFlags.SearchPathChange, StatementFlags.SettingChange,
                StatementFlags.LexerSetting, StatementFlags.AlterSystem, StatementFlags.Load, StatementFlags.CopyProgram, StatementFlags.CopyServerFile,
                StatementFlags.FileAccess, StatementFlags.NetworkAccess, StatementFlags.LargeObjectFile, StatementFlags.BackendSignal,
                StatementFlags.AdvisoryLock, StatementFlags.Lock, StatementFlags.ReplicationOrWal, StatementFlags.DynamicSql,
                StatementFlags.CreateExtension, StatementFlags.CreateRoutine, StatementFlags.CreateTrigger, StatementFlags.CreateRule,
                StatementFlags.CreateEventTrigger, StatementFlags.RoleStatement, StatementFlags.Grant,
            ],
            message: "the agent-safe baseline blocks server files, programs, network, settings, role changes, locks and procedural code"),
        Rule("agent-safe/filtered-writes", RuleActions.Block, flags: [StatementFlags.UnfilteredWrite, StatementFlags.Truncate],
            message: "UPDATE and DELETE need a WHERE clause that really filters (and TRUNCATE is never one)"),
    ];

    public const string ReadOnlyDelegation = "read-only-delegation";

    /// <summary>
    /// The role as a person who lends read access only (an Auditor's delegation) lets an agent use it: every
    /// write, schema change, privilege or administration statement, and everything the classifier cannot read
    /// (procedural code could write from inside), blocked before anything else is weighed
    /// (the most restrictive rule wins), so the person's rights narrow the role and never widen it.
    /// </summary>
    public static RolePolicy ReadOnly(RolePolicy role) =>
        role with { Rules = [Rule(ReadOnlyDelegation, RuleActions.Block, classes: ["write", "ddl", "dcl", "admin", "unknown"], message: "the person this agent acts for lends read access only"), .. role.Rules] };

    /// <summary>The rules of a named baseline; null for an unknown name.</summary>
    public static IReadOnlyList<RulePolicy>? Rules(string name) => name == AgentSafe ? AgentSafeRules : null;

    private static RulePolicy Rule(string name, string action, string[]? classes = null, StatementFlags[]? flags = null, string? message = null) =>
        new(name, action, [], new RuleMatch(classes ?? [], [], [], null, null, flags?.Select(StatementNames.Of).ToArray()), message, null, null);
}
