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
        var connection = new NpgsqlConnection(_h.SidecarConnectionStringForTarget(target, token, agent));
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

    /// <summary>
    /// Runs <c>SELECT 1</c> until the session is gone; returns the FATAL the agent got. A statement may be refused
    /// (an ERROR) in the moment between the new policy's rules applying and the re-check ending the session: the
    /// session is still there then, so it tries again.
    /// </summary>
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
            catch (PostgresException e) when (e.InvariantSeverity == "ERROR")
            {
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
    public async Task A_session_whose_agent_stopped_reading_still_ends_and_frees_its_backend()
    {
        // The agent asks for a large result and stops reading after the first row: the socket
        // buffers fill and the sidecar's write to the agent blocks.
        var stuck = await OpenAsync("pg", "ci");
        var backend = stuck.ProcessID;
        var command = new NpgsqlCommand("SELECT g, repeat('x', 1000) FROM generate_series(1, 10000000) g", stuck);
        var reader = await command.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        await using var direct = new NpgsqlConnection(_h.DirectConnectionString);
        await direct.OpenAsync();
        async Task<bool> BackendAliveAsync() =>
            (long)(await new NpgsqlCommand($"SELECT count(*) FROM pg_stat_activity WHERE pid = {backend}", direct).ExecuteScalarAsync())! == 1;
        await Task.Delay(500);
        Assert.True(await BackendAliveAsync());

        // Disabling the agent ends the session: the blocked write is given up after its grace
        // period, and the sidecar closes the target connection, so the backend goes too.
        await ApplyAsync(_h.Policy.Replace("{name: ci, owner: admin, role: rw}", "{name: ci, owner: admin, role: rw, enabled: false}", StringComparison.Ordinal));
        await PolicySyncTests.Eventually(async () => !await BackendAliveAsync(), seconds: 20);
        await PolicySyncTests.Eventually(async () =>
        {
            var sessions = JsonDocument.Parse(await _h.ControlPlane.Api.GetStringAsync("/api/v1/sessions?status=ended")).RootElement;
            var items = sessions.ValueKind == JsonValueKind.Array ? sessions : sessions.GetProperty("items");
            return items.EnumerateArray().Any(s => s.GetProperty("endReason").GetString() == "access withdrawn: agent \"ci\" was disabled");
        }, seconds: 20);
        try
        {
            await reader.DisposeAsync(); // reads the rest: the connection is gone
        }
        catch (Exception e) when (e is NpgsqlException or IOException)
        {
            // expected
        }
        await command.DisposeAsync();
        await stuck.DisposeAsync();
    }

    [Fact]
    public async Task Removing_the_target_the_grant_or_the_agent_ends_exactly_the_sessions_it_concerns()
    {
        await using var onMd5 = await OpenAsync("pg-md5", "ci");
        await using var onPg = await OpenAsync("pg", "ci");
        await using var stranger = await OpenAsync("pg-loopback", "stranger");

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
