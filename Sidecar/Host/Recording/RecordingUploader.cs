using System.Globalization;
using Airlock.Contracts.Hubs;
using Airlock.Contracts.Recording;
using Airlock.Sidecar.ControlPlane;

namespace Airlock.Sidecar.Recording;

/// <summary>
/// Streams spooled events to the control plane in batches and forgets only what it acknowledged:
/// per session an <c>.ack</c> file holds the highest stored sequence; a spool whose session ended
/// and is acknowledged to its last event is deleted. After a reconnect or a restart the upload
/// resumes after the acknowledged sequence; duplicates are ignored by the control plane.
/// </summary>
internal sealed class RecordingUploader(SessionRecorder recorder, HubClient hub, ILogger<RecordingUploader> logger) : BackgroundService
{
    public const int MaxBatchEvents = 500;
    public const int MaxBatchBytes = 1024 * 1024;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var wake = new SemaphoreSlim(0);
        recorder.Flushed += () => wake.Release();
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                while (await UploadOnceAsync(stoppingToken))
                {
                    // more to send: keep going
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning("Recording upload paused: {Error}; events stay spooled", e.Message);
            }
            try
            {
                await wake.WaitAsync(TimeSpan.FromSeconds(1), stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Uploads one batch per spool that has unacknowledged events; true when something was sent.</summary>
    private async Task<bool> UploadOnceAsync(CancellationToken ct)
    {
        if (!Directory.Exists(recorder.SpoolDirectory) || !hub.IsConnected)
            return false;
        var sent = false;
        foreach (var path in Directory.EnumerateFiles(recorder.SpoolDirectory, "*" + SessionRecorder.SpoolExtension).ToList())
        {
            if (!Guid.TryParse(Path.GetFileNameWithoutExtension(path), out var session))
                continue;
            var ackPath = Path.ChangeExtension(path, ".ack");
            var acked = File.Exists(ackPath) && long.TryParse(await File.ReadAllTextAsync(ackPath, ct), CultureInfo.InvariantCulture, out var a) ? a : 0;
            byte[] bytes;
            await using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete))
            {
                bytes = new byte[stream.Length];
                await stream.ReadExactlyAsync(bytes, ct);
            }
            var records = SpoolCodec.Decode(bytes).Records;
            var lastEvent = records.LastOrDefault(r => r.Event is not null)?.Event;
            var events = new List<RecordingEvent>();
            var size = 0;
            foreach (var r in records)
            {
                if (r.Event is not { } e || e.Seq <= acked)
                    continue;
                if (events.Count >= MaxBatchEvents || size + e.Payload.Length > MaxBatchBytes && events.Count > 0)
                    break;
                events.Add(e);
                size += e.Payload.Length;
            }
            if (events.Count == 0)
            {
                if (lastEvent is { Type: RecordingEventTypes.SessionEnd } && acked >= lastEvent.Seq)
                {
                    File.Delete(path);
                    File.Delete(ackPath);
                }
                continue;
            }
            var through = events[^1].Seq;
            var heads = records.Where(r => r.Head is { } h && h.Seq > acked && h.Seq <= through).Select(r => r.Head!).ToList();
            var ack = await hub.UploadRecordingAsync(new RecordingBatch(events, heads), ct);
            if (ack.StoredThrough.TryGetValue(session, out var stored) && stored > acked)
            {
                await Hosting.StateFiles.WriteAtomicAsync(ackPath, System.Text.Encoding.ASCII.GetBytes(stored.ToString(CultureInfo.InvariantCulture)), ct);
                sent = true;
            }
            else
            {
                logger.LogWarning("The control plane did not store session {Session} beyond event {Acked}; retrying later", session, acked);
            }
        }
        return sent;
    }
}
