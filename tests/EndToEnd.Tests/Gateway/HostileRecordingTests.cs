using System.Text.Json;
using Airlock.Contracts.Recording;
using Airlock.Testing;
using Npgsql;

namespace Airlock.EndToEnd.Tests.Gateway;

/// <summary>
/// An agent (or a target) that sends huge, escaping-heavy notices, errors, statement texts,
/// parameters and results cannot erase or stall its own recording: every session arrives whole
/// (through its session end), verified, with the oversized values marked truncated, and the
/// sidecar's hub connection stays up throughout.
/// </summary>
public sealed class HostileRecordingTests(GatewayFixture fixture) : IClassFixture<GatewayFixture>
{
    private GatewayHarness H => fixture.Harness;

    /// <summary>Characters JSON escapes, most of them to six bytes (control characters come from chr() in SQL).</summary>
    private const string Hostile = "<>&'\"\\é€+`\u2028\u2029\u00a0\ufeff";

    private static readonly int[] Sizes = [1024, 300_000, 3_000_000];

    private static string SqlLiteral(string text) => "'" + text.Replace("'", "''", StringComparison.Ordinal) + "'";

    /// <summary>A PostgreSQL expression for <paramref name="chars"/> characters of <see cref="Hostile"/> and control characters, repeated.</summary>
    private static string Repeated(int chars) => $"left(repeat({SqlLiteral(Hostile)} || chr(1) || chr(31) || chr(127), {chars / 10 + 1}), {chars})";

    [Fact]
    public async Task Huge_escaping_heavy_values_arrive_whole_verified_and_marked_truncated()
    {
        var marker = "hostile-" + Guid.NewGuid().ToString("N")[..8];
        await using (var connection = new NpgsqlConnection(H.SidecarConnectionString))
        {
            await connection.OpenAsync();
            var notices = 0;
            connection.Notice += (_, _) => notices++;
            await Exec(connection, $"SELECT 'before-{marker}'");
            foreach (var size in Sizes)
            {
                // The issue's reproduction: a notice of 3 million escaping-heavy characters.
                await Exec(connection, $"DO $$BEGIN RAISE NOTICE '%', {Repeated(size)}; END$$");
                // An error whose text is the same.
                var error = await Assert.ThrowsAsync<PostgresException>(() => Exec(connection, $"DO $$BEGIN RAISE EXCEPTION '%', {Repeated(size)}; END$$"));
                Assert.Equal(size, error.MessageText.Length);
                // A statement text of that size (a literal), a parameter and a result value of that size.
                var literal = string.Concat(Enumerable.Repeat("<\"\\é", size / 4 + 1))[..size];
                Assert.Equal(size, Convert.ToInt32(await Scalar(connection, $"SELECT length({SqlLiteral(literal)})")));
                await using (var command = new NpgsqlCommand("SELECT length($1)", connection))
                {
                    command.Parameters.Add(new NpgsqlParameter { Value = literal });
                    Assert.Equal(size, Convert.ToInt32(await command.ExecuteScalarAsync()));
                }
                var value = (string)(await Scalar(connection, $"SELECT {Repeated(size)} AS hostile"))!;
                Assert.Equal(size, value.Length);
            }
            Assert.Equal(3, notices);
            await Exec(connection, $"SELECT 'after-{marker}'");
        }

        var (session, events) = await StoredSessionAsync(marker);
        Assert.Equal("verified", session.GetProperty("verification").GetString());
        Assert.Equal("ended", session.GetProperty("status").GetString());
        var types = events.Select(e => e.GetProperty("type").GetString()).ToList();
        Assert.Equal(RecordingEventTypes.SessionEnd, types[^1]);
        var all = string.Join('\n', events.Select(e => e.GetRawText()));
        Assert.Contains($"after-{marker}", all, StringComparison.Ordinal);
        // 3 notices, 3 errors, and per size 3 statements: each oversized one is cut and says so.
        var noticeTexts = events.Where(e => e.GetProperty("type").GetString() == RecordingEventTypes.Notice)
            .Select(e => e.GetProperty("payload").GetProperty("message").GetString()!).ToList();
        Assert.Equal(3, noticeTexts.Count);
        Assert.Equal(Sizes[0], noticeTexts[0].Length);
        for (var i = 1; i < Sizes.Length; i++)
        {
            Assert.EndsWith($"[truncated: {Sizes[i]} characters]", noticeTexts[i], StringComparison.Ordinal);
            Assert.StartsWith(noticeTexts[0][..100], noticeTexts[i], StringComparison.Ordinal);
            Assert.True(noticeTexts[i].Length <= RecordingLimits.MaxMessageChars + 64);
        }
        var statements = events.Where(e => e.GetProperty("type").GetString() == RecordingEventTypes.Statement).Select(e => e.GetProperty("payload")).ToList();
        var errors = statements.Select(s => s.GetProperty("error").GetString()).Where(e => e is not null).ToList();
        Assert.Equal(3, errors.Count);
        Assert.True(RecordingLimits.IsTruncated(errors[^1]), errors[^1]![^80..]);
        var texts = statements.Select(s => s.GetProperty("text").GetString()!).Where(t => t.StartsWith("SELECT length('", StringComparison.Ordinal)).ToList();
        Assert.Equal(3, texts.Count);
        Assert.True(RecordingLimits.IsTruncated(texts[^1]));
        var parameters = statements.Where(s => s.GetProperty("text").GetString() == "SELECT length($1)").Select(s => s.GetProperty("parameters")[0].GetString()!).ToList();
        Assert.Equal(3, parameters.Count);
        Assert.False(RecordingLimits.IsTruncated(parameters[0]) || parameters[0].Length != 1024);
        Assert.True(RecordingLimits.IsTruncated(parameters[^1]));
        var results = statements.Where(s => s.GetProperty("result").ValueKind == JsonValueKind.Object
            && s.GetProperty("result").GetProperty("columns").EnumerateArray().Any(c => c.GetString() == "hostile")).Select(s => s.GetProperty("result")).ToList();
        Assert.Equal(3, results.Count);
        Assert.All(results.Skip(1), r => Assert.True(r.GetProperty("truncated").GetBoolean() || RecordingLimits.IsTruncated(r.GetProperty("rows")[0][0].GetString())));

        // The hub connection never dropped: no reconnect, no hub failure in the sidecar's log.
        var log = H.Sidecar.Process.Output;
        Assert.DoesNotContain("Reconnected to the sidecar hub", log, StringComparison.Ordinal);
        Assert.DoesNotContain("Sidecar hub unavailable", log, StringComparison.Ordinal);
        Assert.DoesNotContain("Recording upload paused", log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_message_over_the_gateways_limit_ends_the_session_and_its_recording_still_arrives_whole()
    {
        // 64 MiB of notice: over Sidecar:Postgres:MaxMessageBytes (16 MiB), so the session ends with
        // 54000 — and its recording, through the refusal and the end, is stored and verifies.
        var marker = "oversized-" + Guid.NewGuid().ToString("N")[..8];
        await using (var connection = new NpgsqlConnection(H.SidecarConnectionString))
        {
            await connection.OpenAsync();
            await Exec(connection, $"SELECT 'before-{marker}'");
            var ended = await Assert.ThrowsAnyAsync<Exception>(() => Exec(connection, "DO $$BEGIN RAISE NOTICE '%', repeat('<', 64 * 1024 * 1024); END$$"));
            var error = ended as PostgresException ?? ended.InnerException as PostgresException;
            Assert.True(error?.SqlState == "54000", ended.ToString());
        }
        var (session, events) = await StoredSessionAsync(marker);
        Assert.Equal("verified", session.GetProperty("verification").GetString());
        Assert.Equal(RecordingEventTypes.SessionEnd, events[^1].GetProperty("type").GetString());
        Assert.Contains("the target sent an invalid message ('N'", events[^1].GetProperty("payload").GetProperty("reason").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_statement_running_when_an_admin_terminates_the_session_is_in_the_recording_as_not_finished()
    {
        var marker = Guid.NewGuid().ToString("N");
        await using var connection = new NpgsqlConnection(H.SidecarConnectionString);
        await connection.OpenAsync();
        await Scalar(connection, $"SELECT 'before-{marker}'");
        var running = Scalar(connection, $"SELECT pg_sleep(60), 'running-{marker}'");

        // The live session, found by its first statement; terminated while pg_sleep runs upstream.
        string? id = null;
        await PolicySyncTests.Eventually(async () =>
        {
            var list = JsonDocument.Parse(await H.ControlPlane.Api.GetStringAsync("/api/v1/sessions?agent=ci&status=live&take=200")).RootElement;
            foreach (var item in (list.ValueKind == JsonValueKind.Array ? list : list.GetProperty("items")).EnumerateArray())
                if ((await H.ControlPlane.Api.GetStringAsync($"/api/v1/sessions/{item.GetProperty("id").GetString()}/events?take=3")).Contains("before-" + marker, StringComparison.Ordinal))
                    id = item.GetProperty("id").GetString();
            return id is not null;
        });
        await Task.Delay(300); // pg_sleep is on its way upstream
        var terminate = await H.ControlPlane.Api.PostAsync($"/api/v1/sessions/{id}/terminate", System.Net.Http.Json.JsonContent.Create(new { reason = "runaway query" }));
        Assert.Equal(System.Net.HttpStatusCode.Accepted, terminate.StatusCode);
        await Assert.ThrowsAnyAsync<Exception>(() => running);

        var (_, events) = await StoredSessionAsync(marker);
        var statement = events.Single(e => e.GetProperty("type").GetString() == RecordingEventTypes.Statement
            && e.GetProperty("payload").GetProperty("text").GetString()!.Contains("running-" + marker, StringComparison.Ordinal)).GetProperty("payload");
        var error = statement.GetProperty("error").GetString()!;
        Assert.True(error.StartsWith("57P01: not finished: the session ended (terminated: terminated by apikey:bootstrap", StringComparison.Ordinal), error);
        Assert.Contains("runaway query", error, StringComparison.Ordinal);
        Assert.Equal(RecordingEventTypes.SessionEnd, events[^1].GetProperty("type").GetString());
    }

    private static async Task Exec(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection) { CommandTimeout = 120 };
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<object?> Scalar(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection) { CommandTimeout = 120 };
        return await command.ExecuteScalarAsync();
    }

    /// <summary>The ended, stored session whose first statement carries <paramref name="marker"/>, and all its events.</summary>
    private async Task<(JsonElement Session, List<JsonElement> Events)> StoredSessionAsync(string marker)
    {
        JsonElement found = default;
        List<JsonElement> events = [];
        await PolicySyncTests.Eventually(async () =>
        {
            var list = JsonDocument.Parse(await H.ControlPlane.Api.GetStringAsync("/api/v1/sessions?agent=ci&take=200")).RootElement;
            foreach (var item in (list.ValueKind == JsonValueKind.Array ? list : list.GetProperty("items")).EnumerateArray())
            {
                var id = item.GetProperty("id").GetString();
                var first = await H.ControlPlane.Api.GetStringAsync($"/api/v1/sessions/{id}/events?take=3");
                if (!first.Contains("before-" + marker, StringComparison.Ordinal))
                    continue;
                if (item.GetProperty("status").GetString() == "live")
                    return false;
                events = [];
                long after = 0;
                while (true)
                {
                    var page = JsonDocument.Parse(await H.ControlPlane.Api.GetStringAsync($"/api/v1/sessions/{id}/events?after={after}&take=500")).RootElement;
                    if (page.GetArrayLength() == 0)
                        break;
                    events.AddRange(page.EnumerateArray().Select(e => e.Clone()));
                    after = events[^1].GetProperty("seq").GetInt64();
                }
                var verify = await H.ControlPlane.Api.PostAsync($"/api/v1/sessions/{id}/verify", null);
                verify.EnsureSuccessStatusCode();
                found = JsonDocument.Parse(await H.ControlPlane.Api.GetStringAsync($"/api/v1/sessions/{id}")).RootElement.Clone();
                return true;
            }
            return false;
        }, seconds: 90);
        return (found, events);
    }
}
