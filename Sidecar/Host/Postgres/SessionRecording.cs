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

    /// <summary>The sidecar's tally of what statements came to (see <see cref="StatementCounter"/>).</summary>
    public StatementCounter Statements => recorder.Statements;

    public ValueTask RecordAsync(string type, byte[] payload) =>
        recorder.TryRecord(Session, type, payload) ? ValueTask.CompletedTask : RetryAsync(type, payload);

    /// <summary>The same with the payload encoded on the recorder's thread.</summary>
    public ValueTask RecordAsync(string type, DeferredPayload payload) =>
        recorder.TryRecord(Session, type, payload) ? ValueTask.CompletedTask : RetryAsync(type, payload);

    /// <summary>The recorder is full: retry until it has room or the wait runs out (then the caller ends the session).</summary>
    private async ValueTask RetryAsync(string type, object payload)
    {
        var started = Stopwatch.GetTimestamp();
        while (!(payload is byte[] bytes ? recorder.TryRecord(Session, type, bytes) : recorder.TryRecord(Session, type, (DeferredPayload)payload)))
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
