using System.Buffers.Binary;
using Airlock.Sidecar.Postgres;
using Airlock.Sidecar.Protocols.Postgres;

namespace Airlock.Sidecar.Tests.Postgres;

/// <summary>The relay's input buffer: messages of any size, arriving in any pieces, come out whole and in order.</summary>
public sealed class FrameBufferTests
{
    /// <summary>A stream that hands out at most <paramref name="chunk"/> bytes per read.</summary>
    private sealed class TrickleStream(byte[] data, int chunk) : MemoryStream(data)
    {
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            base.ReadAsync(buffer[..Math.Min(buffer.Length, chunk)], cancellationToken);
    }

    /// <summary>
    /// A stream whose reads complete on another thread, as SslStream's and the native socket's do:
    /// each read is a pooled operation that is already done by the time the caller looks at it (the
    /// race the relay's first read, on a thread-pool thread, runs against the epoll thread), and whose
    /// result may be taken once — a second look is a bug (the operation may belong to another read by then).
    /// </summary>
    private sealed class CompletedElsewhereStream(byte[] data) : MemoryStream(data)
    {
        private readonly OneShotRead _read = new();

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            _read.Start(base.Read(buffer.Span));
    }

    private sealed class OneShotRead : System.Threading.Tasks.Sources.IValueTaskSource<int>
    {
        private System.Threading.Tasks.Sources.ManualResetValueTaskSourceCore<int> _core;

        public ValueTask<int> Start(int result)
        {
            _core.Reset();
            _core.SetResult(result);
            return new ValueTask<int>(this, _core.Version);
        }

        public int GetResult(short token)
        {
            var result = _core.GetResult(token);
            _core.Reset(); // back to the pool: this token is stale from now on
            return result;
        }

        public System.Threading.Tasks.Sources.ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, System.Threading.Tasks.Sources.ValueTaskSourceOnCompletedFlags flags) =>
            _core.OnCompleted(continuation, state, token, flags);
    }

    [Fact]
    public async Task A_read_that_completed_on_another_thread_is_taken_once()
    {
        var message = Message((byte)'Q', 10, 7);
        await using var stream = new CompletedElsewhereStream(message);
        using var input = new FrameBuffer();

        Assert.Equal(message.Length, await input.FillAsync(stream, 0, CancellationToken.None));
        Assert.Equal(message, input.Span.ToArray());
        Assert.Equal(0, await input.FillAsync(stream, 0, CancellationToken.None));
    }

    private static byte[] Message(byte type, int bodyLength, byte fill)
    {
        var message = new byte[1 + 4 + bodyLength];
        message[0] = type;
        BinaryPrimitives.WriteInt32BigEndian(message.AsSpan(1), 4 + bodyLength);
        message.AsSpan(5).Fill(fill);
        return message;
    }

    [Theory]
    [InlineData(1)]        // byte by byte: headers split too
    [InlineData(3)]
    [InlineData(4096)]
    [InlineData(65536)]
    [InlineData(1 << 20)]  // more than the initial array in one read
    public async Task Messages_come_out_whole_and_in_order_whatever_the_read_sizes(int chunk)
    {
        // Small ones, one exactly the initial size, one four times it (the array grows), small ones after (it shrinks back).
        int[] sizes = [0, 10, 300, FrameBuffer.DefaultSize - 5, 4 * FrameBuffer.DefaultSize, 7, 0, 20_000];
        var messages = sizes.Select((size, i) => Message((byte)'D', size, (byte)i)).ToList();
        await using var stream = new TrickleStream([.. messages.SelectMany(m => m)], chunk);
        using var input = new FrameBuffer();

        var received = new List<byte[]>();
        var needed = 0;
        while (true)
        {
            if (await input.FillAsync(stream, needed, CancellationToken.None) == 0)
                break;
            needed = 0;
            while (true)
            {
                var status = PgWire.TryReadHeader(input.Span, 64 << 20, out _, out var length);
                if (status == FrameStatus.Incomplete)
                {
                    needed = length == 0 ? 5 : 1 + length;
                    break;
                }
                Assert.Equal(FrameStatus.Complete, status);
                received.Add(input.Span[..(1 + length)].ToArray());
                input.Consume(1 + length);
            }
        }
        Assert.Equal(0, input.Length);
        Assert.Equal(messages.Count, received.Count);
        for (var i = 0; i < messages.Count; i++)
            Assert.Equal(messages[i], received[i]);
    }
}
