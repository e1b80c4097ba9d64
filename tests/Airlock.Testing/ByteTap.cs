using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Airlock.Testing;

/// <summary>
/// A loopback TCP relay in front of a port that keeps every byte the far side sent back, so a test can
/// search everything a client received (rows, COPY data, notices, notifications, errors) for a value.
/// Clients must connect without TLS for the bytes to be readable.
/// </summary>
public sealed class ByteTap : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly int _target;
    private readonly MemoryStream _received = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _relays = [];
    private readonly Task _accepting;

    public ByteTap(int targetPort)
    {
        _target = targetPort;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Everything sent back to clients so far.</summary>
    public byte[] Received
    {
        get
        {
            lock (_received)
                return _received.ToArray();
        }
    }

    /// <summary>Whether <paramref name="value"/> (UTF-8) appears anywhere in what clients received.</summary>
    public bool Saw(string value)
    {
        var needle = Encoding.UTF8.GetBytes(value);
        return Received.AsSpan().IndexOf(needle) >= 0;
    }

    public void Clear()
    {
        lock (_received)
            _received.SetLength(0);
    }

    private async Task AcceptAsync()
    {
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                lock (_relays)
                    _relays.Add(RelayAsync(client));
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    private async Task RelayAsync(TcpClient client)
    {
        using (client)
        using (var server = new TcpClient())
        {
            try
            {
                await server.ConnectAsync(IPAddress.Loopback, _target, _stop.Token);
                var up = Pump(client.GetStream(), server.GetStream(), keep: false);
                var down = Pump(server.GetStream(), client.GetStream(), keep: true);
                await Task.WhenAny(up, down);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or IOException)
            {
            }
        }
    }

    private async Task Pump(Stream from, Stream to, bool keep)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            int n;
            while ((n = await from.ReadAsync(buffer, _stop.Token)) > 0)
            {
                if (keep)
                    lock (_received)
                        _received.Write(buffer, 0, n);
                await to.WriteAsync(buffer.AsMemory(0, n), _stop.Token);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException)
        {
        }
        finally
        {
            try
            {
                to.Close();
            }
            catch (IOException)
            {
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accepting;
        Task[] relays;
        lock (_relays)
            relays = [.. _relays];
        await Task.WhenAll(relays);
        _stop.Dispose();
    }
}
