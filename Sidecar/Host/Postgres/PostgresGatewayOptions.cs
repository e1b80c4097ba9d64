using System.ComponentModel.DataAnnotations;
using System.Net;
using System.Security.Cryptography.X509Certificates;

namespace Airlock.Sidecar.Postgres;

/// <summary>Section <c>Sidecar:Postgres</c>. Every listener of a PostgreSQL target uses these.</summary>
public sealed class PostgresGatewayOptions : IValidatableObject
{
    /// <summary>Address the target listeners bind to (each on its target's <c>listenPort</c>).</summary>
    public string ListenAddress { get; set; } = "0.0.0.0";

    /// <summary>PEM certificate (chain) and key for TLS with agents. Without them the sidecar answers SSLRequest with 'N'.</summary>
    public string? CertificatePath { get; set; }

    public string? KeyPath { get; set; }

    /// <summary>Largest protocol message accepted in either direction; larger ones end the session with 54000.</summary>
    [Range(64 * 1024, 1024 * 1024 * 1024)]
    public int MaxMessageBytes { get; set; } = 16 * 1024 * 1024;

    /// <summary>
    /// Result bytes recorded per statement (as <c>result.chunk</c>); the rest is counted, not recorded.
    /// At most 2 MiB, so a chunk (binary values are recorded as hex) stays below the control plane's
    /// 6 MiB event limit (it stores large events in parts).
    /// </summary>
    [Range(0, 2 * 1024 * 1024)]
    public int ResultCaptureBytes { get; set; } = 64 * 1024;

    [Range(1, 300)]
    public int UpstreamConnectTimeoutSeconds { get; set; } = 10;

    /// <summary>PEM file of CA certificates trusted for upstream <c>verify-full</c>, beside the system store.</summary>
    public string? UpstreamCaPath { get; set; }

    /// <summary>How long a statement waits for the recorder (fail closed) before the session ends with 53000.</summary>
    [Range(1, 600)]
    public int RecorderWaitSeconds { get; set; } = 10;

    /// <summary>
    /// Sockets driven by the sidecar's own epoll loop (Linux): reads only after readiness, no failed
    /// receive per message. False falls back to .NET's socket engine (and is what other systems use).
    /// </summary>
    public bool NativeSockets { get; set; } = true;

    /// <summary>
    /// Functions the operator vouches for (lower case, e.g. <c>my_schema.report_totals</c> or <c>slugify</c>):
    /// judged as reads although the classifier does not know them and the catalog may call them volatile.
    /// A session that may not write still runs read-only upstream, so a vouched-for function that writes
    /// is refused by the server.
    /// </summary>
    public List<string> SafeFunctions { get; set; } = [];

    /// <summary>
    /// How long a target's catalog, as masking rules resolve against it (masked columns, views and
    /// functions over them), is trusted before it is read again. DDL sent through this sidecar drops it
    /// at once; DDL done elsewhere is seen within this time.
    /// </summary>
    [Range(1, 3600)]
    public int MaskCatalogSeconds { get; set; } = 10;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!IPAddress.TryParse(ListenAddress, out _))
            yield return new ValidationResult($"'{ListenAddress}' is not an IP address", [nameof(ListenAddress)]);
        if ((CertificatePath is null) != (KeyPath is null))
            yield return new ValidationResult("CertificatePath and KeyPath go together", [nameof(CertificatePath)]);
        else if (CertificatePath is not null)
        {
            string? problem = null;
            try
            {
                using var certificate = X509Certificate2.CreateFromPemFile(CertificatePath, KeyPath);
                if (!certificate.HasPrivateKey)
                    problem = "the key does not belong to the certificate";
            }
            catch (Exception e) when (e is IOException or System.Security.Cryptography.CryptographicException or UnauthorizedAccessException or ArgumentException)
            {
                problem = e.Message;
            }
            if (problem is not null)
                yield return new ValidationResult($"cannot load the TLS certificate '{CertificatePath}' with key '{KeyPath}': {problem}", [nameof(CertificatePath)]);
        }
        if (UpstreamCaPath is not null && !File.Exists(UpstreamCaPath))
            yield return new ValidationResult($"'{UpstreamCaPath}' does not exist", [nameof(UpstreamCaPath)]);
    }
}
