using System.Net;
using System.Net.Sockets;
using Airlock.Sidecar.ControlPlane;

namespace Airlock.Sidecar.Hosting;

/// <summary>
/// The health and metrics endpoint's address is checked before anything else happens: found taken
/// only when the host starts, it would end the sidecar after its one-time enrollment token was
/// spent (say, a second sidecar started beside the demo's on the default 127.0.0.1:5090).
/// </summary>
public static class HealthEndpointCheck
{
    public const string UrlKey = "Kestrel:Endpoints:Http:Url";

    /// <param name="mcp">The MCP front door's options: its address is checked too when it is enabled.</param>
    public static void EnsureFree(IConfiguration configuration, Mcp.McpOptions? mcp = null)
    {
        if (mcp is { Enabled: true } && IPAddress.TryParse(mcp.ListenAddress, out var mcpAddress))
            EnsureFree(mcpAddress, mcp.Port, "the MCP front door's address", "Sidecar:Mcp:Port", "--Sidecar:Mcp:Port=PORT");
        var url = configuration[UrlKey];
        if (url is null || !Uri.TryCreate(url.Replace("*", "0.0.0.0", StringComparison.Ordinal).Replace("+", "0.0.0.0", StringComparison.Ordinal), UriKind.Absolute, out var uri))
            return; // Kestrel reports a URL it cannot read itself
        var address = uri.Host == "localhost" ? IPAddress.Loopback : IPAddress.TryParse(uri.Host.Trim('[', ']'), out var parsed) ? parsed : null;
        if (address is null || uri.Port == 0)
            return;
        EnsureFree(address, uri.Port, "the health and metrics address", UrlKey, $"--{UrlKey}=http://127.0.0.1:PORT");
    }

    private static void EnsureFree(IPAddress address, int port, string what, string option, string instead)
    {
        try
        {
            // Bound, never listening: a client polling the address meanwhile (a readiness probe) is
            // refused as before, not accepted and then reset.
            using var probe = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            probe.Bind(new IPEndPoint(address, port));
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.AddressAlreadyInUse or SocketError.AccessDenied or SocketError.AddressNotAvailable)
        {
            throw new StartupException(
                $"{what} {address}:{port} ({option}) cannot be used: {e.Message}. " +
                $"Another sidecar may be running there; give this one another with {instead}. Nothing was enrolled: an enrollment token is still unused.");
        }
    }
}
