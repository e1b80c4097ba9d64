using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Airlock.Testing;

/// <summary>
/// A fake PostgreSQL server that speaks the real wire for the login exchanges a real server will not
/// produce (a server that skips SCRAM's proof, asks for cleartext over plain TCP …): it refuses TLS
/// ('N'), reads the startup packet, then runs a script. Every frontend message it received is kept.
/// </summary>
public sealed class FakeUpstream : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly Func<Conversation, Task> _script;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;

    public FakeUpstream(Func<Conversation, Task> script)
    {
        _script = script;
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Frontend messages received after the startup packet, by every connection: (type, body).</summary>
    public List<(char Type, byte[] Body)> Received { get; } = [];

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }
            _ = Task.Run(async () =>
            {
                using (client)
                {
                    try
                    {
                        var conversation = new Conversation(client.GetStream(), this);
                        await conversation.ReadStartupAsync();
                        await _script(conversation);
                        await Task.Delay(500); // let the sidecar read the last bytes before the close
                    }
                    catch (Exception e) when (e is IOException or EndOfStreamException or ObjectDisposedException)
                    {
                        // the sidecar hung up: that is often the point
                    }
                }
            });
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accepting;
    }

    /// <summary>One connection's side of the conversation.</summary>
    public sealed class Conversation(NetworkStream stream, FakeUpstream server)
    {
        public async Task ReadStartupAsync()
        {
            while (true)
            {
                var header = new byte[8];
                await stream.ReadExactlyAsync(header);
                var length = BinaryPrimitives.ReadInt32BigEndian(header);
                var code = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(4));
                if (code == 80877103)
                {
                    stream.WriteByte((byte)'N'); // no TLS here
                    continue;
                }
                await stream.ReadExactlyAsync(new byte[length - 8]);
                return;
            }
        }

        /// <summary>The next frontend message; null when the sidecar closed the connection.</summary>
        public async Task<(char Type, byte[] Body)?> ReadAsync()
        {
            var header = new byte[5];
            var read = 0;
            while (read < header.Length)
            {
                var n = await stream.ReadAsync(header.AsMemory(read));
                if (n == 0)
                    return null;
                read += n;
            }
            var body = new byte[BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(1)) - 4];
            await stream.ReadExactlyAsync(body);
            lock (server.Received)
                server.Received.Add(((char)header[0], body));
            return ((char)header[0], body);
        }

        public Task SendAsync(char type, byte[] body)
        {
            var message = new byte[5 + body.Length];
            message[0] = (byte)type;
            BinaryPrimitives.WriteInt32BigEndian(message.AsSpan(1), 4 + body.Length);
            body.CopyTo(message, 5);
            return stream.WriteAsync(message).AsTask();
        }

        /// <summary>AuthenticationRequest <paramref name="code"/> with <paramref name="extra"/> after the code.</summary>
        public Task AuthAsync(int code, byte[]? extra = null)
        {
            var body = new byte[4 + (extra?.Length ?? 0)];
            BinaryPrimitives.WriteInt32BigEndian(body, code);
            extra?.CopyTo(body, 4);
            return SendAsync('R', body);
        }

        /// <summary>AuthenticationOk, BackendKeyData, ReadyForQuery: "you are in".</summary>
        public async Task LetInAsync()
        {
            await AuthAsync(0);
            await SendAsync('K', [0, 0, 0, 42, 0, 0, 0, 7]);
            await SendAsync('Z', [(byte)'I']);
        }

        /// <summary>Starts SCRAM-SHA-256 and returns the client nonce from the sidecar's first message (null when it sent none).</summary>
        public async Task<string?> StartScramAsync()
        {
            await AuthAsync(10, Encoding.ASCII.GetBytes("SCRAM-SHA-256\0\0"));
            if (await ReadAsync() is not { Type: 'p' } initial)
                return null;
            var text = Encoding.UTF8.GetString(initial.Body);
            var at = text.IndexOf("r=", StringComparison.Ordinal);
            return at < 0 ? null : text[(at + 2)..];
        }
    }
}
