using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Airlock.Sidecar.Net;

namespace Airlock.Sidecar.Tests;

/// <summary>The epoll-driven socket stream against real loopback TCP connections and a .NET peer.</summary>
public sealed class NativeSocketStreamTests
{
    /// <summary>(native stream, .NET peer socket) connected over loopback; <paramref name="accepted"/> picks which side is adopted.</summary>
    private static async Task<(Stream Native, Socket Peer)> PairAsync(bool accepted)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        if (accepted)
        {
            var peer = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await peer.ConnectAsync(IPAddress.Loopback, port);
            return (SocketStreams.ForAccepted(await listener.AcceptAsync(), native: true), peer);
        }
        var accepting = listener.AcceptAsync();
        var native = await SocketStreams.ConnectAsync("127.0.0.1", port, native: true, CancellationToken.None);
        return (native, await accepting);
    }

    [Theory]
    [InlineData(true, 16)]
    [InlineData(false, 16)]
    [InlineData(true, 65536)]
    [InlineData(false, 1)]
    public async Task Bytes_cross_both_ways_intact_whatever_the_read_size(bool accepted, int readSize)
    {
        Assert.True(SocketStreams.NativeAvailable);
        var (native, peer) = await PairAsync(accepted);
        await using var _ = native;
        using var __ = peer;
        Assert.IsType<NativeSocketStream>(native);
        var payload = RandomNumberGenerator.GetBytes(readSize == 1 ? 50_000 : 3_000_000);

        // Peer → native: the native side reads in small pieces (a full buffer means "read again").
        var sending = peer.SendAsync(payload);
        var received = new MemoryStream();
        var buffer = new byte[readSize];
        while (received.Length < payload.Length)
        {
            var n = await native.ReadAsync(buffer);
            Assert.NotEqual(0, n);
            received.Write(buffer, 0, n);
        }
        await sending;
        Assert.Equal(payload, received.ToArray());

        // Native → peer: more than the socket buffers hold, so the write waits for the peer to drain.
        var writing = native.WriteAsync(payload).AsTask();
        await Task.Delay(50);
        var back = new byte[payload.Length];
        var total = 0;
        while (total < back.Length)
            total += await peer.ReceiveAsync(back.AsMemory(total));
        await writing;
        Assert.Equal(payload, back);
    }

    [Fact]
    public async Task End_of_stream_reads_zero_and_keeps_reading_zero()
    {
        var (native, peer) = await PairAsync(accepted: true);
        await using var _ = native;
        await peer.SendAsync("bye"u8.ToArray());
        peer.Shutdown(SocketShutdown.Send);
        var buffer = new byte[16];
        Assert.Equal(3, await native.ReadAsync(buffer));
        Assert.Equal(0, await native.ReadAsync(buffer));
        Assert.Equal(0, await native.ReadAsync(buffer));
        peer.Dispose();
    }

    [Fact]
    public async Task A_reset_by_the_peer_is_an_IOException()
    {
        var (native, peer) = await PairAsync(accepted: true);
        await using var _ = native;
        peer.LingerState = new LingerOption(true, 0); // close → RST
        var pending = native.ReadAsync(new byte[16]).AsTask();
        peer.Dispose();
        var error = await Assert.ThrowsAsync<IOException>(() => pending);
        Assert.Equal(SocketError.ConnectionReset, Assert.IsType<SocketException>(error.InnerException).SocketErrorCode);
    }

    [Fact]
    public async Task A_pending_read_is_cancelled_by_its_token_and_the_stream_still_works()
    {
        var (native, peer) = await PairAsync(accepted: false);
        await using var _ = native;
        using var __ = peer;
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => native.ReadAsync(new byte[16], cancel.Token).AsTask());

        await peer.SendAsync("after"u8.ToArray());
        var buffer = new byte[16];
        Assert.Equal(5, await native.ReadAsync(buffer));
    }

    [Fact]
    public async Task Disposing_ends_a_pending_read_and_the_peer_sees_the_end()
    {
        var (native, peer) = await PairAsync(accepted: true);
        using var _ = peer;
        var pending = native.ReadAsync(new byte[16]).AsTask();
        await native.DisposeAsync();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => pending);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => native.ReadAsync(new byte[16]).AsTask());
        Assert.Equal(0, await peer.ReceiveAsync(new byte[16]).WaitAsync(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task Connecting_to_a_closed_port_is_refused_and_an_unanswered_connect_is_cancelled()
    {
        var port = FreeLoopbackPort();
        var refused = await Assert.ThrowsAsync<SocketException>(() => SocketStreams.ConnectAsync("127.0.0.1", port, native: true, CancellationToken.None));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);

        // A non-routable address (TEST-NET-1) never answers: the token ends the attempt.
        using var timeout = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        var attempt = SocketStreams.ConnectAsync("192.0.2.1", 5432, native: true, timeout.Token);
        var error = await Record.ExceptionAsync(() => attempt);
        Assert.True(error is OperationCanceledException or SocketException, $"unexpected {error}");
    }

    private static int FreeLoopbackPort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }
}
