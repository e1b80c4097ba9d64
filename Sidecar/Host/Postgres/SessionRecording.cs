using System.Diagnostics;
using Airlock.Sidecar.Recording;

namespace Airlock.Sidecar.Postgres;

/// <summary>
/// One gateway session's view of the recorder. The recorder never blocks; when it has no room the
/// session waits (fail closed: nothing unrecorded runs) for up to <c>RecorderWaitSeconds</c>, then
/// gives up and the session ends.
/// </summary>
internal sealed class SessionRecording(SessionRecorder recorder, Guid session, TimeSpan maxWait)
{
    public Guid Session { get; } = session;

    public async ValueTask RecordAsync(string type, byte[] payload)
    {
        if (recorder.TryRecord(Session, type, payload))
            return;
        var started = Stopwatch.GetTimestamp();
        while (!recorder.TryRecord(Session, type, payload))
        {
            if (Stopwatch.GetElapsedTime(started) > maxWait)
                throw new RecorderUnavailableException();
            await Task.Delay(5);
        }
    }

    /// <summary>Waits until the recorder has room; false when it has none after the maximum wait.</summary>
    public async ValueTask<bool> WaitForRoomAsync()
    {
        if (recorder.HasRoom)
            return true;
        var started = Stopwatch.GetTimestamp();
        while (!recorder.HasRoom)
        {
            if (Stopwatch.GetElapsedTime(started) > maxWait)
                return false;
            await Task.Delay(5);
        }
        return true;
    }
}

internal sealed class RecorderUnavailableException() : Exception("the recorder cannot take events");
