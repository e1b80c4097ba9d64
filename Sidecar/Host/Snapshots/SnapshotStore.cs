using System.Text.Json;
using Airlock.Sidecar.ControlPlane;
using Airlock.Sidecar.Hosting;
using Airlock.Sidecar.Policy;

namespace Airlock.Sidecar.Snapshots;

/// <summary>A verified snapshot and its decoded content, swapped as one reference.</summary>
public sealed record ActiveSnapshot(SignedSnapshot Signed, PolicySnapshot Policy);

/// <summary>
/// Holds the snapshot the sidecar enforces. Every candidate passes <see cref="SnapshotVerifier"/>;
/// an accepted one is written to disk atomically, then swapped in memory atomically. Past its TTL
/// <see cref="Current"/> is null: the sidecar fails closed.
/// </summary>
public sealed class SnapshotStore(SidecarIdentity identity, SidecarOptionsSnapshot options, TimeProvider time, ILogger<SnapshotStore> logger)
{
    public const string FileName = "snapshot.json";

    public const string LearnedKeysFileName = "snapshot-keys.json";

    private readonly string _path = Path.Combine(options.StateDirectory, FileName);
    private readonly string _keysPath = Path.Combine(options.StateDirectory, LearnedKeysFileName);
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private ActiveSnapshot? _active;
    private IReadOnlyList<SnapshotKey> _learned = [];

    /// <summary>Raised after a new version was applied.</summary>
    public event Action<ActiveSnapshot>? Applied;

    /// <summary>The snapshot to enforce, or null when there is none or it expired.</summary>
    public ActiveSnapshot? Current
    {
        get
        {
            var active = Volatile.Read(ref _active);
            return active is not null && active.Signed.ExpiresAt > time.GetUtcNow() ? active : null;
        }
    }

    /// <summary>The last applied one even when expired (for status and acknowledgement).</summary>
    public ActiveSnapshot? Latest => Volatile.Read(ref _active);

    /// <summary>
    /// Keys trusted to sign snapshots: exactly those the latest verified snapshot publishes — so a key
    /// the control plane stops publishing (rotated out, compromised) is no longer trusted — and, until
    /// the first verified snapshot, those enrollment gave. A snapshot that publishes no key at all
    /// leaves the trusted keys as they were (it cannot make the sidecar trust nothing, or the
    /// enrollment keys again).
    /// </summary>
    public IReadOnlyList<SnapshotKey> TrustedKeys =>
        _learnedUnreadable ? [] : Volatile.Read(ref _learned) is { Count: > 0 } learned ? learned : identity.EnrolledSnapshotKeys;

    /// <summary>The learned keys' file exists but cannot be read: trust nothing (not the enrollment keys, which may have been rotated out) until the file is set right.</summary>
    private volatile bool _learnedUnreadable;

    /// <summary>Loads the cached snapshot from disk, if it still verifies and has not expired.</summary>
    public async Task LoadCachedAsync(CancellationToken ct)
    {
        Volatile.Write(ref _learned, await ReadLearnedKeysAsync(ct));
        SignedSnapshot? cached;
        try
        {
            cached = await StateFiles.ReadJsonAsync<SignedSnapshot>(_path, SnapshotCodec.EnvelopeJson, ct);
        }
        catch (JsonException e)
        {
            logger.LogError("Cached snapshot {Path} is unreadable and was ignored: {Error}", _path, e.Message);
            return;
        }
        if (cached is null)
        {
            logger.LogInformation("No cached snapshot; waiting for the control plane");
            return;
        }
        // The cache is verified like anything received, against keys that enrollment gave or that an
        // earlier verified snapshot published — never against keys inside the cached payload itself.
        var keys = TrustedKeys;
        var check = SnapshotVerifier.Check(cached, identity.SidecarId, keys, current: null, time.GetUtcNow());
        if (check.Verdict == SnapshotVerdict.Rejected)
        {
            logger.LogError("Cached snapshot rejected: {Reason}; failing closed until the control plane answers", check.Reason);
            return;
        }
        Volatile.Write(ref _active, new ActiveSnapshot(cached, check.Snapshot!));
        logger.LogInformation("Serving cached snapshot version {Version} until {ExpiresAt:O}", cached.Version, cached.ExpiresAt);
    }

    /// <summary>Verifies and applies a received snapshot. Returns the verdict; a rejection keeps the current one.</summary>
    public async Task<SnapshotCheck> ApplyAsync(SignedSnapshot candidate, CancellationToken ct)
    {
        await _writeLock.WaitAsync(ct);
        try
        {
            var check = SnapshotVerifier.Check(candidate, identity.SidecarId, TrustedKeys, Latest?.Signed, time.GetUtcNow());
            switch (check.Verdict)
            {
                case SnapshotVerdict.Rejected:
                    logger.LogWarning("Rejected snapshot version {Version}: {Reason}; keeping version {Current}", candidate.Version, check.Reason, Latest?.Signed.Version ?? 0);
                    return check;
                case SnapshotVerdict.Refreshed:
                    await StateFiles.WriteJsonAsync(_path, candidate, SnapshotCodec.EnvelopeJson, ct);
                    Volatile.Write(ref _active, new ActiveSnapshot(candidate, check.Snapshot!));
                    logger.LogDebug("Snapshot version {Version} refreshed until {ExpiresAt:O}", candidate.Version, candidate.ExpiresAt);
                    return check;
                default:
                    if (check.Snapshot!.SnapshotKeys.Count > 0)
                    {
                        var dropped = TrustedKeys.Select(k => k.KeyId).Except(check.Snapshot.SnapshotKeys.Select(k => k.KeyId)).ToList();
                        await StateFiles.WriteJsonAsync(_keysPath, check.Snapshot.SnapshotKeys, SnapshotCodec.EnvelopeJson, ct);
                        Volatile.Write(ref _learned, check.Snapshot.SnapshotKeys);
                        if (dropped.Count > 0)
                            logger.LogInformation("Snapshot signing keys no longer trusted (not published by version {Version}): {Keys}", candidate.Version, string.Join(", ", dropped));
                    }
                    await StateFiles.WriteJsonAsync(_path, candidate, SnapshotCodec.EnvelopeJson, ct);
                    var active = new ActiveSnapshot(candidate, check.Snapshot!);
                    Volatile.Write(ref _active, active);
                    logger.LogInformation(
                        "Applied snapshot version {Version} ({Hash}): {Targets} target(s), {Roles} role(s), {Agents} agent(s), valid until {ExpiresAt:O}",
                        candidate.Version, candidate.ContentHash[..12], active.Policy.Targets.Count, active.Policy.Roles.Count, active.Policy.Agents.Count, candidate.ExpiresAt);
                    Applied?.Invoke(active);
                    return check;
            }
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private async Task<IReadOnlyList<SnapshotKey>> ReadLearnedKeysAsync(CancellationToken ct)
    {
        try
        {
            return await StateFiles.ReadJsonAsync<List<SnapshotKey>>(_keysPath, SnapshotCodec.EnvelopeJson, ct) ?? [];
        }
        catch (JsonException e)
        {
            _learnedUnreadable = true;
            logger.LogCritical("{Path} is unreadable ({Error}): no snapshot key is trusted until it is restored or the sidecar is re-enrolled; failing closed", _keysPath, e.Message);
            return [];
        }
    }

    /// <summary>Forgets everything (revocation): nothing is enforced as allowed any more.</summary>
    public void Clear()
    {
        Volatile.Write(ref _active, null);
        try
        {
            File.Delete(_path);
        }
        catch (IOException e)
        {
            logger.LogError("Could not delete cached snapshot {Path}: {Error}", _path, e.Message);
        }
    }
}

/// <summary>The options the sidecar's services need beyond the hosting layer (and tests can give directly).</summary>
public sealed record SidecarOptionsSnapshot(string StateDirectory, int RecordingFlushMilliseconds = 100, int RecordingUploadMilliseconds = 250);
