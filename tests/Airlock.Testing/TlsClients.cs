using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Airlock.Testing;

/// <summary>HTTP clients for the sidecar's HTTPS endpoints (the MCP front door) that trust the harness's CA and nothing else, as an agent given the sidecar's CA would.</summary>
public static class TlsClients
{
    public static HttpClient TrustingOnly(string caPemPath)
    {
        var ca = X509Certificate2.CreateFromPem(File.ReadAllText(caPemPath));
        return new HttpClient(new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, certificate, _, _) =>
                {
                    using var chain = new X509Chain();
                    chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                    chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                    chain.ChainPolicy.CustomTrustStore.Add(ca);
                    return certificate is X509Certificate2 server && chain.Build(server);
                },
            },
        });
    }
}
