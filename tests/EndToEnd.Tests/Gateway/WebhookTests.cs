using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Airlock.Testing;
using Npgsql;

namespace Airlock.EndToEnd.Tests.Gateway;

/// <summary>
/// Outgoing webhooks on approval requests and decisions, against a real receiver on loopback: Airlock's
/// JSON (HMAC-signed, retried with backoff after a failure, every attempt in the delivery log) and a
/// Slack-compatible message.
/// </summary>
public sealed class WebhookTests(ApprovalFixture fixture) : IClassFixture<ApprovalFixture>
{
    private sealed record Received(string Path, string Event, string Delivery, string Timestamp, string Signature, string Body);

    [Fact]
    public async Task Requests_and_decisions_are_posted_signed_retried_and_logged_in_json_and_for_slack()
    {
        var cp = fixture.Harness.ControlPlane;
        var port = FreePort.Next();
        using var listener = new HttpListener();
        listener.Prefixes.Add($"http://127.0.0.1:{port}/");
        listener.Start();
        var received = new List<Received>();
        var failFirst = 1;
        var serving = Task.Run(async () =>
        {
            while (listener.IsListening)
            {
                HttpListenerContext context;
                try
                {
                    context = await listener.GetContextAsync();
                }
                catch (Exception e) when (e is HttpListenerException or ObjectDisposedException)
                {
                    return;
                }
                using var reader = new StreamReader(context.Request.InputStream, Encoding.UTF8);
                var body = await reader.ReadToEndAsync();
                var path = context.Request.Url!.AbsolutePath;
                var fail = path == "/json" && Interlocked.Decrement(ref failFirst) >= 0;
                lock (received)
                    received.Add(new Received(path, context.Request.Headers["X-Airlock-Event"] ?? "", context.Request.Headers["X-Airlock-Delivery"] ?? "",
                        context.Request.Headers["X-Airlock-Timestamp"] ?? "", context.Request.Headers["X-Airlock-Signature"] ?? "", body));
                context.Response.StatusCode = fail ? 500 : 200;
                context.Response.Close();
            }
        });

        const string secret = "a-shared-webhook-secret-0123";
        var created = await cp.Api.PostAsJsonAsync("/api/v1/webhooks", new { name = "audit", url = $"http://127.0.0.1:{port}/json", secret });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var slack = await cp.Api.PostAsJsonAsync("/api/v1/webhooks", new { name = "chat", url = $"http://127.0.0.1:{port}/slack", format = "slack" });
        Assert.Equal(HttpStatusCode.Created, slack.StatusCode);
        var slackSecret = JsonDocument.Parse(await slack.Content.ReadAsStringAsync()).RootElement.GetProperty("secret").GetString()!;
        Assert.StartsWith("whsec_", slackSecret);
        var bad = await cp.Api.PostAsJsonAsync("/api/v1/webhooks", new { name = "bad", url = "ftp://example/x", format = "teams" });
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("url: an absolute http or https URL", await bad.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.DoesNotContain(secret, await cp.Api.GetStringAsync("/api/v1/webhooks"), StringComparison.Ordinal);

        // A fail-fast request, then its approval.
        await using var connection = new NpgsqlConnection(fixture.ConnectionString);
        await connection.OpenAsync();
        await using var insert = new NpgsqlCommand("INSERT INTO orders VALUES ($1, 'webhook')", connection) { Parameters = { new() { Value = 987654321 } } };
        var refused = await Assert.ThrowsAsync<PostgresException>(() => insert.ExecuteNonQueryAsync());
        var id = long.Parse(System.Text.RegularExpressions.Regex.Match(refused.MessageText, "request #([0-9]+)").Groups[1].Value);
        Assert.Equal(HttpStatusCode.OK, (await (await fixture.PersonAsync("alice")).PostAsJsonAsync($"/api/v1/approvals/{id}/approve", new { comment = "ok" })).StatusCode);

        List<Received> Snapshot()
        {
            lock (received)
                return [.. received];
        }
        // The JSON receiver failed once: the request event came again about two seconds later.
        await PolicySyncTests.Eventually(() => Task.FromResult(
            Snapshot().Count(r => r.Path == "/json") >= 3 && Snapshot().Count(r => r.Path == "/slack") >= 2), seconds: 30);
        var json = Snapshot().Where(r => r.Path == "/json").ToList();
        Assert.Equal(["approval.requested", "approval.requested", "approval.decided"], json.Select(r => r.Event).Take(3));
        Assert.Equal(json[0].Delivery, json[1].Delivery); // the same delivery, tried again
        Assert.Equal(json[0].Body, json[1].Body);
        foreach (var r in json)
        {
            var expected = "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes($"{r.Timestamp}.{r.Body}")));
            Assert.Equal(expected, r.Signature);
            Assert.True(Math.Abs(DateTimeOffset.UtcNow.ToUnixTimeSeconds() - long.Parse(r.Timestamp)) < 120);
        }
        var requested = JsonDocument.Parse(json[0].Body).RootElement.GetProperty("approval");
        Assert.Equal((id, "pending", "deployer", "pg", "inserts-fail-fast"), (requested.GetProperty("id").GetInt64(), requested.GetProperty("status").GetString(),
            requested.GetProperty("agent").GetString(), requested.GetProperty("target").GetString(), requested.GetProperty("rule").GetString()));
        Assert.EndsWith($"/approvals/{id}", requested.GetProperty("url").GetString());
        var decided = JsonDocument.Parse(json[2].Body).RootElement.GetProperty("approval");
        Assert.Equal(("approved", "alice", "ok"), (decided.GetProperty("status").GetString(), decided.GetProperty("decidedBy").GetString(), decided.GetProperty("comment").GetString()));
        // Parameter values never leave in a webhook (a value no port or id can contain by chance).
        Assert.All(Snapshot(), r => Assert.DoesNotContain("987654321", r.Body, StringComparison.Ordinal));

        var chat = Snapshot().Where(r => r.Path == "/slack").ToList();
        var message = JsonDocument.Parse(chat[0].Body).RootElement;
        Assert.StartsWith($"Approval request #{id}: deployer on pg (rule inserts-fail-fast)", message.GetProperty("text").GetString());
        Assert.Contains("INSERT INTO orders VALUES ($1, 'webhook')", message.GetProperty("blocks")[1].GetProperty("text").GetProperty("text").GetString(), StringComparison.Ordinal);
        Assert.StartsWith($"Approval request #{id}: approved by alice: ok", JsonDocument.Parse(chat[1].Body).RootElement.GetProperty("text").GetString());

        // The delivery log: the failed attempt and the retry that landed.
        using var log = JsonDocument.Parse(await cp.Api.GetStringAsync("/api/v1/webhooks/deliveries?webhook=audit"));
        var first = log.RootElement.EnumerateArray().Single(d => d.GetProperty("id").GetInt64().ToString() == json[0].Delivery);
        Assert.Equal(("delivered", 2, 200), (first.GetProperty("status").GetString(), first.GetProperty("attempts").GetInt32(), first.GetProperty("lastStatusCode").GetInt32()));

        Assert.Equal(HttpStatusCode.NoContent, (await cp.Api.DeleteAsync("/api/v1/webhooks/audit")).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await cp.Api.DeleteAsync("/api/v1/webhooks/chat")).StatusCode);
        listener.Stop();
        await serving;
    }
}
