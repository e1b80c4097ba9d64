using System.Security.Cryptography;
using Airlock.ControlPlane.Data;
using Airlock.ControlPlane.Policies;
using Airlock.Sidecar.Policy;
using Airlock.Testing;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Airlock.ControlPlane.Tests;

public sealed class SnapshotCompilerOnSqliteTests() : SnapshotCompilerTests(StoreProvider.Sqlite);

public sealed class SnapshotCompilerOnPostgresTests() : SnapshotCompilerTests(StoreProvider.Postgres);

public abstract class SnapshotCompilerTests(StoreProvider provider) : StoreTestBase(provider)
{
    private readonly ECDiffieHellman _sealingKey = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);

    /// <summary>Creates a sidecar and gives it keys, as enrollment would.</summary>
    private async Task<Guid> EnrolledSidecarAsync(string name)
    {
        await CreateSidecarAsync(name);
        return await WithDb(async db =>
        {
            var sidecar = await db.Sidecars.SingleAsync(s => s.Name == name);
            sidecar.SealingPublicKey = _sealingKey.ExportSubjectPublicKeyInfo();
            sidecar.EnrolledAt = DateTimeOffset.UtcNow;
            await db.SaveChangesAsync();
            return sidecar.Id;
        });
    }

    private Task<SignedSnapshot?> CompileAsync(Guid sidecar) =>
        WithScope(sp => sp.GetRequiredService<SnapshotCompiler>().CompileAndSignAsync(sidecar, default));

    private async Task<IReadOnlyList<SnapshotKey>> KeysAsync() =>
        await WithScope(sp => sp.GetRequiredService<SnapshotSigningKeys>().GetPublishedKeysAsync(default));

    [Fact]
    public async Task A_sidecar_gets_only_its_targets_and_the_roles_agents_and_rules_that_reach_them()
    {
        var edge1 = await EnrolledSidecarAsync("edge-1");
        await CreateSidecarAsync("edge-2");
        var doc = PolicyStoreTests.Document.Replace("roles:", """
            - name: elsewhere
              sidecar: edge-2
              listenPort: 7000
              labels: {env: prod}
              upstream: {host: other.internal, credential: "env:X"}
            roles:
            - name: other-role
              grants: [{target: billing}]
            """).Replace("agents:", "agents:\n- {name: billing-bot, owner: alice, role: other-role}");
        var applied = await ApplyYamlAsync(doc);
        Assert.True(applied.Succeeded, string.Join("; ", applied.Errors));

        var signed = await CompileAsync(edge1);
        var check = SnapshotVerifier.Check(signed!, edge1.ToString(), await KeysAsync(), null, DateTimeOffset.UtcNow);
        Assert.Equal(SnapshotVerdict.Accepted, check.Verdict);
        var snapshot = check.Snapshot!;
        Assert.Equal(["billing", "orders"], snapshot.Targets.Select(t => t.Name));
        Assert.Equal(["other-role", "reader"], snapshot.Roles.Select(r => r.Name));
        // The selector env=prod reaches "orders" on this sidecar, not "elsewhere" on edge-2.
        Assert.Equal(["orders"], snapshot.Roles.Single(r => r.Name == "reader").Targets);
        Assert.Equal(["billing-bot", "ci-deploy"], snapshot.Agents.Select(a => a.Name));
        Assert.Equal(2, snapshot.Roles.Single(r => r.Name == "reader").Rules.Count);
    }

    [Fact]
    public async Task A_stored_credential_travels_sealed_to_the_sidecar_and_opens_there_only()
    {
        var edge1 = await EnrolledSidecarAsync("edge-1");
        Assert.True((await ApplyYamlAsync(PolicyStoreTests.Document)).Succeeded);
        var signed = await CompileAsync(edge1);
        Assert.DoesNotContain("hunter2", System.Text.Encoding.UTF8.GetString(signed!.Payload), StringComparison.Ordinal);
        var upstream = SnapshotCodec.Decode(signed.Payload).Targets.Single(t => t.Name == "orders").Upstream;
        Assert.Equal("hunter2-secret", CredentialSeal.Open(upstream.SealedCredential!, edge1.ToString(), _sealingKey));
        Assert.Null(upstream.CredentialReference);
    }

    [Fact]
    public async Task The_version_moves_only_when_the_content_changes()
    {
        var edge1 = await EnrolledSidecarAsync("edge-1");
        var first = await CompileAsync(edge1);
        Assert.Equal(1, first!.Version);
        Assert.Equal(1, (await CompileAsync(edge1))!.Version);

        Assert.True((await ApplyYamlAsync(PolicyStoreTests.Document)).Succeeded);
        var second = await CompileAsync(edge1);
        Assert.Equal(2, second!.Version);
        // Sealing happens once; recompiling the same policy keeps the hash and the version.
        var third = await CompileAsync(edge1);
        Assert.Equal((2L, second.ContentHash), (third!.Version, third.ContentHash));
    }

    [Fact]
    public async Task A_revoked_sidecar_gets_nothing()
    {
        var edge1 = await EnrolledSidecarAsync("edge-1");
        await WithScope(async sp =>
        {
            await sp.GetRequiredService<Sidecars.SidecarService>().RevokeAsync("edge-1", "test", default);
            return 0;
        });
        Assert.Null(await CompileAsync(edge1));
    }

    [Fact]
    public async Task A_rotated_key_is_published_before_it_signs()
    {
        var edge1 = await EnrolledSidecarAsync("edge-1");
        var before = await CompileAsync(edge1);
        var rotated = await WithScope(sp => sp.GetRequiredService<SnapshotSigningKeys>().RotateAsync(TimeSpan.FromHours(1), "test", default));
        var after = await CompileAsync(edge1);
        Assert.Equal(before!.KeyId, after!.KeyId);
        Assert.Contains(SnapshotCodec.Decode(after.Payload).SnapshotKeys, k => k.KeyId == rotated.Id);
        Assert.True(after.Version > before.Version);

        var immediate = await WithScope(sp => sp.GetRequiredService<SnapshotSigningKeys>().RotateAsync(TimeSpan.Zero, "test", default));
        Assert.Equal(immediate.Id, (await CompileAsync(edge1))!.KeyId);
    }

    [Fact]
    public void Grants_match_by_name_or_by_every_selector_label()
    {
        var target = new Target { Name = "orders", Kind = "postgres", UpstreamHost = "x", Labels = new() { ["env"] = "prod", ["team"] = "shop" } };
        Assert.True(SnapshotCompiler.Grants(new GrantData("orders", null), target));
        Assert.False(SnapshotCompiler.Grants(new GrantData("order", null), target));
        Assert.True(SnapshotCompiler.Grants(new GrantData(null, new() { ["env"] = "prod" }), target));
        Assert.True(SnapshotCompiler.Grants(new GrantData(null, new() { ["env"] = "prod", ["team"] = "shop" }), target));
        Assert.False(SnapshotCompiler.Grants(new GrantData(null, new() { ["env"] = "prod", ["team"] = "ops" }), target));
        Assert.False(SnapshotCompiler.Grants(new GrantData(null, new()), target));
    }
}
