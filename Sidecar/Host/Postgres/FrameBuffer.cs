using System.Buffers;

namespace Airlock.Sidecar.Postgres;

/// <summary>
/// One direction's input: what was read from the stream and not yet consumed, in one contiguous
/// pooled array, so complete messages are parsed as spans and forwarded straight from it (one
/// write per read batch, as pgbouncer does). A message larger than the array grows it up to the
/// message's size (bounded by <c>MaxMessageBytes</c>); once drained, a grown array goes back to the pool.
/// </summary>
internal sealed class FrameBuffer(int initialSize = FrameBuffer.DefaultSize) : IDisposable
{
    public const int DefaultSize = 64 * 1024;
    private const int MinimumRead = 4096;

    private byte[] _array = ArrayPool<byte>.Shared.Rent(initialSize);
    private int _start;
    private int _end;

    /// <summary>The unconsumed bytes.</summary>
    public ReadOnlySpan<byte> Span => _array.AsSpan(_start, _end - _start);

    public ReadOnlyMemory<byte> Memory => _array.AsMemory(_start, _end - _start);

    public int Length => _end - _start;

    /// <summary>Reads once; makes room for at least <paramref name="needed"/> unconsumed bytes first. 0 = end of stream.</summary>
    public ValueTask<int> FillAsync(Stream stream, int needed, CancellationToken ct)
    {
        MakeRoom(needed);
        var read = stream.ReadAsync(_array.AsMemory(_end), ct);
        if (!read.IsCompletedSuccessfully)
            return Filled(read);
        // Taking .Result consumes the read: a pooled operation (SslStream's, the native socket's) that
        // completed on another thread just now goes back to its pool, so the caller gets a new,
        // plain ValueTask — never the consumed one (awaiting it again failed, or hung, the session).
        var n = read.Result;
        _end += n;
        return new ValueTask<int>(n);
    }

    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<int> Filled(ValueTask<int> read)
    {
        var n = await read;
        _end += n;
        return n;
    }

    /// <summary>Adds bytes read elsewhere (while a held statement waited) after the unconsumed ones.</summary>
    public void Append(ReadOnlySpan<byte> bytes)
    {
        MakeRoom(Length + bytes.Length);
        bytes.CopyTo(_array.AsSpan(_end));
        _end += bytes.Length;
    }

    public void Consume(int count)
    {
        _start += count;
        if (_start < _end)
            return;
        _start = _end = 0;
        if (_array.Length > initialSize)
        {
            ArrayPool<byte>.Shared.Return(_array);
            _array = ArrayPool<byte>.Shared.Rent(initialSize);
        }
    }

    private void MakeRoom(int needed)
    {
        var length = _end - _start;
        var capacity = Math.Max(needed, length + MinimumRead);
        if (capacity > _array.Length)
        {
            var grown = ArrayPool<byte>.Shared.Rent(Math.Max(capacity, _array.Length * 2));
            _array.AsSpan(_start, length).CopyTo(grown);
            ArrayPool<byte>.Shared.Return(_array);
            _array = grown;
        }
        else if (_array.Length - _end < capacity - length)
        {
            _array.AsSpan(_start, length).CopyTo(_array); // slide the partial message to the front
        }
        else
        {
            return;
        }
        _start = 0;
        _end = length;
    }

    public void Dispose()
    {
        ArrayPool<byte>.Shared.Return(_array);
        _array = [];
        _start = _end = 0;
    }
}
