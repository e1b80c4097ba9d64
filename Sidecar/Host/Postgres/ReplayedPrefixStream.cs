namespace Airlock.Sidecar.Postgres;

/// <summary>
/// A stream that first returns bytes already read from the inner stream, then reads on from it:
/// the first four bytes of a connection decide whether it starts with a startup packet or a TLS
/// handshake, and the TLS layer must still see them. Writes, flushes and disposal go to the inner stream.
/// </summary>
internal sealed class ReplayedPrefixStream(byte[] prefix, Stream inner) : Stream
{
    private int _replayed;

    public override bool CanRead => true;
    public override bool CanWrite => true;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (TryReplay(buffer, out var n))
            return n;
        return inner.Read(buffer);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) => ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default) =>
        TryReplay(buffer.Span, out var n) ? ValueTask.FromResult(n) : inner.ReadAsync(buffer, ct);

    private bool TryReplay(Span<byte> buffer, out int n)
    {
        n = Math.Min(buffer.Length, prefix.Length - _replayed);
        if (n <= 0 || buffer.IsEmpty)
            return false;
        prefix.AsSpan(_replayed, n).CopyTo(buffer);
        _replayed += n;
        return true;
    }

    public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);
    public override void Write(ReadOnlySpan<byte> buffer) => inner.Write(buffer);
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken ct) => inner.WriteAsync(buffer, offset, count, ct);
    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct = default) => inner.WriteAsync(buffer, ct);
    public override void Flush() => inner.Flush();
    public override Task FlushAsync(CancellationToken ct) => inner.FlushAsync(ct);
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
            inner.Dispose();
        base.Dispose(disposing);
    }

    public override ValueTask DisposeAsync() => inner.DisposeAsync();
}
