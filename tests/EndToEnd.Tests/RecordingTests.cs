using System.Net;
using System.Text.Json;
using Airlock.Testing;
using Microsoft.EntityFrameworkCore;

namespace Airlock.EndToEnd.Tests;

/// <summary>The recording pipeline with real processes: recorder → spool → SignalR upload → store → verification, and its faults.</summary>
public sealed class RecordingTests
{
    private static async Task<JsonElement> SessionAsync(ControlPlaneProcess cp, Guid id)
    {
        var response = await cp.Api.GetAsync($"/api/v1/sessions/{id}");
        return response.StatusCode == HttpStatusCode.OK ? JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone() : default;
    }

    private static async Task<JsonElement> WaitForSessionAsync(ControlPlaneProcess cp, Guid id, Func<JsonElement, bool> until, int seconds = 30)
    {
        JsonElement session = default;
        await PolicySyncTests.Eventually(async () =>
        {
            session = await SessionAsync(cp, id);
            return session.ValueKind == JsonValueKind.Object && until(session);
        }, seconds);
        return session;
    }

    [Fact]
    public async Task A_session_arrives_whole_verified_and_leaves_nothing_spooled_and_an_edited_row_is_detected()
    {
        await using var cp = await ControlPlaneProcess.StartAsync();
        await using var sidecar = SidecarProcess.Start(cp.Url, await cp.CreateSidecarAsync("edge-1"));
        await sidecar.WaitForVersionAsync(1);

        var id = await sidecar.StartSyntheticSessionAsync(statements: 200);
        var session = await WaitForSessionAsync(cp, id, s => s.GetProperty("status").GetString() == "ended");
        Assert.Equal(202, session.GetProperty("eventCount").GetInt64());
        Assert.Equal(200, session.GetProperty("statementCount").GetInt64());
        Assert.Equal("verified", session.GetProperty("verification").GetString());
        await PolicySyncTests.Eventually(() => Task.FromResult(!Directory.EnumerateFiles(Path.Combine(sidecar.StateDirectory, "spool")).Any()));

        // Ingest shows in the control plane's metrics: every event stored, no chain break.
        using (var http = new HttpClient())
        {
            long stored = -1;
            string metrics = "";
            await PolicySyncTests.Eventually(async () =>
            {
                metrics = await http.GetStringAsync($"{cp.Url}/metrics");
                var match = System.Text.RegularExpressions.Regex.Match(metrics, @"^airlock_recordings_events_stored_total(?:\{[^}]*\})? (\d+)", System.Text.RegularExpressions.RegexOptions.Multiline);
                stored = match.Success ? long.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : -1;
                return stored >= 202;
            });
            Assert.Equal(202, stored);
            Assert.Matches(@"(?m)^airlock_recordings_uploads_total(\{[^}]*\})? [1-9]", metrics);
            Assert.Matches(@"(?m)^airlock_recordings_ingest_duration_seconds_count(\{[^}]*\})? [1-9]", metrics);
            Assert.Matches(@"(?m)^airlock_recordings_ingest_duration_seconds_bucket\{[^}]*le=""0.1""\} \d", metrics); // buckets in seconds
            Assert.DoesNotMatch(@"(?m)^airlock_recordings_chain_breaks_total(\{[^}]*\})? [1-9]", metrics);
        }

        var events = JsonDocument.Parse(await cp.Api.GetStringAsync($"/api/v1/sessions/{id}/events?take=5")).RootElement;
        Assert.Equal("session.start", events[0].GetProperty("type").GetString());
        Assert.Equal("SELECT 1 /* synthetic */", events[1].GetProperty("payload").GetProperty("text").GetString());

        var verdict = JsonDocument.Parse(await (await cp.Api.PostAsync($"/api/v1/sessions/{id}/verify", null)).Content.ReadAsStringAsync()).RootElement;
        Assert.Null(verdict.GetProperty("brokenAt").GetString());

        // The exported bundle verifies offline with the documented command; an edited bundle does not.
        var bundlePath = Path.Combine(cp.StateDirectory, "bundle.json");
        await File.WriteAllTextAsync(bundlePath, await cp.Api.GetStringAsync($"/api/v1/sessions/{id}/export"));
        await using (var verify = ManagedProcess.Start("verify-bundle", Binaries.ControlPlane, ["verify-bundle", bundlePath]))
        {
            Assert.Equal(0, await verify.WaitForExitAsync());
            Assert.Contains("OK: the chain verifies; signed through event 202 of 202", verify.Output, StringComparison.Ordinal);
        }
        var bundle = System.Text.Json.Nodes.JsonNode.Parse(await File.ReadAllTextAsync(bundlePath))!;
        bundle["events"]![99]!["payload"] = Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes("{\"text\":\"SELECT 1\"}"));
        await File.WriteAllTextAsync(bundlePath, bundle.ToJsonString());
        await using (var verify = ManagedProcess.Start("verify-bundle", Binaries.ControlPlane, ["verify-bundle", bundlePath]))
        {
            Assert.Equal(1, await verify.WaitForExitAsync());
            Assert.Contains("FAILED: chain broken at event 100", verify.Output, StringComparison.Ordinal);
        }

        // Someone edits a stored row: the chain no longer verifies, and says where.
        await using (var db = new ControlPlane.Data.SqliteAirlockDbContext(new DbContextOptionsBuilder<ControlPlane.Data.SqliteAirlockDbContext>()
            .UseSqlite($"Data Source={Path.Combine(cp.StateDirectory, "airlock.db")}").Options))
        {
            // Event 57's statement text rewritten in place ("SELECT" → "DELETE"), checksum and all.
            var segment = await db.SessionSegments.SingleAsync(e => e.SessionId == id && e.FirstSeq <= 57 && e.LastSeq >= 57);
            var records = segment.Records.ToArray();
            var offset = 0;
            while (!(Airlock.Contracts.Recording.RecordCodec.TryViewEvent(records.AsSpan(offset), out var e, out var length) && e.Seq == 57))
                offset += length;
            var at = offset + records.AsSpan(offset).IndexOf("SELECT"u8);
            "DELETE"u8.CopyTo(records.AsSpan(at));
            segment.Records = records;
            await db.SaveChangesAsync();
        }
        // The edit came from outside the control plane, into its SQLite file: its answer may be "busy" once; ask again.
        string answer = "";
        await PolicySyncTests.Eventually(async () =>
        {
            var response = await cp.Api.PostAsync($"/api/v1/sessions/{id}/verify", null);
            answer = await response.Content.ReadAsStringAsync();
            return response.IsSuccessStatusCode;
        }, seconds: 10);
        verdict = JsonDocument.Parse(answer).RootElement;
        Assert.True(verdict.TryGetProperty("brokenAt", out _), answer);
        Assert.Equal(57, verdict.GetProperty("brokenAt").GetInt64());
        Assert.Contains("chain broken at event 57", verdict.GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.Equal("broken", (await SessionAsync(cp, id)).GetProperty("verification").GetString());
    }

    [Fact]
    public async Task A_statement_with_several_megabytes_of_result_rows_is_recorded_cut_to_the_event_limit_marked_and_verified()
    {
        await using var cp = await ControlPlaneProcess.StartAsync();
        await using var sidecar = SidecarProcess.Start(cp.Url, await cp.CreateSidecarAsync("edge-1"));
        await sidecar.WaitForVersionAsync(1);

        var id = await sidecar.StartSyntheticSessionAsync(statements: 3, resultBytes: 4_000_000);
        var session = await WaitForSessionAsync(cp, id, s => s.GetProperty("status").GetString() == "ended");
        Assert.Equal(5, session.GetProperty("eventCount").GetInt64());
        Assert.Equal("verified", session.GetProperty("verification").GetString());
        var statement = JsonDocument.Parse(await cp.Api.GetStringAsync($"/api/v1/sessions/{id}/events?after=1&take=1")).RootElement[0];
        Assert.Equal("statement", statement.GetProperty("type").GetString());
        // Cut to what fits one event (1 MiB), and marked so.
        var result = statement.GetProperty("payload").GetProperty("result");
        Assert.InRange(result.GetProperty("rows").GetArrayLength(), 5000, 4_000_000 / 106 - 1);
        Assert.True(result.GetProperty("truncated").GetBoolean());
        var verdict = JsonDocument.Parse(await (await cp.Api.PostAsync($"/api/v1/sessions/{id}/verify", null)).Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(JsonValueKind.Null, verdict.GetProperty("brokenAt").ValueKind);
    }

    [Fact]
    public async Task The_control_plane_dying_mid_session_loses_nothing()
    {
        await using var cp = await ControlPlaneProcess.StartAsync();
        await using var sidecar = SidecarProcess.Start(cp.Url, await cp.CreateSidecarAsync("edge-1"));
        await sidecar.WaitForVersionAsync(1);

        var id = await sidecar.StartSyntheticSessionAsync(statements: 300, delayMs: 10);
        await WaitForSessionAsync(cp, id, s => s.GetProperty("eventCount").GetInt64() > 20);
        await cp.StopAsync();
        await Task.Delay(2000); // the session goes on while the control plane is away
        await cp.RestartAsync();

        var session = await WaitForSessionAsync(cp, id, s => s.GetProperty("status").GetString() == "ended", seconds: 60);
        Assert.Equal(302, session.GetProperty("eventCount").GetInt64());
        Assert.Equal("verified", session.GetProperty("verification").GetString());
    }

    [Fact]
    public async Task A_minute_without_the_control_plane_under_load_loses_nothing()
    {
        await using var cp = await ControlPlaneProcess.StartAsync();
        await using var sidecar = SidecarProcess.Start(cp.Url, await cp.CreateSidecarAsync("edge-1"));
        await sidecar.WaitForVersionAsync(1);

        // Ten sessions at ~100 statements/s each, running through the whole outage.
        const int statements = 9000;
        var ids = new List<Guid>();
        for (var i = 0; i < 10; i++)
            ids.Add(await sidecar.StartSyntheticSessionAsync(statements: statements, delayMs: 10));
        await WaitForSessionAsync(cp, ids[^1], s => s.GetProperty("eventCount").GetInt64() > 20);
        await cp.StopAsync();
        await Task.Delay(TimeSpan.FromSeconds(60));
        var spooled = Directory.EnumerateFiles(Path.Combine(sidecar.StateDirectory, "spool"), "*.spool").Sum(f => new FileInfo(f).Length);
        Assert.True(spooled > 1_000_000, $"the sessions should have kept recording into the spool during the outage ({spooled} bytes)");
        await cp.RestartAsync();

        foreach (var id in ids)
        {
            var session = await WaitForSessionAsync(cp, id, s => s.GetProperty("status").GetString() == "ended", seconds: 180);
            Assert.Equal(statements + 2, session.GetProperty("eventCount").GetInt64());
            Assert.Equal("verified", session.GetProperty("verification").GetString());
        }
        await PolicySyncTests.Eventually(() => Task.FromResult(!Directory.EnumerateFiles(Path.Combine(sidecar.StateDirectory, "spool")).Any()), seconds: 30);
    }

    [Fact]
    public async Task A_killed_sidecar_uploads_its_spool_after_restart_and_the_session_is_interrupted_but_verifies()
    {
        await using var cp = await ControlPlaneProcess.StartAsync();
        await using var sidecar = SidecarProcess.Start(cp.Url, await cp.CreateSidecarAsync("edge-1"));
        await sidecar.WaitForVersionAsync(1);

        var id = await sidecar.StartSyntheticSessionAsync(statements: 100_000, delayMs: 2, end: false);
        await WaitForSessionAsync(cp, id, s => s.GetProperty("eventCount").GetInt64() > 50);
        await sidecar.Process.KillAsync(); // SIGKILL: no shutdown, perhaps a torn record
        await sidecar.RestartAsync();

        var session = await WaitForSessionAsync(cp, id, s => s.GetProperty("status").GetString() == "interrupted", seconds: 60);
        Assert.Equal("verified", session.GetProperty("verification").GetString());
        Assert.StartsWith("interrupted", session.GetProperty("endReason").GetString(), StringComparison.Ordinal);
        var verdict = JsonDocument.Parse(await (await cp.Api.PostAsync($"/api/v1/sessions/{id}/verify", null)).Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(session.GetProperty("eventCount").GetInt64(), verdict.GetProperty("events").GetInt64());
        Assert.Equal(JsonValueKind.Null, verdict.GetProperty("brokenAt").ValueKind);
    }

    [Fact]
    public async Task An_admin_terminates_a_live_session_and_the_sidecar_closes_it_with_the_reason()
    {
        await using var cp = await ControlPlaneProcess.StartAsync();
        await using var sidecar = SidecarProcess.Start(cp.Url, await cp.CreateSidecarAsync("edge-1"));
        await sidecar.WaitForVersionAsync(1);
        await PolicySyncTests.Eventually(async () => (await cp.GetSidecarAsync("edge-1")).GetProperty("online").GetBoolean());

        var id = await sidecar.StartSyntheticSessionAsync(statements: 100_000, delayMs: 5, end: false);
        await WaitForSessionAsync(cp, id, s => s.GetProperty("eventCount").GetInt64() > 5);
        var terminate = await cp.Api.PostAsync($"/api/v1/sessions/{id}/terminate", System.Net.Http.Json.JsonContent.Create(new { reason = "suspicious bulk export" }));
        Assert.Equal(HttpStatusCode.Accepted, terminate.StatusCode);

        var session = await WaitForSessionAsync(cp, id, s => s.GetProperty("status").GetString() == "ended");
        Assert.Contains("suspicious bulk export", session.GetProperty("endReason").GetString(), StringComparison.Ordinal);
        Assert.Contains("terminated by apikey:bootstrap", session.GetProperty("endReason").GetString(), StringComparison.Ordinal);
        Assert.Equal("verified", session.GetProperty("verification").GetString());
        Assert.Equal(HttpStatusCode.Conflict, (await cp.Api.PostAsync($"/api/v1/sessions/{id}/terminate", null)).StatusCode);
        Assert.Contains("\"action\":\"terminate\"", (await cp.Api.GetStringAsync("/api/v1/audit?entityType=session")).Replace(" ", "", StringComparison.Ordinal), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Events_wait_for_the_configured_group_commit_before_they_are_uploaded()
    {
        await using var cp = await ControlPlaneProcess.StartAsync();
        await using var sidecar = SidecarProcess.Start(cp.Url, await cp.CreateSidecarAsync("edge-1"), extraArgs: ["--Sidecar:RecordingFlushMilliseconds=1000"]);
        await sidecar.WaitForVersionAsync(1);
        await PolicySyncTests.Eventually(async () => (await cp.GetSidecarAsync("edge-1")).GetProperty("online").GetBoolean());

        // Started before the session's first event: its commit falls due 1 s after that event at the
        // earliest, and nothing is uploaded before it is durable (with the default 100 ms it arrives
        // within a few hundred milliseconds).
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var id = await sidecar.StartSyntheticSessionAsync(statements: 3, delayMs: 0, end: false);
        while ((await SessionAsync(cp, id)).ValueKind != JsonValueKind.Object)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), "the session never arrived");
            await Task.Delay(50);
        }
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(1), $"the session arrived after {clock.Elapsed.TotalMilliseconds:F0} ms, before its group commit");
        var session = await WaitForSessionAsync(cp, id, s => s.GetProperty("eventCount").GetInt64() == 4);
        // Live, no signed end yet: its events verify, but the session is not (yet) whole.
        Assert.Equal("incomplete", session.GetProperty("verification").GetString());
    }

    [Fact]
    public async Task A_session_the_control_plane_will_not_store_is_sent_again_with_backoff_not_with_every_upload()
    {
        await using var cp = await ControlPlaneProcess.StartAsync();
        await using var sidecar = SidecarProcess.Start(cp.Url, await cp.CreateSidecarAsync("edge-1"));
        await sidecar.WaitForVersionAsync(1);
        await PolicySyncTests.Eventually(async () => (await cp.GetSidecarAsync("edge-1")).GetProperty("online").GetBoolean());

        // A spool whose events start at 5: the control plane has nothing to anchor the session on and stores none of it.
        var id = Guid.NewGuid();
        var previous = new Airlock.Contracts.Hubs.RecordingEvent(id, 4, DateTimeOffset.UtcNow, "notice", [], Airlock.Contracts.Recording.EventChain.GenesisHash, Airlock.Contracts.Recording.EventChain.GenesisHash);
        var records = new List<byte>();
        for (var i = 0; i < 3; i++)
        {
            previous = Airlock.Contracts.Recording.EventChain.Next(previous, id, DateTimeOffset.UtcNow, "notice", "{\"severity\":\"NOTICE\",\"message\":\"x\"}"u8.ToArray());
            records.AddRange(Airlock.Contracts.Recording.RecordCodec.Encode(previous));
        }
        var spool = Path.Combine(sidecar.StateDirectory, "spool");
        Directory.CreateDirectory(spool);
        await File.WriteAllBytesAsync(Path.Combine(spool, id + ".tmp"), [.. records]);
        File.Move(Path.Combine(spool, id + ".tmp"), Path.Combine(spool, id + ".spool"));

        var refusal = $"stored session {id} only through event 0 of 7 sent";
        await sidecar.Process.WaitForOutputAsync(refusal, TimeSpan.FromSeconds(30));
        await Task.Delay(TimeSpan.FromSeconds(8));
        // Sent again after 1, 2 and 4 s (the uploader looks at least once a second): 3–4 tries in those
        // 8 s, fewer on a slow machine — not one per upload interval (about 30).
        var tries = sidecar.Process.Output.Split('\n').Count(l => l.Contains(refusal, StringComparison.Ordinal));
        Assert.InRange(tries, 2, 6);
        Assert.Contains($"{refusal}: the control plane has no events of session {id}, and the upload does not start at its first event", sidecar.Process.Output, StringComparison.Ordinal);
        Assert.Equal(JsonValueKind.Undefined, (await SessionAsync(cp, id)).ValueKind);
        Assert.True(File.Exists(Path.Combine(spool, id + ".spool")), "the refused events must stay spooled");
    }

    [Fact]
    public async Task When_the_spool_cannot_be_written_new_work_is_refused_and_nothing_recorded_is_lost()
    {
        await using var cp = await ControlPlaneProcess.StartAsync();
        await using var sidecar = SidecarProcess.Start(cp.Url, await cp.CreateSidecarAsync("edge-1"));
        await sidecar.WaitForVersionAsync(1);

        // A session whose spool file is /dev/full: every write fails with ENOSPC, like a full disk.
        var doomed = Guid.NewGuid();
        File.CreateSymbolicLink(Path.Combine(sidecar.StateDirectory, "spool", $"{doomed}.spool"), "/dev/full");
        await sidecar.StartSyntheticSessionAsync(statements: 5, session: doomed);
        await sidecar.Process.WaitForOutputAsync("Cannot write the recording spool");

        // The recorder now refuses new sessions (fail closed) instead of dropping evidence.
        using var http = new HttpClient();
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.PostAsync($"{sidecar.Url}/v1/synthetic-sessions?statements=1", null)).StatusCode);
        http.DefaultRequestHeaders.Authorization = new("Bearer", SidecarProcess.SyntheticSessionsToken);
        await PolicySyncTests.Eventually(async () =>
            (await http.PostAsync($"{sidecar.Url}/v1/synthetic-sessions?statements=1", null)).StatusCode == HttpStatusCode.ServiceUnavailable, seconds: 10);
        Assert.Equal(HttpStatusCode.NotFound, (await cp.Api.GetAsync($"/api/v1/sessions/{doomed}")).StatusCode);
    }
}
