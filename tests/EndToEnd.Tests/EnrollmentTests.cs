using System.Net.Http.Json;
using Airlock.Testing;
using Microsoft.EntityFrameworkCore;

namespace Airlock.EndToEnd.Tests;

/// <summary>Bad enrollment tokens and bad options: a clear message and a non-zero exit.</summary>
public sealed class EnrollmentTests : IAsyncLifetime
{
    private ControlPlaneProcess? _cp;

    public async Task InitializeAsync() => _cp = await ControlPlaneProcess.StartAsync();

    public async Task DisposeAsync()
    {
        if (_cp is not null)
            await _cp.DisposeAsync();
    }

    [Fact]
    public async Task A_wrong_token_is_refused_with_a_message_and_exit_code_2()
    {
        await using var sidecar = SidecarProcess.Start(_cp!.Url, "et_this-is-not-a-token");
        Assert.Equal(2, await sidecar.Process.WaitForExitAsync());
        Assert.Contains("enrollment refused", sidecar.Process.Output, StringComparison.Ordinal);
        Assert.Contains("the enrollment token is not valid", sidecar.Process.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_health_port_in_use_stops_the_start_before_the_token_is_spent()
    {
        var token = await _cp!.CreateSidecarAsync("edge-busy");
        using var busy = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        busy.Start();
        var port = ((System.Net.IPEndPoint)busy.LocalEndpoint).Port;
        await using (var blocked = SidecarProcess.Start(_cp.Url, token, extraArgs: [$"--Kestrel:Endpoints:Http:Url=http://127.0.0.1:{port}"]))
        {
            Assert.Equal(2, await blocked.Process.WaitForExitAsync());
            Assert.Contains($"the health and metrics address 127.0.0.1:{port}", blocked.Process.Output, StringComparison.Ordinal);
            Assert.Contains("an enrollment token is still unused", blocked.Process.Output, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", blocked.Process.Output, StringComparison.Ordinal); // no stack trace
        }
        Assert.Equal("pending", (await _cp.GetSidecarAsync("edge-busy")).GetProperty("status").GetString());

        // The same token then enrolls the sidecar on a free port.
        await using var sidecar = SidecarProcess.Start(_cp.Url, token);
        await sidecar.WaitForVersionAsync(1);
    }

    [Fact]
    public async Task A_used_token_cannot_enroll_a_second_sidecar()
    {
        var token = await _cp!.CreateSidecarAsync("edge-1");
        await using var first = SidecarProcess.Start(_cp.Url, token);
        await first.WaitForVersionAsync(1);
        await using var second = SidecarProcess.Start(_cp.Url, token);
        Assert.Equal(2, await second.Process.WaitForExitAsync());
        Assert.Contains("already used", second.Process.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_enrolled_sidecar_cannot_be_taken_over_by_a_token_only_by_an_explicit_audited_reenrollment()
    {
        // Two tokens issued before enrollment: enrolling with one spends the other.
        var first = await _cp!.CreateSidecarAsync("edge-1");
        var spare = await _cp.CreateEnrollmentTokenAsync("edge-1");
        await using var real = SidecarProcess.Start(_cp.Url, first);
        await real.WaitForVersionAsync(1);
        await using (var squatter = SidecarProcess.Start(_cp.Url, spare))
        {
            Assert.Equal(2, await squatter.Process.WaitForExitAsync());
            Assert.Contains("already used", squatter.Process.Output, StringComparison.Ordinal);
        }

        // A new token for the enrolled sidecar is refused unless re-enrollment is asked for by name.
        var refused = await _cp.Api.PostAsJsonAsync("/api/v1/sidecars/edge-1/enrollment-tokens", new { ttlMinutes = 10 });
        Assert.Equal(System.Net.HttpStatusCode.Conflict, refused.StatusCode);
        Assert.Contains("already enrolled", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        var created = await _cp.Api.PostAsJsonAsync("/api/v1/sidecars/edge-1/enrollment-tokens", new { ttlMinutes = 10, reenroll = true });
        created.EnsureSuccessStatusCode();
        var token = System.Text.Json.JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement.GetProperty("token").GetString()!;

        // The replacement enrolls; the old instance is locked out; both steps are in the audit log.
        await using var replacement = SidecarProcess.Start(_cp.Url, token);
        await replacement.WaitForVersionAsync(1);
        await real.RestartAsync();
        await real.Process.WaitForOutputAsync("The control plane refused this sidecar");
        var audit = await _cp.Api.GetStringAsync("/api/v1/audit?entityType=sidecar");
        Assert.Contains("\"reenroll\"", audit, StringComparison.Ordinal);
        Assert.Contains("create-reenrollment", await _cp.Api.GetStringAsync("/api/v1/audit?entityType=enrollment-token"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_expired_token_is_refused()
    {
        var token = await _cp!.CreateSidecarAsync("edge-1");
        // Age the token in the store the control plane uses (its embedded SQLite file).
        var file = Path.Combine(_cp.StateDirectory, "airlock.db");
        await using (var db = new ControlPlane.Data.SqliteAirlockDbContext(
            new DbContextOptionsBuilder<ControlPlane.Data.SqliteAirlockDbContext>().UseSqlite($"Data Source={file}").Options))
        {
            var row = await db.EnrollmentTokens.SingleAsync();
            row.ExpiresAt = DateTimeOffset.UtcNow.AddMinutes(-1);
            await db.SaveChangesAsync();
        }
        await using var sidecar = SidecarProcess.Start(_cp.Url, token);
        Assert.Equal(2, await sidecar.Process.WaitForExitAsync());
        Assert.Contains("the enrollment token expired", sidecar.Process.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unreachable_control_plane_is_named()
    {
        await using var sidecar = SidecarProcess.Start($"http://127.0.0.1:{FreePort.Next()}", "et_x");
        Assert.Equal(2, await sidecar.Process.WaitForExitAsync());
        Assert.Contains("cannot reach the control plane", sidecar.Process.Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("not a url", "Sidecar:ControlPlane")]
    [InlineData("ftp://example", "Sidecar:ControlPlane")]
    public async Task A_bad_sidecar_option_stops_the_start_and_names_the_option(string controlPlane, string option)
    {
        await using var sidecar = SidecarProcess.Start(controlPlane, "et_x");
        Assert.Equal(2, await sidecar.Process.WaitForExitAsync());
        Assert.Contains(option, sidecar.Process.Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--Sidecar:Postgres:AllowCleartextOnLoopback=true", "AllowCleartextOnLoopback")] // moved into the target policy
    [InlineData("--Sidecar:HeartbeatSecs=5", "HeartbeatSecs")]
    [InlineData("--Sidecar:SyntheticSessionsToken=short", "SyntheticSessionsToken")] // the endpoint must not be open
    [InlineData("--Sidecar:Limits:MaxPendingStartups=0", "Limits:MaxPendingStartups")]
    [InlineData("--Sidecar:CredentialReferences:Directories:0=relative/dir", "CredentialReferences:Directories")]
    [InlineData("--Sidecar:RecordingFlushMilliseconds=5", "RecordingFlushMilliseconds")] // out of range
    [InlineData("--Sidecar:RecordingUploadMilliseconds=9000", "RecordingUploadMilliseconds")] // out of range
    public async Task An_unknown_or_out_of_range_sidecar_option_stops_the_start_and_names_it(string argument, string option)
    {
        await using var sidecar = SidecarProcess.Start($"http://127.0.0.1:{FreePort.Next()}", "et_x", extraArgs: [argument]);
        Assert.Equal(2, await sidecar.Process.WaitForExitAsync());
        Assert.Contains(option, sidecar.Process.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("cannot reach the control plane", sidecar.Process.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_first_start_without_a_token_says_what_is_missing()
    {
        await using var sidecar = SidecarProcess.Start(_cp!.Url, null);
        Assert.Equal(2, await sidecar.Process.WaitForExitAsync());
        Assert.Contains("--enrollment-token TOKEN is required", sidecar.Process.Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--Airlock:Snapshots:TtlSeconds=1", "Airlock:Snapshots:TtlSeconds")] // out of range
    [InlineData("--Airlock:Recordings:RetentionDay=30", "RetentionDay")] // a typo of RetentionDays
    [InlineData("--Airlock:Recording:RetentionDays=30", "unknown option 'Airlock:Recording'")]
    [InlineData("--Airlock:Identity:Issuer=not-a-url", "Airlock:Identity:Issuer 'not-a-url'")]
    [InlineData("--Airlock:PublicUrl:Host=x", "Airlock:PublicUrl must be a single value")]
    public async Task A_bad_control_plane_option_stops_the_start_and_names_the_option(string argument, string named)
    {
        var state = Directory.CreateTempSubdirectory("airlock-cp-bad-").FullName;
        await using var cp = ManagedProcess.Start("control plane", Binaries.ControlPlane,
            [$"--Airlock:StateDirectory={state}", argument, $"--Kestrel:Endpoints:Http:Url=http://127.0.0.1:{FreePort.Next()}", $"--Kestrel:Endpoints:Grpc:Url=http://127.0.0.1:{FreePort.Next()}"]);
        Assert.Equal(2, await cp.WaitForExitAsync());
        Assert.Contains("controlplane: ", cp.Output, StringComparison.Ordinal);
        Assert.Contains(named, cp.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", cp.Output, StringComparison.Ordinal); // one line, no stack trace
    }

    [Fact]
    public async Task An_unreachable_store_stops_the_control_plane_and_names_the_option()
    {
        var state = Directory.CreateTempSubdirectory("airlock-cp-bad-").FullName;
        await using var cp = ManagedProcess.Start("control plane", Binaries.ControlPlane,
            [$"--Airlock:StateDirectory={state}", $"--ConnectionStrings:Airlock=Host=127.0.0.1;Port={FreePort.Next()};Username=x;Timeout=2",
             $"--Kestrel:Endpoints:Http:Url=http://127.0.0.1:{FreePort.Next()}", $"--Kestrel:Endpoints:Grpc:Url=http://127.0.0.1:{FreePort.Next()}"]);
        Assert.Equal(2, await cp.WaitForExitAsync());
        Assert.Contains("controlplane: ConnectionStrings:Airlock", cp.Output, StringComparison.Ordinal);
    }
}
