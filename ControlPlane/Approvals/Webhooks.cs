using System.ComponentModel.DataAnnotations;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Airlock.ControlPlane.Data;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Airlock.ControlPlane.Approvals;

/// <summary>The approval events a webhook hears.</summary>
public static class WebhookEvents
{
    public const string Requested = "approval.requested";
    public const string Decided = "approval.decided";
}

/// <summary>The two payload formats.</summary>
public static class WebhookFormats
{
    public const string Json = "json";
    public const string Slack = "slack";

    public static IReadOnlyList<string> All { get; } = [Json, Slack];
}

/// <summary>
/// How a receiver checks a delivery: <c>X-Airlock-Signature: sha256=&lt;hex&gt;</c> is
/// HMAC-SHA256 with the webhook's secret over <c>&lt;X-Airlock-Timestamp&gt;.&lt;body&gt;</c>
/// (the timestamp in Unix seconds: reject old ones to stop replays).
/// </summary>
public static class WebhookSignature
{
    public static string Sign(string secret, long timestamp, string body) =>
        "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes($"{timestamp}.{body}")));
}

/// <summary>
/// What a webhook receives about a request. Statement texts go out (cut at 2,000 characters);
/// parameter values never do (they may hold data the console shows only to signed-in people).
/// </summary>
public static class WebhookPayloads
{
    public const int MaxStatementChars = 2000;

    public static string Build(string format, string @event, DateTimeOffset at, ApprovalView a, string url) =>
        format == WebhookFormats.Slack ? Slack(@event, a, url) : Json(@event, at, a, url);

    /// <summary>Airlock's own payload; the delivery's id is in the <c>X-Airlock-Delivery</c> header.</summary>
    private static string Json(string @event, DateTimeOffset at, ApprovalView a, string url) =>
        new JsonObject
        {
            ["event"] = @event,
            ["at"] = at.ToString("O"),
            ["approval"] = new JsonObject
            {
                ["id"] = a.Id,
                ["url"] = url,
                ["kind"] = a.Kind,
                ["status"] = a.Status,
                ["agent"] = a.Agent,
                ["agentOwner"] = a.AgentOwner,
                ["requestedBy"] = a.RequestedBy,
                ["role"] = a.Role,
                ["target"] = a.Target,
                ["statements"] = new JsonArray([.. a.Statements.Select(s => (JsonNode?)JsonValue.Create(Cut(s)))]),
                ["classification"] = a.Classification,
                ["rule"] = a.Rule,
                ["mode"] = a.Mode,
                ["group"] = a.Group,
                ["required"] = a.Required,
                ["approvals"] = a.Approvals,
                ["createdAt"] = a.CreatedAt.ToString("O"),
                ["expiresAt"] = a.ExpiresAt.ToString("O"),
                ["decidedAt"] = a.DecidedAt?.ToString("O"),
                ["decidedBy"] = a.DecidedBy,
                ["comment"] = a.Comment,
            },
        }.ToJsonString();

    /// <summary>A Slack incoming-webhook message (<c>text</c> plus <c>blocks</c>), in Slack's mrkdwn with its three characters escaped.</summary>
    private static string Slack(string @event, ApprovalView a, string url)
    {
        var headline = @event == WebhookEvents.Requested
            ? $"Approval request #{a.Id}: {a.Agent} on {a.Target} (rule {a.Rule}) needs {a.Required} approval{(a.Required == 1 ? "" : "s")}"
            : $"Approval request #{a.Id}: {a.Status}{(a.DecidedBy is null ? "" : $" by {a.DecidedBy}")}{(a.Comment is null ? "" : $": {a.Comment}")}";
        var details = $"*<{Escape(url)}|{Escape(headline)}>*\nagent *{Escape(a.Agent)}* (owner {Escape(a.AgentOwner)}) · target *{Escape(a.Target)}* · {Escape(a.Classification)} · {Escape(a.Mode)}";
        var blocks = new JsonArray
        {
            new JsonObject { ["type"] = "section", ["text"] = new JsonObject { ["type"] = "mrkdwn", ["text"] = details } },
        };
        foreach (var statement in a.Statements.Take(5))
            blocks.Add(new JsonObject { ["type"] = "section", ["text"] = new JsonObject { ["type"] = "mrkdwn", ["text"] = "```" + Escape(Cut(statement)).Replace("```", "ˋˋˋ", StringComparison.Ordinal) + "```" } });
        return new JsonObject { ["text"] = headline, ["blocks"] = blocks }.ToJsonString();
    }

    private static string Escape(string s) => s.Replace("&", "&amp;", StringComparison.Ordinal).Replace("<", "&lt;", StringComparison.Ordinal).Replace(">", "&gt;", StringComparison.Ordinal);

    private static string Cut(string s) => s.Length <= MaxStatementChars ? s : s[..MaxStatementChars] + "…";
}

/// <summary><c>Airlock:Webhooks</c>: how deliveries are retried.</summary>
public sealed class WebhookOptions
{
    /// <summary>Attempts before a delivery is marked failed.</summary>
    [Range(1, 50)]
    public int MaxAttempts { get; set; } = 10;

    /// <summary>The wait after the first failure; it doubles with each further one (at most an hour).</summary>
    [Range(1, 3600)]
    public int FirstRetrySeconds { get; set; } = 2;

    /// <summary>How long a receiver may take to answer.</summary>
    [Range(1, 120)]
    public int TimeoutSeconds { get; set; } = 10;
}

public sealed record WebhookView(string Name, string Url, string Format, bool Enabled, DateTimeOffset CreatedAt);

/// <summary>A new webhook and its secret, shown this once.</summary>
public sealed record WebhookCreated(WebhookView Webhook, string Secret);

public sealed record WebhookDeliveryView(long Id, string Webhook, string Event, long ApprovalId, string Status, int Attempts, int? LastStatusCode, string? LastError, DateTimeOffset CreatedAt, DateTimeOffset? DeliveredAt, DateTimeOffset NextAttemptAt);

/// <summary>
/// Webhooks and their delivery log. Deliveries are written to the store with the change they report
/// (an outbox), so a crash between the two loses nothing; <see cref="WebhookDispatcher"/> sends them.
/// </summary>
public sealed class WebhookService(AirlockDbContext db, IDataProtectionProvider dataProtection, TimeProvider time)
{
    public const string SecretPurpose = "Airlock.WebhookSecret.v1";
    private readonly IDataProtector _secrets = dataProtection.CreateProtector(SecretPurpose);

    public async Task<IReadOnlyList<WebhookView>> ListAsync(CancellationToken ct) =>
        (await db.Webhooks.AsNoTracking().OrderBy(w => w.Name).ToListAsync(ct)).Select(ToView).ToList();

    /// <summary>Adds a webhook; its secret is the one given, or a new random one; either is returned only now.</summary>
    public async Task<(WebhookCreated? Created, string? Problem, int Status)> CreateAsync(string? name, string? url, string? format, string? secret, string actor, CancellationToken ct)
    {
        var problems = new List<string>();
        if (name is null || !Identity.ConsoleGroupName.IsValid(name))
            problems.Add($"name: {Identity.ConsoleGroupName.Rule}");
        if (url is null || !Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("https" or "http") || !string.IsNullOrEmpty(uri.UserInfo))
            problems.Add("url: an absolute http or https URL without credentials in it");
        format ??= WebhookFormats.Json;
        if (!WebhookFormats.All.Contains(format))
            problems.Add($"format: one of {string.Join(", ", WebhookFormats.All)}");
        if (secret is not null && secret.Length is < 16 or > 200)
            problems.Add("secret: 16–200 characters (or leave it out for a random one)");
        if (problems.Count > 0)
            return (null, string.Join("; ", problems), 400);
        if (await db.Webhooks.AnyAsync(w => w.Name == name, ct))
            return (null, $"name: webhook '{name}' already exists", 409);
        secret ??= "whsec_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(24));
        var now = time.GetUtcNow();
        var webhook = new Webhook { Id = Guid.NewGuid(), Name = name!, Url = url!, Format = format, SecretProtected = _secrets.Protect(secret), CreatedAt = now };
        db.Webhooks.Add(webhook);
        db.Record(now, actor, "create", "webhook", webhook.Name, null, new { webhook.Name, webhook.Url, webhook.Format, secret = AuditLog.Redacted });
        await db.SaveChangesAsync(ct);
        return (new WebhookCreated(ToView(webhook), secret), null, 201);
    }

    public async Task<bool> DeleteAsync(string name, string actor, CancellationToken ct)
    {
        var webhook = await db.Webhooks.SingleOrDefaultAsync(w => w.Name == name, ct);
        if (webhook is null)
            return false;
        db.Webhooks.Remove(webhook);
        await db.WebhookDeliveries.Where(d => d.WebhookId == webhook.Id).ExecuteDeleteAsync(ct);
        db.Record(time.GetUtcNow(), actor, "delete", "webhook", name, new { webhook.Name, webhook.Url }, null);
        await db.SaveChangesAsync(ct);
        return true;
    }

    public async Task<IReadOnlyList<WebhookDeliveryView>> DeliveriesAsync(string? name, int take, CancellationToken ct)
    {
        var hooks = await db.Webhooks.AsNoTracking().ToDictionaryAsync(w => w.Id, w => w.Name, ct);
        var query = db.WebhookDeliveries.AsNoTracking();
        if (name is not null)
        {
            var id = hooks.FirstOrDefault(h => h.Value == name).Key;
            query = query.Where(d => d.WebhookId == id);
        }
        var rows = await query.OrderByDescending(d => d.Id).Take(Math.Clamp(take, 1, 500)).ToListAsync(ct);
        return rows.Select(d => new WebhookDeliveryView(d.Id, hooks.GetValueOrDefault(d.WebhookId, "?"), d.Event, d.ApprovalId, d.Status.ToString().ToLowerInvariant(),
            d.Attempts, d.LastStatusCode, d.LastError, d.CreatedAt, d.DeliveredAt, d.NextAttemptAt)).ToList();
    }

    /// <summary>
    /// Adds a delivery of <paramref name="event"/> about <paramref name="approval"/> (as it stands at the
    /// event) for every enabled webhook to the current unit of work: saved with the change it reports.
    /// </summary>
    public static async Task<bool> EnqueueAsync(AirlockDbContext db, string @event, ApprovalView approval, string url, DateTimeOffset now, CancellationToken ct)
    {
        var any = false;
        foreach (var webhook in await db.Webhooks.AsNoTracking().Where(w => w.Enabled).ToListAsync(ct))
        {
            db.WebhookDeliveries.Add(new WebhookDelivery
            {
                WebhookId = webhook.Id,
                Event = @event,
                ApprovalId = approval.Id,
                Payload = WebhookPayloads.Build(webhook.Format, @event, now, approval, url),
                Status = WebhookDeliveryStatus.Pending,
                NextAttemptAt = now,
                CreatedAt = now,
            });
            any = true;
        }
        return any;
    }

    internal string Secret(Webhook webhook) => _secrets.Unprotect(webhook.SecretProtected);

    private static WebhookView ToView(Webhook w) => new(w.Name, w.Url, w.Format, w.Enabled, w.CreatedAt);
}

/// <summary>
/// Sends due deliveries: signed POSTs, in order per webhook, retried with doubling waits, each attempt in the delivery log.
/// Several replicas may run it: a delivery is leased (its next attempt moved on) by one before it is sent.
/// </summary>
public sealed class WebhookDispatcher(IServiceScopeFactory scopes, IHttpClientFactory http, IOptions<WebhookOptions> options, TimeProvider time, ILogger<WebhookDispatcher> logger) : BackgroundService
{
    public const string HttpClientName = "airlock-webhooks";
    private static readonly TimeSpan Lease = TimeSpan.FromMinutes(2);
    private readonly SemaphoreSlim _wake = new(0);

    /// <summary>Something was enqueued: look now rather than at the next tick.</summary>
    public void Wake()
    {
        if (_wake.CurrentCount == 0)
            _wake.Release();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Delay(ApprovalExpiry.StartupQuiet, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await _wake.WaitAsync(TimeSpan.FromSeconds(1), stoppingToken);
                while (await SendDueAsync(stoppingToken) > 0)
                {
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                logger.LogWarning("Webhook deliveries failed to run: {Error}", e.Message);
            }
        }
    }

    /// <summary>Sends what is due now; returns how many it sent (or tried).</summary>
    public async Task<int> SendDueAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AirlockDbContext>();
        var webhooks = scope.ServiceProvider.GetRequiredService<WebhookService>();
        var now = time.GetUtcNow();
        // In order per webhook: a delivery waiting for its retry holds back the later ones to the same
        // receiver, so a request is never announced after its decision.
        var pending = await db.WebhookDeliveries.AsNoTracking().Where(d => d.Status == WebhookDeliveryStatus.Pending)
            .OrderBy(d => d.Id).Take(1000).ToListAsync(ct);
        var due = pending.GroupBy(d => d.WebhookId).Select(g => g.First()).Where(d => d.NextAttemptAt <= now).ToList();
        var sent = 0;
        foreach (var delivery in due)
        {
            if (await db.WebhookDeliveries.Where(d => d.Id == delivery.Id && d.NextAttemptAt == delivery.NextAttemptAt && d.Status == WebhookDeliveryStatus.Pending)
                    .ExecuteUpdateAsync(u => u.SetProperty(d => d.NextAttemptAt, now + Lease), ct) == 0)
                continue; // another replica has it
            var webhook = await db.Webhooks.AsNoTracking().SingleOrDefaultAsync(w => w.Id == delivery.WebhookId, ct);
            if (webhook is null)
                continue;
            var (status, error) = await PostAsync(webhook, webhooks.Secret(webhook), delivery, delivery.Payload, ct);
            var attempts = delivery.Attempts + 1;
            var delivered = status is >= 200 and < 300;
            var failed = !delivered && attempts >= options.Value.MaxAttempts;
            var next = now + Backoff(attempts, options.Value.FirstRetrySeconds);
            await db.WebhookDeliveries.Where(d => d.Id == delivery.Id).ExecuteUpdateAsync(u => u
                .SetProperty(d => d.Attempts, attempts)
                .SetProperty(d => d.LastStatusCode, status)
                .SetProperty(d => d.LastError, error)
                .SetProperty(d => d.Status, delivered ? WebhookDeliveryStatus.Delivered : failed ? WebhookDeliveryStatus.Failed : WebhookDeliveryStatus.Pending)
                .SetProperty(d => d.DeliveredAt, delivered ? time.GetUtcNow() : null)
                .SetProperty(d => d.NextAttemptAt, next), ct);
            if (!delivered)
                logger.LogWarning("Webhook {Webhook}: delivery {Delivery} attempt {Attempt} failed ({Error}){Next}", webhook.Name, delivery.Id, attempts,
                    error ?? $"HTTP {status}", failed ? "; giving up" : $"; next at {next:u}");
            sent++;
        }
        return sent;
    }

    /// <summary>The wait after failure number <paramref name="attempts"/>: first, then doubling, at most an hour.</summary>
    public static TimeSpan Backoff(int attempts, int firstSeconds) =>
        TimeSpan.FromSeconds(Math.Min(3600, firstSeconds * Math.Pow(2, Math.Min(attempts - 1, 20))));

    private async Task<(int? Status, string? Error)> PostAsync(Webhook webhook, string secret, WebhookDelivery delivery, string payload, CancellationToken ct)
    {
        var timestamp = time.GetUtcNow().ToUnixTimeSeconds();
        using var request = new HttpRequestMessage(HttpMethod.Post, webhook.Url) { Content = new StringContent(payload, Encoding.UTF8, "application/json") };
        request.Headers.Add("X-Airlock-Event", delivery.Event);
        request.Headers.Add("X-Airlock-Delivery", delivery.Id.ToString());
        request.Headers.Add("X-Airlock-Timestamp", timestamp.ToString());
        request.Headers.Add("X-Airlock-Signature", WebhookSignature.Sign(secret, timestamp, payload));
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(options.Value.TimeoutSeconds));
            using var response = await http.CreateClient(HttpClientName).SendAsync(request, timeout.Token);
            return ((int)response.StatusCode, response.IsSuccessStatusCode ? null : $"HTTP {(int)response.StatusCode} {response.ReasonPhrase}");
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
        {
            return (null, e is TaskCanceledException ? $"no answer within {options.Value.TimeoutSeconds} s" : e.Message.Length > 300 ? e.Message[..300] : e.Message);
        }
    }
}
