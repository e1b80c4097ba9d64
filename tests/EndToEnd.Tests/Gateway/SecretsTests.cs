using System.Net;
using System.Net.Http.Json;
using System.Text;
using Airlock.Testing;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace Airlock.EndToEnd.Tests.Gateway;

/// <summary>
/// Secrets at rest and in what a run writes: the key ring is encrypted to a certificate that is not
/// in the store, state is owner-only, and no secret the run used appears in any log, recording,
/// problem response or file it wrote (other than where a secret must be: hashed, sealed, encrypted).
/// </summary>
public sealed class SecretsTests(GatewayFixture fixture) : IClassFixture<GatewayFixture>
{
    private GatewayHarness H => fixture.Harness;

    [Fact]
    public async Task The_key_ring_is_encrypted_to_a_certificate_outside_the_store_and_state_is_owner_only()
    {
        var state = H.ControlPlane.StateDirectory;
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(state));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(state, "airlock.db")));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(state, "keyring.pfx")));

        // A copy of the store: every key of the ring is an XML-encrypted blob, no master key in clear.
        var copy = Path.Combine(Directory.CreateTempSubdirectory("airlock-stolen-").FullName, "airlock.db");
        File.Copy(Path.Combine(state, "airlock.db"), copy);
        await using var db = new ControlPlane.Data.SqliteAirlockDbContext(
            new DbContextOptionsBuilder<ControlPlane.Data.SqliteAirlockDbContext>().UseSqlite($"Data Source={copy};Pooling=false").Options);
        var keys = await db.DataProtectionKeys.Select(k => k.Xml!).ToListAsync();
        Assert.NotEmpty(keys);
        Assert.All(keys, xml =>
        {
            Assert.Contains("EncryptedData", xml, StringComparison.Ordinal);
            Assert.DoesNotContain("<value>", xml, StringComparison.Ordinal);
        });
    }

    [Fact]
    public async Task No_secret_of_a_run_appears_in_its_logs_recordings_problems_or_files()
    {
        const string PolicyPassword = "never-Echo-This-9f3b";
        var secrets = new Dictionary<string, string>
        {
            ["target password (stored)"] = GatewayHarness.ScramPassword,
            ["target password (env)"] = GatewayHarness.Md5Password,
            ["target password (cleartext method)"] = GatewayHarness.CleartextPassword,
            ["agent token"] = H.Token,
            ["admin API key"] = H.ControlPlane.ApiKey,
            ["bootstrap admin password"] = ControlPlaneProcess.AdminPassword,
            ["password in a refused policy"] = PolicyPassword,
        };
        var written = new StringBuilder();

        // Sessions that succeed, fail upstream and fail at the agent's token.
        await using (var ok = new NpgsqlConnection(H.SidecarConnectionString))
        {
            await ok.OpenAsync();
            await new NpgsqlCommand("SELECT 'secrets-run'", ok).ExecuteNonQueryAsync();
        }
        foreach (var (target, token) in new[] { ("pg-badpass", H.Token), ("pg-clear", H.Token), ("pg", H.Token[..^3] + "xyz") })
        {
            await using var failing = new NpgsqlConnection(H.SidecarConnectionStringForTarget(target, token));
            var refused = await Assert.ThrowsAsync<PostgresException>(() => failing.OpenAsync());
            written.AppendLine(refused.ToString());
        }

        // Problem responses: a bad policy document carrying a password, a wrong login, a wrong token request.
        var badPolicy = await H.ControlPlane.PutPolicyAsync($"targets:\n- name: leak\n  sidecar: edge-1\n  listenPort: 0\n  upstream: {{host: x, password: {PolicyPassword}}}\n");
        Assert.Equal(HttpStatusCode.BadRequest, badPolicy.StatusCode);
        written.AppendLine(await badPolicy.Content.ReadAsStringAsync());
        using (var anonymous = new HttpClient { BaseAddress = new Uri(H.ControlPlane.Url) })
        {
            var token = await anonymous.PostAsync("/connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "client_credentials", ["client_id"] = "ci", ["client_secret"] = PolicyPassword,
            }));
            written.AppendLine(await token.Content.ReadAsStringAsync());
            var wrongKey = new HttpRequestMessage(HttpMethod.Get, "/api/v1/sessions");
            wrongKey.Headers.Authorization = new("Bearer", H.ControlPlane.ApiKey[..^2] + "00");
            written.AppendLine(await (await anonymous.SendAsync(wrongKey)).Content.ReadAsStringAsync());
        }

        // Recordings (sessions, events), the audit log, then both processes' logs and every file they wrote.
        await PolicySyncTests.Eventually(async () => (await H.ControlPlane.Api.GetStringAsync("/api/v1/sessions?agent=ci&take=500")).Contains("\"ended\"", StringComparison.Ordinal), seconds: 20);
        var sessions = await H.ControlPlane.Api.GetStringAsync("/api/v1/sessions?take=500");
        written.AppendLine(sessions);
        foreach (var id in System.Text.Json.JsonDocument.Parse(sessions).RootElement.EnumerateArray().Select(s => s.GetProperty("id").GetString()))
            written.AppendLine(await H.ControlPlane.Api.GetStringAsync($"/api/v1/sessions/{id}/events?take=5000"));
        written.AppendLine(await H.ControlPlane.Api.GetStringAsync("/api/v1/audit?take=1000"));
        written.AppendLine(await H.ControlPlane.Api.GetStringAsync("/api/v1/policy"));
        written.AppendLine(H.ControlPlane.Process.Output);
        written.AppendLine(H.Sidecar.Process.Output);
        var files = Directory.EnumerateFiles(H.ControlPlane.StateDirectory, "*", SearchOption.AllDirectories)
            .Concat(Directory.EnumerateFiles(H.Sidecar.StateDirectory, "*", SearchOption.AllDirectories))
            // The sidecar's own identity holds its own credential and keys by design (0600); no target secret.
            .ToList();
        foreach (var file in files)
            written.AppendLine(Encoding.Latin1.GetString(await ReadSharedAsync(file)));

        var all = written.ToString();
        Assert.True(all.Length > 10_000, $"only {all.Length} characters were collected");
        foreach (var (what, secret) in secrets)
            Assert.False(all.Contains(secret, StringComparison.Ordinal), $"the {what} appears in what the run wrote");
    }

    private static async Task<byte[]> ReadSharedAsync(string path)
    {
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        var buffer = new MemoryStream();
        await stream.CopyToAsync(buffer);
        return buffer.ToArray();
    }
}
