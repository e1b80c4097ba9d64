using System.Net;
using System.Text.Json;
using Airlock.Testing;
using Npgsql;

namespace Airlock.EndToEnd.Tests.Gateway;

/// <summary>
/// A session does not outlive the access it was opened under: when a new policy removes its target,
/// moves its agent to a role without the target, or disables the agent, the session ends with a
/// FATAL naming why — and sessions the change does not touch go on.
/// </summary>
public sealed class AccessWithdrawalTests : IAsyncLifetime
{
    private GatewayHarness _h = default!;
    private int _version = 2;

    public async Task InitializeAsync() => _h = await GatewayHarness.StartAsync();

    public async Task DisposeAsync() => await _h.DisposeAsync();

    private async Task<NpgsqlConnection> OpenAsync(string target, string agent)
    {
        var token = agent == "ci" ? _h.Token : await GatewayHarness.TokenAsync(_h.ControlPlane, agent);
        var connection = new NpgsqlConnection(_h.SidecarConnectionStringForTarget(target, token));
        await connection.OpenAsync();
        Assert.Equal(1, await new NpgsqlCommand("SELECT 1", connection).ExecuteScalarAsync());
        return connection;
    }

    private async Task ApplyAsync(string policy)
    {
        var put = await _h.ControlPlane.PutPolicyAsync(policy);
        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        await _h.Sidecar.WaitForVersionAsync(++_version);
    }

    /// <summary>Runs <c>SELECT 1</c> until the session is gone; returns the FATAL the agent got.</summary>
    internal static async Task<PostgresException> EndedAsync(NpgsqlConnection connection)
    {
        PostgresException? fatal = null;
        await PolicySyncTests.Eventually(async () =>
        {
            try
            {
                await new NpgsqlCommand("SELECT 1", connection).ExecuteScalarAsync();
                return false;
            }
            catch (PostgresException e)
            {
                fatal = e;
            }
            catch (NpgsqlException e) when (e.InnerException is PostgresException inner)
            {
                fatal = inner;
            }
            return true;
        }, seconds: 20);
        return fatal!;
    }

    [Fact]
    public async Task Removing_the_target_the_grant_or_the_agent_ends_exactly_the_sessions_it_concerns()
    {
        await using var onMd5 = await OpenAsync("pg-md5", "ci");
        await using var onPg = await OpenAsync("pg", "ci");
        await using var stranger = await OpenAsync("pg-clear", "stranger");

        // 1. Target pg-md5 leaves the policy: its session ends, the others go on.
        var withoutMd5 = _h.Policy
            .Replace("{target: pg-md5}, ", "", StringComparison.Ordinal)
            .Replace(GatewayHarness.TargetBlock(_h.Policy, "pg-md5"), "", StringComparison.Ordinal);
        await ApplyAsync(withoutMd5);
        var gone = await EndedAsync(onMd5);
        Assert.Equal("57P01", gone.SqlState);
        Assert.Contains("target \"pg-md5\" is no longer served by this sidecar", gone.MessageText, StringComparison.Ordinal);
        Assert.Equal(1, await new NpgsqlCommand("SELECT 1", onPg).ExecuteScalarAsync());

        // 2. Agent ci moves to a role without pg: its session on pg ends.
        var ciLimited = withoutMd5.Replace("{name: ci, owner: admin, role: rw}", "{name: ci, owner: admin, role: limited}", StringComparison.Ordinal);
        await ApplyAsync(ciLimited);
        var regranted = await EndedAsync(onPg);
        Assert.Equal("57P01", regranted.SqlState);
        Assert.Contains("agent \"ci\" (role \"limited\") is no longer granted target \"pg\"", regranted.MessageText, StringComparison.Ordinal);
        Assert.Equal(1, await new NpgsqlCommand("SELECT 1", stranger).ExecuteScalarAsync());

        // 3. Agent stranger is disabled: its session ends.
        await ApplyAsync(ciLimited.Replace("{name: stranger, owner: admin, role: limited}", "{name: stranger, owner: admin, role: limited, enabled: false}", StringComparison.Ordinal));
        var disabled = await EndedAsync(stranger);
        Assert.Equal("57P01", disabled.SqlState);
        Assert.Contains("agent \"stranger\" was disabled", disabled.MessageText, StringComparison.Ordinal);

        // The recording says why each ended.
        await PolicySyncTests.Eventually(async () =>
        {
            var sessions = JsonDocument.Parse(await _h.ControlPlane.Api.GetStringAsync("/api/v1/sessions?status=ended")).RootElement;
            var items = sessions.ValueKind == JsonValueKind.Array ? sessions : sessions.GetProperty("items");
            var reasons = items.EnumerateArray().Select(s => s.GetProperty("endReason").GetString() ?? "").ToList();
            return reasons.Count(r => r.StartsWith("access withdrawn: ", StringComparison.Ordinal)) == 3;
        }, seconds: 20);
    }
}
