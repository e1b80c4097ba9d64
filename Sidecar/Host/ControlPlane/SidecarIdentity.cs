using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using Airlock.Contracts;
using Airlock.Sidecar.Hosting;
using Airlock.Sidecar.Policy;

namespace Airlock.Sidecar.ControlPlane;

/// <summary>What enrollment gave this sidecar; kept in <c>identity.json</c> (0600) in the state directory.</summary>
public sealed record SidecarIdentity(
    string SidecarId,
    string SidecarName,
    string Credential,
    string ControlPlane,
    string GrpcEndpoint,
    IReadOnlyList<SnapshotKey> EnrolledSnapshotKeys,
    byte[] SigningKeyPkcs8,
    byte[] SealingKeyPkcs8)
{
    public const string FileName = "identity.json";

    // Keep the credential out of logs and exception messages that print records.
    public override string ToString() => $"SidecarIdentity {{ {SidecarName} ({SidecarId}) at {ControlPlane} }}";

    public ECDiffieHellman OpenSealingKey()
    {
        var key = ECDiffieHellman.Create();
        key.ImportPkcs8PrivateKey(SealingKeyPkcs8, out _);
        return key;
    }
}

/// <summary>A start-up failure to report and exit with; the message is for the operator.</summary>
public sealed class StartupException(string message, int exitCode = 2) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}

/// <summary>First start: trade the one-time token for a credential. Later starts: reuse the stored identity.</summary>
public static class Enrollment
{
    private static readonly JsonSerializerOptions _json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public static async Task<SidecarIdentity> EnsureEnrolledAsync(SidecarOptions options, HttpMessageHandler? handler, ILogger logger, CancellationToken ct)
    {
        StateFiles.EnsureDirectory(options.StateDirectory);
        var path = Path.Combine(options.StateDirectory, SidecarIdentity.FileName);
        SidecarIdentity? stored;
        try
        {
            stored = await StateFiles.ReadJsonAsync<SidecarIdentity>(path, _json, ct);
        }
        catch (JsonException e)
        {
            throw new StartupException($"{path} is corrupt ({e.Message}); remove the state directory and enroll again with a new token");
        }
        if (stored is not null)
        {
            if (!string.IsNullOrWhiteSpace(options.EnrollmentToken))
                logger.LogWarning("Already enrolled as {Sidecar}; ignoring --enrollment-token", stored.SidecarName);
            return options.ControlPlane is null ? stored : stored with { ControlPlane = options.ControlPlane };
        }

        if (options.ControlPlane is null)
            throw new StartupException("not enrolled yet: start with --control-plane URL --enrollment-token TOKEN");
        if (string.IsNullOrWhiteSpace(options.EnrollmentToken))
            throw new StartupException("not enrolled yet: --enrollment-token TOKEN is required on first start");

        using var signing = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var sealing = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
        var request = new EnrollRequest(options.EnrollmentToken.Trim(), signing.ExportSubjectPublicKeyInfo(), sealing.ExportSubjectPublicKeyInfo(), SoftwareVersion.Current);

        using var http = handler is null ? new HttpClient() : new HttpClient(handler, disposeHandler: false);
        http.Timeout = TimeSpan.FromSeconds(30);
        HttpResponseMessage response;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                response = await http.PostAsJsonAsync(new Uri(new Uri(options.ControlPlane), "/api/v1/enroll"), request, _json, ct);
            }
            catch (HttpRequestException e)
            {
                throw new StartupException($"cannot reach the control plane at {options.ControlPlane}: {e.Message}");
            }
            catch (TaskCanceledException) when (!ct.IsCancellationRequested)
            {
                throw new StartupException($"the control plane at {options.ControlPlane} did not answer within 30 s");
            }
            // A server error spends nothing (the control plane enrolls in one transaction): try again a few times.
            if ((int)response.StatusCode < 500 || attempt == 3)
                break;
            logger.LogWarning("Enrollment attempt {Attempt} failed with {Status}; trying again", attempt, (int)response.StatusCode);
            response.Dispose();
            await Task.Delay(TimeSpan.FromSeconds(attempt), ct);
        }
        using (response)
        {
            if (!response.IsSuccessStatusCode)
            {
                var detail = await ProblemDetail(response, ct);
                throw new StartupException($"enrollment refused by {options.ControlPlane} ({(int)response.StatusCode}): {detail}");
            }
            var enrolled = await response.Content.ReadFromJsonAsync<EnrollResponse>(_json, ct)
                ?? throw new StartupException("enrollment answer was empty");
            var identity = new SidecarIdentity(
                enrolled.SidecarId,
                enrolled.SidecarName,
                enrolled.Credential,
                options.ControlPlane,
                enrolled.GrpcEndpoint,
                enrolled.SnapshotKeys.Select(k => new SnapshotKey(k.KeyId, k.PublicKey)).ToList(),
                signing.ExportPkcs8PrivateKey(),
                sealing.ExportPkcs8PrivateKey());
            await StateFiles.WriteJsonAsync(path, identity, _json, ct);
            logger.LogInformation("Enrolled as sidecar {Sidecar} ({SidecarId}); identity stored in {Path}", identity.SidecarName, identity.SidecarId, path);
            return identity;
        }
    }

    private static async Task<string> ProblemDetail(HttpResponseMessage response, CancellationToken ct)
    {
        try
        {
            using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
            return doc.RootElement.TryGetProperty("detail", out var d) ? d.GetString() ?? response.ReasonPhrase ?? "" : response.ReasonPhrase ?? "";
        }
        catch (JsonException)
        {
            return response.ReasonPhrase ?? "";
        }
    }
}

public static class SoftwareVersion
{
    public static string Current { get; } =
        typeof(SoftwareVersion).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";
}
