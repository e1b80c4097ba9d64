using Airlock.ControlPlane.Policies;
using Airlock.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.EntityFrameworkCore;

namespace Airlock.ControlPlane.Tests;

public sealed class PolicyStoreOnSqliteTests() : PolicyStoreTests(StoreProvider.Sqlite);

public sealed class PolicyStoreOnPostgresTests() : PolicyStoreTests(StoreProvider.Postgres);

public abstract class PolicyStoreTests(StoreProvider provider) : StoreTestBase(provider)
{
    internal const string Document = """
        targets:
        - name: orders
          sidecar: edge-1
          listenPort: 6432
          labels: {env: prod, team: shop}
          upstream: {host: db.internal, database: orders, username: airlock, password: hunter2-secret}
        - name: billing
          sidecar: edge-1
          listenPort: 6433
          allowCleartextOnLoopback: true
          upstream: {host: billing.internal, credential: "file:/run/secrets/billing"}
        roles:
        - name: reader
          description: read-only
          grants: [{selector: {env: prod}}]
          rules:
          - {name: no-ddl, action: block, match: {classes: [ddl]}, message: no DDL here}
          - {name: approve, action: require_approval, match: {classes: [write], tables: [orders]}, approval: {mode: fail-fast, approvals: 2}}
        agents:
        - {name: ci-deploy, owner: alice, role: reader, description: deploys}
        trustedIssuers:
        - name: github
          issuer: https://token.actions.githubusercontent.com
          audiences: [https://github.com/acme]
          jwks: {keys: [{kid: gh-1, kty: RSA, alg: RS256, use: sig, n: sXch2nrmDdDhVkkbbiDI4HFQaF4hlJ6xTe96FZyqDQ1JsHDQ2CEsJT_X6NJW5z3sYw, e: AQAB}]}
          bindings:
          - name: api
            agent: ci-deploy
            claims: [{claim: repository, exact: acme/api}, {claim: ref, glob: "refs/heads/*"}]
        """;

    [Fact]
    public async Task Applying_a_document_creates_everything_and_audits_each_change()
    {
        await CreateSidecarAsync("edge-1");
        var result = await ApplyYamlAsync(Document);
        Assert.True(result.Succeeded);
        Assert.Equal(5, result.Changes.Count);
        Assert.All(result.Changes, c => Assert.Equal("create", c.Action));

        var audit = await WithDb(db => db.AuditLog.Where(a => a.Actor == "test" && a.EntityType != "sidecar").ToListAsync());
        Assert.Equal(5, audit.Count);
        // The stored password appears nowhere in the audit trail, only the redaction marker.
        Assert.DoesNotContain(audit, a => (a.After ?? "").Contains("hunter2", StringComparison.Ordinal));
        Assert.Contains(audit, a => (a.After ?? "").Contains("(redacted)", StringComparison.Ordinal));
        var targets = await WithDb(db => db.Targets.OrderBy(t => t.Name).Select(t => new { t.Name, t.AllowCleartextOnLoopback }).ToListAsync());
        Assert.Equal([("billing", true), ("orders", false)], targets.Select(t => (t.Name, t.AllowCleartextOnLoopback)));
    }

    [Fact]
    public async Task A_stored_credential_is_encrypted_at_rest_and_exported_as_stored()
    {
        await CreateSidecarAsync("edge-1");
        Assert.True((await ApplyYamlAsync(Document)).Succeeded);
        var target = await WithDb(db => db.Targets.SingleAsync(t => t.Name == "orders"));
        Assert.NotNull(target.CredentialProtected);
        Assert.DoesNotContain("hunter2", target.CredentialProtected, StringComparison.Ordinal);
        var exported = await ExportAsync();
        Assert.Equal("stored", exported.Targets!.Single(t => t.Name == "orders").Upstream!.Credential);
        Assert.Null(exported.Targets!.Single(t => t.Name == "orders").Upstream!.Password);
        Assert.Equal("file:/run/secrets/billing", exported.Targets!.Single(t => t.Name == "billing").Upstream!.Credential);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Export_then_apply_changes_nothing(bool yaml)
    {
        await CreateSidecarAsync("edge-1");
        Assert.True((await ApplyYamlAsync(Document)).Succeeded);
        var text = PolicyFormat.Write(await ExportAsync(), yaml);
        var (doc, error) = PolicyFormat.Parse<PolicyDocument>(text, yaml);
        Assert.Null(error);
        var again = await WithScope(sp => sp.GetRequiredService<PolicyStore>().ApplyAsync(doc!, "test", false, default));
        Assert.True(again.Succeeded, string.Join("; ", again.Errors));
        Assert.Empty(again.Changes);
        Assert.Equal(text, PolicyFormat.Write(await ExportAsync(), yaml));
    }

    [Fact]
    public async Task Applying_the_same_document_twice_is_idempotent_even_with_the_password()
    {
        await CreateSidecarAsync("edge-1");
        Assert.True((await ApplyYamlAsync(Document)).Succeeded);
        Assert.Empty((await ApplyYamlAsync(Document)).Changes);
    }

    [Fact]
    public async Task An_invalid_document_applies_nothing_at_all()
    {
        await CreateSidecarAsync("edge-1");
        Assert.True((await ApplyYamlAsync(Document)).Succeeded);
        var before = PolicyFormat.Write(await ExportAsync(), yaml: true);
        // One good change (description) and one bad (unknown owner): neither may land.
        var result = await ApplyYamlAsync(Document.Replace("description: read-only", "description: changed").Replace("owner: alice", "owner: nobody"));
        Assert.False(result.Succeeded);
        Assert.Contains(result.Errors, e => e.Path == "agents[0].owner");
        Assert.Equal(before, PolicyFormat.Write(await ExportAsync(), yaml: true));
    }

    [Fact]
    public async Task Omitted_entities_are_deleted_and_changed_ones_updated()
    {
        await CreateSidecarAsync("edge-1");
        Assert.True((await ApplyYamlAsync(Document)).Succeeded);
        var smaller = Document
            .Replace("- name: billing\n  sidecar: edge-1\n  listenPort: 6433\n  allowCleartextOnLoopback: true\n  upstream: {host: billing.internal, credential: \"file:/run/secrets/billing\"}\n", "")
            .Replace("description: read-only", "description: read-mostly");
        var result = await ApplyYamlAsync(smaller);
        Assert.True(result.Succeeded, string.Join("; ", result.Errors));
        Assert.Equal(
            new[] { ("delete", "target", "billing"), ("update", "role", "reader") },
            result.Changes.Select(c => (c.Action, c.EntityType, c.Name)).ToArray());
    }

    [Fact]
    public async Task A_dry_run_reports_changes_and_stores_nothing()
    {
        await CreateSidecarAsync("edge-1");
        var result = await ApplyYamlAsync(Document, dryRun: true);
        Assert.Equal(5, result.Changes.Count);
        Assert.Empty((await ExportAsync()).Targets!);
        Assert.Equal(0, await WithDb(db => db.AuditLog.CountAsync(a => a.Actor == "test" && a.EntityType != "sidecar")));
    }

    [Fact]
    public async Task A_change_notifies_snapshot_streams_and_no_change_does_not()
    {
        await CreateSidecarAsync("edge-1");
        var notifier = Services.GetRequiredService<PolicyChangeNotifier>();
        var generation = notifier.Generation;
        Assert.True((await ApplyYamlAsync(Document)).Succeeded);
        Assert.Equal(generation + 1, notifier.Generation);
        await ApplyYamlAsync(Document);
        Assert.Equal(generation + 1, notifier.Generation);
    }
}
