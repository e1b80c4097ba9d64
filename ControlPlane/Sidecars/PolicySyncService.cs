using Airlock.ControlPlane.Data;
using Airlock.ControlPlane.Identity;
using Airlock.ControlPlane.Policies;
using Airlock.Contracts.PolicySync;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.AspNetCore.Authorization;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using PolicySnapshot = Airlock.Sidecar.Policy.SignedSnapshot;

namespace Airlock.ControlPlane.Sidecars;

/// <summary>
/// The gRPC side of policy distribution. Each subscription:
/// <list type="number">
/// <item>authenticates the sidecar by its credential (the authorization policy);</item>
/// <item>sends the current snapshot at once;</item>
/// <item>waits for a policy change, the refresh interval or cancellation (revocation, shutdown);</item>
/// <item>recompiles and sends when the content changed or the refresh is due.</item>
/// </list>
/// </summary>
[Authorize(Policy = AccessPolicies.Sidecar)]
internal sealed class PolicySyncService(
    IServiceScopeFactory scopes,
    PolicyChangeNotifier notifier,
    SidecarPresence presence,
    IOptions<SnapshotOptions> options,
    TimeProvider time,
    ILogger<PolicySyncService> logger) : Contracts.PolicySync.PolicySync.PolicySyncBase
{
    public override async Task Subscribe(SubscribeRequest request, IServerStreamWriter<SignedSnapshot> responseStream, ServerCallContext context)
    {
        var sidecarId = context.GetHttpContext().User.SidecarId() ?? throw new RpcException(new Status(StatusCode.Unauthenticated, "sidecar credential required"));
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken);
        using var registration = presence.StreamOpened(sidecarId, cancel);
        var ct = cancel.Token;

        await UpdateSidecarAsync(sidecarId, s =>
        {
            s.SoftwareVersion = Truncate(request.SoftwareVersion, 50);
            s.Address = Truncate(string.IsNullOrEmpty(request.Address) ? context.Peer : request.Address, 200);
        }, ct);

        string? sentHash = null;
        var sentAt = DateTimeOffset.MinValue;
        try
        {
            while (!ct.IsCancellationRequested)
            {
                var generation = notifier.Generation;
                PolicySnapshot? snapshot;
                using (var scope = scopes.CreateScope())
                    snapshot = await scope.ServiceProvider.GetRequiredService<SnapshotCompiler>().CompileAndSignAsync(sidecarId, ct);
                if (snapshot is null)
                    throw new RpcException(new Status(StatusCode.PermissionDenied, "sidecar was revoked"));

                var now = time.GetUtcNow();
                if (snapshot.ContentHash != sentHash || now - sentAt >= options.Value.Refresh)
                {
                    await responseStream.WriteAsync(ToMessage(snapshot), ct);
                    if (snapshot.ContentHash != sentHash)
                        logger.LogInformation("Sent snapshot version {Version} to sidecar {SidecarId}", snapshot.Version, sidecarId);
                    sentHash = snapshot.ContentHash;
                    sentAt = now;
                }

                var refreshDue = sentAt + options.Value.Refresh - time.GetUtcNow();
                using var wait = CancellationTokenSource.CreateLinkedTokenSource(ct);
                wait.CancelAfter(refreshDue > TimeSpan.Zero ? refreshDue : TimeSpan.Zero);
                try
                {
                    await notifier.WaitForChangeAfterAsync(generation, wait.Token);
                }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                {
                    // refresh interval elapsed
                }
            }
        }
        catch (OperationCanceledException) when (!context.CancellationToken.IsCancellationRequested)
        {
            // Cancelled by revocation rather than by the client.
            throw new RpcException(new Status(StatusCode.PermissionDenied, "sidecar was revoked"));
        }
        catch (OperationCanceledException)
        {
            // client went away or the server is stopping
        }
    }

    public override async Task<SnapshotAckReply> Acknowledge(SnapshotAck request, ServerCallContext context)
    {
        var sidecarId = context.GetHttpContext().User.SidecarId() ?? throw new RpcException(new Status(StatusCode.Unauthenticated, "sidecar credential required"));
        await UpdateSidecarAsync(sidecarId, s => s.AppliedVersion = Math.Max(s.AppliedVersion, request.Version), context.CancellationToken);
        using var scope = scopes.CreateScope();
        var current = await scope.ServiceProvider.GetRequiredService<SnapshotCompiler>().CurrentVersionAsync(sidecarId, context.CancellationToken);
        logger.LogInformation("Sidecar {SidecarId} applied snapshot version {Version}", sidecarId, request.Version);
        return new SnapshotAckReply { CurrentVersion = current };
    }

    private async Task UpdateSidecarAsync(Guid sidecarId, Action<Data.Sidecar> update, CancellationToken ct)
    {
        using (var scope = scopes.CreateScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<AirlockDbContext>();
            var sidecar = await db.Sidecars.SingleOrDefaultAsync(s => s.Id == sidecarId, ct);
            if (sidecar is null || sidecar.RevokedAt is not null)
                throw new RpcException(new Status(StatusCode.PermissionDenied, "sidecar was revoked"));
            update(sidecar);
            sidecar.LastSeenAt = time.GetUtcNow();
            await db.SaveChangesAsync(ct);
        }
        presence.Notify();
    }

    private static string? Truncate(string? value, int length) => value is null || value.Length <= length ? value : value[..length];

    internal static SignedSnapshot ToMessage(PolicySnapshot s) => new()
    {
        SidecarId = s.SidecarId,
        Version = s.Version,
        ContentHash = s.ContentHash,
        IssuedAt = Timestamp.FromDateTimeOffset(s.IssuedAt),
        TtlSeconds = s.TtlSeconds,
        Payload = ByteString.CopyFrom(s.Payload),
        KeyId = s.KeyId,
        Signature = ByteString.CopyFrom(s.Signature),
    };
}
