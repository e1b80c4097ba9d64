namespace Airlock.Sidecar.Policy;

/// <summary>
/// Whether a live session may go on under a newly applied snapshot. Access is checked when a session
/// opens, and again whenever the policy changes: a session must not outlive the grant it was opened
/// under (fail closed). Pure: the gateway ends the session with the reason.
/// </summary>
public static class SessionStanding
{
    /// <summary>Why the session of agent <paramref name="agentId"/> on <paramref name="target"/> must end; null when it may go on.</summary>
    /// <param name="now">When a temporary grant must still be in force (its expiry is kept by the caller's clock).</param>
    /// <param name="openedAs">The role the session was opened under: a session whose agent moved to another role ends (it
    /// would go on judged by the old role's rules and masks); the agent connects again under the new one.</param>
    public static string? Check(PolicySnapshot policy, string agentId, string target, DateTimeOffset? now = null, string? openedAs = null)
    {
        if (!policy.Targets.Any(t => t.Name == target))
            return $"target \"{target}\" is no longer served by this sidecar";
        var agent = policy.Agents.FirstOrDefault(a => a.Id == agentId);
        if (agent is null)
            return "the agent was removed";
        if (!agent.Enabled)
            return $"agent \"{agent.Name}\" was disabled";
        var role = policy.Roles.FirstOrDefault(r => r.Name == agent.Role);
        if ((role is null || !role.Targets.Contains(target, StringComparer.Ordinal)) && TemporaryGrant.Active(policy, agentId, target, now ?? DateTimeOffset.UtcNow) is null)
            return $"agent \"{agent.Name}\" (role \"{agent.Role}\") is no longer granted target \"{target}\"";
        if (openedAs is not null && !string.Equals(agent.Role, openedAs, StringComparison.Ordinal))
            return $"agent \"{agent.Name}\" moved from role \"{openedAs}\" to \"{agent.Role}\"; connect again";
        return null;
    }
}
