using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Airlock.Sidecar.Net;

/// <summary>
/// A connected TCP socket as a <see cref="Stream"/>, driven by an <see cref="EpollLoop"/> instead of
/// .NET's socket engine (Linux only; see <see cref="SocketStreams"/>). Reads wait for readiness first
/// and never issue a receive that is known to fail; writes go straight to <c>send</c> and wait only
/// when the socket buffer is full. One reader and one writer at a time, as for any stream.
/// The <see cref="Socket"/> is owned: it is disposed with the stream, and .NET's engine never sees it.
/// </summary>
internal sealed class NativeSocketStream : Stream
{
    private readonly Socket _socket;
    private readonly SafeSocketHandle _handle;
    private readonly EpollLoop _loop;
    private readonly ulong _id;
    private readonly Readiness _readable = new();
    private readonly Readiness _writable = new();
    private int _disposed;
    private volatile bool _inputEnded; // the peer closed or reset: every later read returns at once

    private NativeSocketStream(Socket socket)
    {
        _socket = socket;
        _handle = socket.SafeHandle;
        var fd = (int)_handle.DangerousGetHandle();
        if (Libc.SetNonBlocking(fd) is var error and not 0)
            throw new IOException($"cannot make the socket non-blocking: {Marshal.GetPInvokeErrorMessage(error)}");
        _loop = EpollLoop.Next();
        _id = _loop.Register(fd, this);
    }

    /// <summary>Takes over an accepted socket on which no asynchronous .NET operation ever ran.</summary>
    public static NativeSocketStream Adopt(Socket socket) => new(socket);

    /// <summary>Connects to the first of <paramref name="addresses"/> that answers (like libpq, in order).</summary>
    public static async Task<NativeSocketStream> ConnectAsync(IPAddress[] addresses, int port, CancellationToken ct)
    {
        SocketException? last = null;
        foreach (var address in addresses)
        {
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            NativeSocketStream? stream = null;
            try
            {
                stream = new NativeSocketStream(socket);
                await stream.FinishConnectAsync(new IPEndPoint(address, port), ct);
                return stream;
            }
            catch (SocketException e)
            {
                last = e;
            }
            catch
            {
                if (stream is null)
                    socket.Dispose();
                else
                    await stream.DisposeAsync();
                throw;
            }
            if (stream is null)
                socket.Dispose();
            else
                await stream.DisposeAsync();
        }
        throw last ?? new SocketException((int)SocketError.HostNotFound);
    }

    private async Task FinishConnectAsync(IPEndPoint endpoint, CancellationToken ct)
    {
        var error = WithDescriptor(endpoint, static (fd, e) => Libc.StartConnect(fd, e));
        // Until the handshake ends: SO_ERROR names a failure; a peer name means connected. (Edges
        // come early too — an unconnected socket is reported writable when registered.)
        while (error == Libc.EINPROGRESS)
        {
            await WaitAsync(_writable, ct);
            error = WithDescriptor(0, static (fd, _) => Libc.PendingError(fd) is var pending and not 0 ? pending
                : Libc.IsConnected(fd) ? 0 : Libc.EINPROGRESS);
        }
        _writable.MarkReady();
        if (error != 0)
            throw NativeSocketError(error);
    }

    internal void OnEvents(uint events)
    {
        if ((events & (Libc.EpollRdHup | Libc.EpollHup | Libc.EpollErr)) != 0)
            _inputEnded = true;
        if ((events & (Libc.EpollIn | Libc.EpollRdHup | Libc.EpollHup | Libc.EpollErr)) != 0)
            _readable.Signal();
        if ((events & (Libc.EpollOut | Libc.EpollHup | Libc.EpollErr)) != 0)
            _writable.Signal();
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.Length > 0 && _readable.TryTake())
        {
            var n = WithDescriptor(buffer, static (fd, b) => Libc.Receive(fd, b.Span));
            if (n != -Libc.EAGAIN)
                return ValueTask.FromResult(Completed(buffer, n));
        }
        return ReadSlowAsync(buffer, cancellationToken);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<int> ReadSlowAsync(Memory<byte> buffer, CancellationToken ct)
    {
        while (true)
        {
            await WaitAsync(_readable, ct);
            if (buffer.Length == 0)
            {
                _readable.MarkReady(); // a zero-byte read only waits for data; it consumes nothing
                return 0;
            }
            var n = WithDescriptor(buffer, static (fd, b) => Libc.Receive(fd, b.Span));
            if (n != -Libc.EAGAIN)
                return Completed(buffer, n);
        }
    }

    private int Completed(Memory<byte> buffer, nint n)
    {
        if (n < 0)
            throw new IOException($"Unable to read data from the transport connection: {Marshal.GetPInvokeErrorMessage((int)-n)}.", NativeSocketError((int)-n));
        // A full buffer may leave more queued. After the peer's FIN (or reset) the end is reported by
        // the next recv, not by a new edge (it came with, or before, the data just read).
        if (n == buffer.Length || n == 0 || _inputEnded)
            _readable.MarkReady();
        return (int)n;
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (!buffer.IsEmpty)
        {
            var n = WithDescriptor(buffer, static (fd, b) => Libc.Send(fd, b.Span));
            if (n == -Libc.EAGAIN)
                return WriteSlowAsync(buffer, cancellationToken);
            if (n < 0)
                throw WriteError((int)-n);
            buffer = buffer[(int)n..];
        }
        return ValueTask.CompletedTask;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WriteSlowAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct)
    {
        while (!buffer.IsEmpty)
        {
            var n = WithDescriptor(buffer, static (fd, b) => Libc.Send(fd, b.Span));
            if (n == -Libc.EAGAIN)
            {
                await WaitAsync(_writable, ct); // the socket buffer is full: until the peer drains it
                continue;
            }
            if (n < 0)
                throw WriteError((int)-n);
            buffer = buffer[(int)n..];
        }
    }

    private static IOException WriteError(int errno) =>
        new($"Unable to write data to the transport connection: {Marshal.GetPInvokeErrorMessage(errno)}.", NativeSocketError(errno));

    private static ValueTask WaitAsync(Readiness readiness, CancellationToken ct) => readiness.WaitAsync(ct);

    /// <summary>A syscall on the descriptor, which cannot be closed (and its number reused) meanwhile.</summary>
    private TResult WithDescriptor<TState, TResult>(TState state, Func<int, TState, TResult> call)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var added = false;
        try
        {
            _handle.DangerousAddRef(ref added);
            return call((int)_handle.DangerousGetHandle(), state);
        }
        finally
        {
            if (added)
                _handle.DangerousRelease();
        }
    }

    private static SocketException NativeSocketError(int errno) => errno switch
    {
        104 => new SocketException((int)SocketError.ConnectionReset),
        32 => new SocketException((int)SocketError.Shutdown),
        111 => new SocketException((int)SocketError.ConnectionRefused),
        110 => new SocketException((int)SocketError.TimedOut),
        113 => new SocketException((int)SocketError.HostUnreachable),
        101 => new SocketException((int)SocketError.NetworkUnreachable),
        _ => new SocketException((int)SocketError.SocketError, Marshal.GetPInvokeErrorMessage(errno)),
    };

    protected override void Dispose(bool disposing)
    {
        if (disposing && Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _readable.Close();
            _writable.Close();
            var fd = (int)_handle.DangerousGetHandle();
            _loop.Unregister(fd, _id);
            Libc.ShutdownBoth(fd); // as .NET's sockets do on close
            _socket.Dispose();
        }
        base.Dispose(disposing);
    }

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush()
    {
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override bool CanRead => true;
    public override bool CanWrite => true;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
