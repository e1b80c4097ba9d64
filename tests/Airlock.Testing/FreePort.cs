using System.Net;
using System.Net.Sockets;

namespace Airlock.Testing;

public static class FreePort
{
    private static readonly HashSet<int> _given = [];

    /// <summary>
    /// A loopback TCP port that was free a moment ago, and not handed out before in this process: the
    /// system may give a port it just released again at once, and two targets asked for together must
    /// not get the same one.
    /// </summary>
    public static int Next()
    {
        while (true)
        {
            int port;
            using (var listener = new TcpListener(IPAddress.Loopback, 0))
            {
                listener.Start();
                port = ((IPEndPoint)listener.LocalEndpoint).Port;
            }
            lock (_given)
                if (_given.Add(port))
                    return port;
        }
    }
}

/// <summary>
/// A loopback port on which nothing listens, for as long as this lives: a socket is bound to it but
/// never listens, so a connect is refused, and no other listener (another test's server) can take the
/// port meanwhile — a port that was merely free a moment ago can be.
/// </summary>
public sealed class ClosedPort : IDisposable
{
    private readonly Socket _socket = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);

    public ClosedPort() => _socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));

    public int Port => ((IPEndPoint)_socket.LocalEndPoint!).Port;

    public void Dispose() => _socket.Dispose();
}
