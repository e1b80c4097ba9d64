using System.Buffers;
using Airlock.ControlPlane.Data;

namespace Airlock.ControlPlane.Sessions;

/// <summary>
/// Collects a session's consecutive event records into stored segments of at most
/// <see cref="RecordingIngest.SegmentBytes"/>, cut between events (one larger event gets its own).
/// </summary>
internal sealed class SegmentWriter(Guid session)
{
    private readonly List<SessionSegment> _rows = [];
    private readonly ArrayBufferWriter<byte> _buffer = new();
    private long _first;
    private long _last;

    public void Add(ReadOnlySpan<byte> record, long seq)
    {
        if (_buffer.WrittenCount > 0 && _buffer.WrittenCount + record.Length > RecordingIngest.SegmentBytes)
            Cut();
        if (_buffer.WrittenCount == 0)
            _first = seq;
        _buffer.Write(record);
        _last = seq;
    }

    /// <summary>The segments, the last one cut where the records end.</summary>
    public List<SessionSegment> Complete()
    {
        if (_buffer.WrittenCount > 0)
            Cut();
        return _rows;
    }

    private void Cut()
    {
        _rows.Add(new SessionSegment { SessionId = session, FirstSeq = _first, LastSeq = _last, Records = _buffer.WrittenSpan.ToArray() });
        _buffer.ResetWrittenCount();
    }
}
