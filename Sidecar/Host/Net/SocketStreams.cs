using System.Net;
using System.Net.Sockets;

namespace Airlock.Sidecar.Net;

/// <summary>
/// Where the gateway gets its socket streams: the native epoll path on Linux (the fast one), .NET's
/// <see cref="NetworkStream"/> elsewhere or when <c>Sidecar:Postgres:NativeSockets</c> is false.
/// </summary>
internal static class SocketStreams
{
    public static bool NativeAvailable => OperatingSystem.IsLinux();

    /// <summary>A stream over an accepted socket (owned).</summary>
    public static Stream ForAccepted(Socket socket, bool native) =>
        native && NativeAvailable ? NativeSocketStream.Adopt(socket) : new NetworkStream(socket, ownsSocket: true);

    /// <summary>Connects to <paramref name="host"/>:<paramref name="port"/>; failures are <see cref="SocketException"/>s.</summary>
    public static async Task<Stream> ConnectAsync(string host, int port, bool native, CancellationToken ct)
    {
        if (!native || !NativeAvailable)
        {
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(host, port, ct);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }
        var addresses = IPAddress.TryParse(host, out var literal) ? [literal] : await Dns.GetHostAddressesAsync(host, ct);
        return await NativeSocketStream.ConnectAsync(addresses, port, ct);
    }
}
