using System.Collections.Concurrent;
using StackExchange.Redis;

namespace Airlock.ControlPlane.Replicas;

/// <summary>The signals every control-plane replica must hear, whichever replica raised them.</summary>
public static class ReplicaChannels
{
    /// <summary>Policy may have changed: every open PolicySync stream recompiles its sidecar's snapshot.</summary>
    public const string Policy = "policy";

    /// <summary>Sessions got new events (comma-separated ids): live views refresh.</summary>
    public const string Sessions = "sessions";

    /// <summary>An approval request changed (its id): boards, counts and toasts refresh.</summary>
    public const string Approvals = "approvals";
}

/// <summary>
/// In-process signals that reach every replica. A signal is delivered here at once, and — when
/// <c>Airlock:Redis</c> names a Redis server — published there for the other replicas (which skip
/// their own). The same Redis carries the SignalR backplane, so a decision sent to a sidecar's
/// group reaches the replica it is connected to. Without Redis this is a plain in-process event.
/// </summary>
public sealed class ReplicaSignals(ILogger<ReplicaSignals> logger) : IAsyncDisposable
{
    private const string Prefix = "airlock:signals:";
    private readonly string _origin = Guid.NewGuid().ToString("N");
    private readonly ConcurrentDictionary<string, Action<string>[]> _handlers = new();
    private ConnectionMultiplexer? _redis;

    /// <summary>Whether signals cross replicas (a Redis server is configured).</summary>
    public bool Shared => _redis is not null;

    /// <summary>Connects to Redis (retrying in the background when it is down: replicas then act alone until it is back).</summary>
    public async Task ConnectAsync(string configuration)
    {
        var options = ConfigurationOptions.Parse(configuration);
        options.AbortOnConnectFail = false;
        options.ClientName = "airlock-controlplane";
        _redis = await ConnectionMultiplexer.ConnectAsync(options);
        if (!_redis.IsConnected)
            logger.LogWarning("Airlock:Redis: cannot reach Redis at {Endpoints} yet; this replica acts alone until it can (retrying)", string.Join(", ", options.EndPoints));
        _redis.ConnectionFailed += (_, e) => logger.LogWarning("Airlock:Redis: connection lost ({Failure}); this replica acts alone until it is back", e.FailureType);
        _redis.ConnectionRestored += (_, _) => logger.LogInformation("Airlock:Redis: connection restored");
        await _redis.GetSubscriber().SubscribeAsync(RedisChannel.Pattern(Prefix + "*"), (channel, message) =>
        {
            var text = (string?)message ?? "";
            var bar = text.IndexOf('|', StringComparison.Ordinal);
            if (bar < 0 || text.AsSpan(0, bar).SequenceEqual(_origin))
                return;
            Deliver(((string)channel!)[Prefix.Length..], text[(bar + 1)..]);
        });
    }

    public void On(string channel, Action<string> handler) =>
        _handlers.AddOrUpdate(channel, [handler], (_, existing) => [.. existing, handler]);

    /// <summary>Delivers here now and to every other replica (best effort: each also refreshes on its own timers).</summary>
    public void Publish(string channel, string payload = "")
    {
        Deliver(channel, payload);
        if (_redis is { IsConnected: true } redis)
            redis.GetSubscriber().Publish(RedisChannel.Literal(Prefix + channel), $"{_origin}|{payload}", CommandFlags.FireAndForget);
    }

    private void Deliver(string channel, string payload)
    {
        if (!_handlers.TryGetValue(channel, out var handlers))
            return;
        foreach (var handler in handlers)
        {
            try
            {
                handler(payload);
            }
            catch (Exception e)
            {
                logger.LogWarning(e, "A {Channel} signal handler failed", channel);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_redis is not null)
            await _redis.DisposeAsync();
    }
}

/// <summary>Connects <see cref="ReplicaSignals"/> to the Redis server <c>Airlock:Redis</c> names, at start.</summary>
public sealed class ReplicaSignalsConnector(ReplicaSignals signals, IConfiguration configuration) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (configuration["Airlock:Redis"] is { Length: > 0 } redis)
            await signals.ConnectAsync(redis);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
