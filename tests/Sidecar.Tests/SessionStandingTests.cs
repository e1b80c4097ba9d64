using Airlock.Sidecar.Policy;

namespace Airlock.Sidecar.Tests;

public sealed class SessionStandingTests
{
    private static TargetPolicy Target(string name) =>
        new(name, "postgres", new Dictionary<string, string>(), 6432, new UpstreamPolicy("db", 5432, "app", "airlock", "prefer", null, null));

    private static PolicySnapshot Policy(IEnumerable<string> targets, IEnumerable<RolePolicy> roles, IEnumerable<AgentPolicy> agents) =>
        new("sc-1", "edge-1", targets.Select(Target).ToList(), roles.ToList(), agents.ToList(), []);

    private static readonly RolePolicy Rw = new("rw", ["pg", "pg-2"], []);
    private static readonly RolePolicy Limited = new("limited", ["pg-2"], []);
    private static readonly AgentPolicy Ci = new("a-1", "ci", "rw", true);

    public static TheoryData<string, PolicySnapshot, string?> Cases => new()
    {
        { "unchanged", Policy(["pg", "pg-2"], [Rw, Limited], [Ci]), null },
        { "another target removed", Policy(["pg"], [Rw, Limited], [Ci]), null },
        { "target removed", Policy(["pg-2"], [Rw, Limited], [Ci]), "target \"pg\" is no longer served by this sidecar" },
        { "agent removed", Policy(["pg", "pg-2"], [Rw, Limited], []), "the agent was removed" },
        { "agent disabled", Policy(["pg", "pg-2"], [Rw, Limited], [Ci with { Enabled = false }]), "agent \"ci\" was disabled" },
        { "agent renamed (same id)", Policy(["pg", "pg-2"], [Rw, Limited], [Ci with { Name = "ci-2" }]), null },
        { "moved to a role without the target", Policy(["pg", "pg-2"], [Rw, Limited], [Ci with { Role = "limited" }]), "agent \"ci\" (role \"limited\") is no longer granted target \"pg\"" },
        { "role lost the grant", Policy(["pg", "pg-2"], [Rw with { Targets = ["pg-2"] }], [Ci]), "agent \"ci\" (role \"rw\") is no longer granted target \"pg\"" },
        { "role removed", Policy(["pg", "pg-2"], [Limited], [Ci]), "agent \"ci\" (role \"rw\") is no longer granted target \"pg\"" },
        { "grant names differ only in case", Policy(["pg", "PG"], [Rw with { Targets = ["PG"] }], [Ci]), "agent \"ci\" (role \"rw\") is no longer granted target \"pg\"" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void A_session_goes_on_only_while_its_target_agent_and_grant_stand(string change, PolicySnapshot policy, string? expected)
    {
        _ = change;
        Assert.Equal(expected, SessionStanding.Check(policy, "a-1", "pg"));
    }

    /// <summary>Rules and masks are the role's the session was opened under: a move to another role, even one granting the target, ends it.</summary>
    [Fact]
    public void A_session_ends_when_its_agent_moves_to_another_role()
    {
        var moved = Policy(["pg", "pg-2"], [Rw, Limited with { Targets = ["pg", "pg-2"] }], [Ci with { Role = "limited" }]);
        Assert.Equal("agent \"ci\" moved from role \"rw\" to \"limited\"; connect again", SessionStanding.Check(moved, "a-1", "pg", openedAs: "rw"));
        Assert.Null(SessionStanding.Check(moved, "a-1", "pg", openedAs: "limited"));
    }
}
