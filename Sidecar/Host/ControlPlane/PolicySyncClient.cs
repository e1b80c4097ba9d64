using Airlock.Contracts.PolicySync;
using Airlock.Sidecar.Hosting;
using Airlock.Sidecar.Policy;
using Airlock.Sidecar.Snapshots;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Options;

namespace Airlock.Sidecar.ControlPlane;

/// <summary>
/// Keeps a PolicySync stream open: every snapshot received is verified and applied by the
/// <see cref="SnapshotStore"/> and acknowledged. Disconnects are retried with exponential backoff
/// and full jitter; a revoked credential stops the sidecar, failing closed.
/// </summary>
internal sealed class PolicySyncClient(
    SidecarIdentity identity,
    SnapshotStore store,
    IOptions<SidecarOptions> options,
    IHostApplicationLifetime lifetime,
    ILogger<PolicySyncClient> logger) : BackgroundService
{
    /// <summary>Exit code when the control plane says this sidecar is revoked.</summary>
    public const int RevokedExitCode = 3;

    /// <summary>Set once the control plane refused this sidecar: the process exits with <see cref="RevokedExitCode"/> whatever else happens while it stops.</summary>
    public static volatile bool Revoked;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var channel = GrpcChannel.ForAddress(identity.GrpcEndpoint, new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler
            {
                PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
                KeepAlivePingDelay = TimeSpan.FromSeconds(30),
                KeepAlivePingTimeout = TimeSpan.FromSeconds(10),
                EnableMultipleHttp2Connections = true,
            },
        });
        var client = new Contracts.PolicySync.PolicySync.PolicySyncClient(channel);
        var headers = new Metadata { { "authorization", $"Bearer {identity.Credential}" } };
        var failures = 0;

        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var request = new SubscribeRequest { SoftwareVersion = SoftwareVersion.Current, AppliedVersion = store.Latest?.Signed.Version ?? 0 };
                using var call = client.Subscribe(request, headers, cancellationToken: stoppingToken);
                await foreach (var message in call.ResponseStream.ReadAllAsync(stoppingToken))
                {
                    failures = 0;
                    var check = await store.ApplyAsync(FromMessage(message), stoppingToken);
                    if (check.Verdict != SnapshotVerdict.Rejected)
                        await client.AcknowledgeAsync(new SnapshotAck { Version = message.Version, ContentHash = message.ContentHash }, headers, cancellationToken: stoppingToken);
                }
                logger.LogWarning("PolicySync stream ended by the control plane; reconnecting");
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.PermissionDenied or StatusCode.Unauthenticated)
            {
                logger.LogCritical("The control plane refused this sidecar ({Status}: {Detail}); it was revoked or its credential is wrong. Failing closed and stopping.", e.StatusCode, e.Status.Detail);
                store.Clear();
                Revoked = true;
                Environment.ExitCode = RevokedExitCode;
                lifetime.StopApplication();
                return;
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (RpcException e)
            {
                logger.LogWarning("PolicySync unavailable ({Status}: {Detail}); serving snapshot version {Version} until {ExpiresAt:O}",
                    e.StatusCode, e.Status.Detail, store.Latest?.Signed.Version ?? 0, store.Latest?.Signed.ExpiresAt);
            }

            failures++;
            var delay = Backoff(failures, TimeSpan.FromSeconds(options.Value.MaxBackoffSeconds));
            try
            {
                await Task.Delay(delay, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Exponential from 250 ms to the ceiling, with full jitter so a fleet does not reconnect in lockstep.</summary>
    internal static TimeSpan Backoff(int failures, TimeSpan ceiling)
    {
        var exponential = Math.Min(ceiling.TotalMilliseconds, 250 * Math.Pow(2, Math.Min(failures - 1, 20)));
        return TimeSpan.FromMilliseconds(Math.Max(100, Random.Shared.NextDouble() * exponential));
    }

    internal static Policy.SignedSnapshot FromMessage(Contracts.PolicySync.SignedSnapshot m) => new(
        m.SidecarId,
        m.Version,
        m.ContentHash,
        m.IssuedAt?.ToDateTimeOffset() ?? DateTimeOffset.MinValue,
        m.TtlSeconds,
        m.Payload.ToByteArray(),
        m.KeyId,
        m.Signature.ToByteArray());
}
