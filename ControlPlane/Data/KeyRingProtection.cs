using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.DataProtection;

namespace Airlock.ControlPlane.Data;

/// <summary>
/// Section <c>Airlock:KeyRing</c>. The Data Protection key ring (it decrypts stored target passwords
/// and the token and snapshot signing keys) lives in the store beside what it protects; each key in
/// it is encrypted to an X.509 certificate that does not live there, so a copy of the SQLite file or
/// a PostgreSQL backup alone forges nothing.
/// </summary>
public sealed class KeyRingOptions
{
    public const string Section = "Airlock:KeyRing";

    /// <summary>PKCS#12 (.pfx/.p12) or PEM certificate with an RSA key. Default: <c>keyring.pfx</c> in the state directory, generated on first start.</summary>
    public string? CertificatePath { get; set; }

    /// <summary>PEM private key, when <see cref="CertificatePath"/> is a PEM certificate without its key.</summary>
    public string? KeyPath { get; set; }

    /// <summary>Password of a PKCS#12 file (prefer the environment: <c>Airlock__KeyRing__CertificatePassword</c>).</summary>
    public string? CertificatePassword { get; set; }

    /// <summary>Certificates keys were encrypted to before a rotation (PKCS#12 without password, or PEM with the key): still accepted for decrypting.</summary>
    public List<string> PreviousCertificatePaths { get; set; } = [];
}

public static class KeyRingProtection
{
    public const string DefaultFileName = "keyring.pfx";

    /// <summary>Protects the key ring with the configured certificate, or one generated into the state directory; a bad option stops the start, naming it.</summary>
    public static IDataProtectionBuilder ProtectKeyRing(this IDataProtectionBuilder builder, IConfiguration configuration, string stateDirectory, bool productionStore)
    {
        var options = configuration.GetSection(KeyRingOptions.Section).Get<KeyRingOptions>() ?? new KeyRingOptions();
        X509Certificate2 current;
        if (options.CertificatePath is { } path)
        {
            current = Load(path, options.KeyPath, options.CertificatePassword, $"{KeyRingOptions.Section}:CertificatePath");
        }
        else
        {
            var generated = Path.Combine(stateDirectory, DefaultFileName);
            current = File.Exists(generated) ? Load(generated, null, null, $"{KeyRingOptions.Section}:CertificatePath (default {generated})") : Generate(generated);
            if (productionStore)
                Console.Error.WriteLine($"controlplane: warning: the key ring is protected by {generated}, generated on this host; with a shared PostgreSQL store every replica needs the same certificate — set {KeyRingOptions.Section}:CertificatePath (see README, Security model)");
        }
        var previous = options.PreviousCertificatePaths.Select((p, i) => Load(p, null, null, $"{KeyRingOptions.Section}:PreviousCertificatePaths:{i}")).ToArray();
        return builder.ProtectKeysWithCertificate(current).UnprotectKeysWithAnyCertificate([current, .. previous]);
    }

    private static X509Certificate2 Load(string path, string? keyPath, string? password, string option)
    {
        X509Certificate2 certificate;
        try
        {
            var pem = File.ReadAllText(path).Contains("-----BEGIN", StringComparison.Ordinal);
            certificate = pem
                ? X509Certificate2.CreateFromPemFile(path, keyPath)
                : X509CertificateLoader.LoadPkcs12FromFile(path, password, X509KeyStorageFlags.EphemeralKeySet);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException or ArgumentException)
        {
            throw new StartupException($"{option}: cannot load the key-ring certificate '{path}': {e.Message}", e);
        }
        using var rsa = certificate.GetRSAPrivateKey();
        if (rsa is null)
            throw new StartupException($"{option}: '{path}' has no RSA private key; the key ring is encrypted to an RSA certificate and decrypted with its key");
        return certificate;
    }

    /// <summary>A self-signed RSA-3072 certificate for this control plane's key ring, written 0600 (it never leaves this host by itself).</summary>
    private static X509Certificate2 Generate(string path)
    {
        using var rsa = RSA.Create(3072);
        var request = new CertificateRequest("CN=Airlock key ring", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyEncipherment | X509KeyUsageFlags.DataEncipherment, critical: true));
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddYears(100));
        var pfx = certificate.Export(X509ContentType.Pkcs12);
        var temp = path + ".tmp";
        var create = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
            create.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var file = new FileStream(temp, create))
        {
            file.Write(pfx);
            file.Flush(flushToDisk: true);
        }
        File.Move(temp, path);
        return X509CertificateLoader.LoadPkcs12(pfx, null, X509KeyStorageFlags.EphemeralKeySet);
    }
}
