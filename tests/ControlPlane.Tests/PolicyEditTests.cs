using System.Text.Json.Nodes;
using Airlock.ControlPlane.Policies;
using Airlock.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Airlock.ControlPlane.Tests;

/// <summary>JSON Merge Patch as RFC 7396's appendix lists it, plus the cases the policy endpoints lean on.</summary>
public sealed class MergePatchTests
{
    [Theory]
    [InlineData("""{"a":"b"}""", """{"a":"c"}""", """{"a":"c"}""")]
    [InlineData("""{"a":"b"}""", """{"b":"c"}""", """{"a":"b","b":"c"}""")]
    [InlineData("""{"a":"b"}""", """{"a":null}""", """{}""")]
    [InlineData("""{"a":"b","b":"c"}""", """{"a":null}""", """{"b":"c"}""")]
    [InlineData("""{"a":["b"]}""", """{"a":"c"}""", """{"a":"c"}""")]
    [InlineData("""{"a":"c"}""", """{"a":["b"]}""", """{"a":["b"]}""")]
    [InlineData("""{"a":{"b":"c"}}""", """{"a":{"b":"d","c":null}}""", """{"a":{"b":"d"}}""")]
    [InlineData("""{"a":[{"b":"c"}]}""", """{"a":[1]}""", """{"a":[1]}""")]
    [InlineData("""["a","b"]""", """["c","d"]""", """["c","d"]""")]
    [InlineData("""{"a":"b"}""", """["c"]""", """["c"]""")]
    [InlineData("""{"e":null}""", """{"a":1}""", """{"e":null,"a":1}""")]
    [InlineData("""[1,2]""", """{"a":"b","c":null}""", """{"a":"b"}""")]
    [InlineData("""{}""", """{"a":{"bb":{"ccc":null}}}""", """{"a":{"bb":{}}}""")]
    // A target's upstream: one member changes, its siblings stay.
    [InlineData("""{"name":"db","upstream":{"host":"a","port":5432}}""", """{"upstream":{"port":6543}}""", """{"name":"db","upstream":{"host":"a","port":6543}}""")]
    public void Applies_as_rfc_7396_says(string target, string patch, string expected)
    {
        var result = MergePatch.Apply(JsonNode.Parse(target), JsonNode.Parse(patch));
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(expected), result), result?.ToJsonString());
    }

    [Fact]
    public void Leaves_its_inputs_alone()
    {
        var target = JsonNode.Parse("""{"a":{"b":1}}""");
        var patch = JsonNode.Parse("""{"a":{"b":2}}""");
        MergePatch.Apply(target, patch);
        Assert.Equal("""{"a":{"b":1}}""", target!.ToJsonString());
        Assert.Equal("""{"a":{"b":2}}""", patch!.ToJsonString());
    }
}

public sealed class PolicyErrorPathTests
{
    private static readonly PolicyDocument _doc = new()
    {
        Targets = [new TargetSpec { Name = "orders" }, new TargetSpec { Name = "billing" }],
        Roles = [new RoleSpec { Name = "reader" }],
        Agents = [new AgentSpec { Name = "ci" }, new AgentSpec { Name = null }],
        TrustedIssuers = [new TrustedIssuerSpec { Name = "github" }],
    };

    [Theory]
    [InlineData(PolicyObjectKind.Target, "billing", "targets[1].upstream.host", "upstream.host")]
    [InlineData(PolicyObjectKind.Target, "billing", "targets[1]", "$")]
    [InlineData(PolicyObjectKind.Target, "billing", "targets[0].listenPort", "target 'orders'.listenPort")]
    [InlineData(PolicyObjectKind.Role, "reader", "roles[0].rules[2].match.pattern", "rules[2].match.pattern")]
    [InlineData(PolicyObjectKind.Role, "reader", "agents[0].role", "agent 'ci'.role")]
    [InlineData(PolicyObjectKind.Agent, "ci", "agents[0].owner", "owner")]
    [InlineData(PolicyObjectKind.Agent, "ci", "agents[1].name", "agents[1].name")] // a nameless entry keeps its index
    [InlineData(PolicyObjectKind.Agent, "ci", "agents[7].name", "agents[7].name")] // out of range: left as it was
    [InlineData(PolicyObjectKind.TrustedIssuer, "github", "trustedIssuers[0].bindings[0].agent", "bindings[0].agent")]
    [InlineData(PolicyObjectKind.Agent, "ci", "trustedIssuers[0].bindings[0].agent", "trusted issuer 'github'.bindings[0].agent")]
    [InlineData(PolicyObjectKind.Agent, "ci", "line 3, column 4", "line 3, column 4")]
    [InlineData(PolicyObjectKind.Agent, "ci", "$", "$")]
    public void Paths_are_told_from_the_edited_objects_point_of_view(PolicyObjectKind kind, string name, string path, string expected) =>
        Assert.Equal(expected, PolicyErrorPaths.ForObject([new PolicyError(path, "m")], _doc, kind, name).Single().Path);
}

public sealed class PolicyEditsOnSqliteTests() : PolicyEditTests(StoreProvider.Sqlite);

public sealed class PolicyEditsOnPostgresTests() : PolicyEditTests(StoreProvider.Postgres);

/// <summary>One object's edit: one transaction, based on a version, never a silent overwrite.</summary>
public abstract class PolicyEditTests(StoreProvider provider) : StoreTestBase(provider)
{
    private Task<EditResult> EditAgentAsync(string actor, string name, long? basedOn, Action<AgentSpec> change) =>
        WithScope(sp => sp.GetRequiredService<PolicyStore>().EditAsync(new PolicyEdit(PolicyObjectKind.Agent, name, basedOn, doc =>
        {
            if (doc.Agents!.FirstOrDefault(a => a.Name == name) is not { } agent)
                return new EditRefusal(EditRefusalKind.NotFound, name);
            change(agent);
            return null;
        }), actor, default));

    private Task<PolicyObjectVersion> VersionAsync(string name) =>
        WithScope(sp => sp.GetRequiredService<PolicyStore>().VersionOfAsync(PolicyObjectKind.Agent, name, default));

    private async Task SeedAsync(int agents)
    {
        await CreateSidecarAsync("edge-1");
        var yaml = "roles:\n- {name: reader, grants: [{selector: {env: prod}}]}\nagents:\n"
            + string.Concat(Enumerable.Range(0, agents).Select(i => $"- {{name: bot-{i}, owner: alice, role: reader}}\n"));
        Assert.True((await ApplyYamlAsync(yaml)).Succeeded);
    }

    [Fact]
    public async Task An_edit_based_on_the_current_version_applies_and_moves_the_version()
    {
        await SeedAsync(1);
        var before = await VersionAsync("bot-0");
        Assert.True(before.Version > 0);
        Assert.Equal("test", before.Actor);
        Assert.Equal("create", before.Action);

        var result = await EditAgentAsync("bob", "bot-0", before.Version, a => a.Description = "nightly");
        Assert.Equal(EditStatus.Applied, result.Status);
        Assert.True(result.Version.Version > before.Version);
        Assert.Equal(("bob", "update"), (result.Version.Actor, result.Version.Action));
        Assert.Equal("nightly", (await ExportAsync()).Agents!.Single().Description);
    }

    [Fact]
    public async Task A_stale_edit_is_a_conflict_that_names_who_changed_what_and_changes_nothing()
    {
        await SeedAsync(1);
        var read = (await VersionAsync("bot-0")).Version;
        Assert.Equal(EditStatus.Applied, (await EditAgentAsync("bob", "bot-0", read, a => a.Description = "bob's")).Status);

        var stale = await EditAgentAsync("carol", "bot-0", read, a => a.Description = "carol's");
        Assert.Equal(EditStatus.Conflict, stale.Status);
        Assert.Equal(("bob", "update"), (stale.Version.Actor, stale.Version.Action));
        Assert.StartsWith("bob changed it at ", stale.Version.Describe(), StringComparison.Ordinal);
        Assert.Equal("bob's", (await ExportAsync()).Agents!.Single().Description);
    }

    [Fact]
    public async Task Editing_a_deleted_object_is_a_conflict_saying_it_was_deleted()
    {
        await SeedAsync(2);
        var read = (await VersionAsync("bot-1")).Version;
        Assert.Equal(EditStatus.Applied, (await WithScope(sp => sp.GetRequiredService<PolicyStore>().EditAsync(
            new PolicyEdit(PolicyObjectKind.Agent, "bot-1", null, doc => { doc.Agents!.RemoveAll(a => a.Name == "bot-1"); return null; }), "dave", default))).Status);
        var stale = await EditAgentAsync("carol", "bot-1", read, a => a.Description = "x");
        Assert.Equal(EditStatus.Conflict, stale.Status);
        Assert.Contains("dave deleted it", stale.Version.Describe(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Parallel_edits_of_different_objects_all_land()
    {
        // Each edit reads and writes the whole document; were the read outside the writers' turn,
        // a later write would put back what an earlier one changed.
        await SeedAsync(8);
        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(i =>
            Task.Run(() => EditAgentAsync($"admin-{i}", $"bot-{i}", null, a => a.Description = $"edited by {i}"))));
        Assert.All(results, r => Assert.Equal(EditStatus.Applied, r.Status));
        var agents = (await ExportAsync()).Agents!;
        for (var i = 0; i < 8; i++)
            Assert.Equal($"edited by {i}", agents.Single(a => a.Name == $"bot-{i}").Description);
    }

    [Fact]
    public async Task Of_parallel_edits_based_on_one_version_exactly_one_lands()
    {
        await SeedAsync(1);
        var read = (await VersionAsync("bot-0")).Version;
        var results = await Task.WhenAll(Enumerable.Range(0, 6).Select(i =>
            Task.Run(() => EditAgentAsync($"admin-{i}", "bot-0", read, a => a.Description = $"edited by {i}"))));
        var applied = Assert.Single(results, r => r.Status == EditStatus.Applied);
        Assert.Equal(5, results.Count(r => r.Status == EditStatus.Conflict));
        Assert.Equal($"edited by {applied.Version.Actor![6..]}", (await ExportAsync()).Agents!.Single().Description);
    }

    [Fact]
    public async Task An_invalid_edit_reports_paths_inside_the_object_and_applies_nothing()
    {
        await SeedAsync(1);
        var result = await EditAgentAsync("bob", "bot-0", null, a => { a.Role = "nope"; a.Owner = "nobody"; });
        Assert.Equal(EditStatus.Invalid, result.Status);
        Assert.Equal(["role", "owner"], result.Errors.Select(e => e.Path));
        Assert.Equal("reader", (await ExportAsync()).Agents!.Single().Role);
    }

    [Fact]
    public async Task A_stored_password_is_not_sent_to_a_moved_or_weakened_upstream_without_being_given_again()
    {
        await CreateSidecarAsync("edge-1");
        Assert.True((await ApplyYamlAsync("targets:\n- {name: orders, sidecar: edge-1, listenPort: 6432, upstream: {host: db.internal, tls: require, password: s3cret-pw}}")).Succeeded);
        Task<EditResult> EditTargetAsync(Action<UpstreamSpec> change) => WithScope(sp => sp.GetRequiredService<PolicyStore>().EditAsync(
            new PolicyEdit(PolicyObjectKind.Target, "orders", null, doc => { change(doc.Targets!.Single().Upstream!); return null; }), "bob", default));

        foreach (var change in new Action<UpstreamSpec>[] { u => u.Host = "attacker.example", u => u.Port = 6543, u => u.Tls = "disable", u => u.Auth = ["password"] })
        {
            var moved = await EditTargetAsync(change);
            Assert.Equal(EditStatus.Invalid, moved.Status);
            Assert.Equal("upstream.password", Assert.Single(moved.Errors).Path);
        }
        // Another sidecar would get the password sealed to its key: that is moving it too.
        await CreateSidecarAsync("edge-2");
        var elsewhere = await WithScope(sp => sp.GetRequiredService<PolicyStore>().EditAsync(
            new PolicyEdit(PolicyObjectKind.Target, "orders", null, doc => { doc.Targets!.Single().Sidecar = "edge-2"; return null; }), "bob", default));
        Assert.Equal(EditStatus.Invalid, elsewhere.Status);
        Assert.Equal("upstream.password", Assert.Single(elsewhere.Errors).Path);
        Assert.Equal(EditStatus.Applied, (await EditTargetAsync(u => u.Database = "orders2")).Status); // the same server: fine
        Assert.Equal(EditStatus.Applied, (await EditTargetAsync(u => { u.Host = "db2.internal"; u.Password = "s3cret-pw"; })).Status);
        Assert.Equal("db2.internal", (await ExportAsync()).Targets!.Single().Upstream!.Host);
        // Moving while giving up the stored password for a reference sends nothing stored anywhere.
        Assert.Equal(EditStatus.Applied, (await EditTargetAsync(u => { u.Host = "db3.internal"; u.Credential = "env:ORDERS_PW"; })).Status);
    }

    [Fact]
    public async Task A_whole_document_based_on_an_old_version_is_refused()
    {
        await SeedAsync(1);
        var store = () => Services.CreateScope().ServiceProvider.GetRequiredService<PolicyStore>();
        var read = await store().DocumentVersionAsync(default);
        var doc = await ExportAsync();
        Assert.Equal(EditStatus.Applied, (await EditAgentAsync("bob", "bot-0", null, a => a.Description = "bob's")).Status);
        doc.Agents![0].Description = "from an old export";
        var (result, conflict, _) = await store().ApplyAsync(doc, "carol", dryRun: false, basedOn: read.Version, default);
        Assert.Null(result);
        Assert.Equal("bob", conflict!.Actor);
        Assert.Equal("bob's", (await ExportAsync()).Agents!.Single().Description);
    }
}
