using System.Security.Cryptography;
using Airlock.Sidecar.Policy;

namespace Airlock.Sidecar.Policy.Tests;

public sealed class CredentialSealTests
{
    [Theory]
    [InlineData("hunter2")]
    [InlineData("")]
    [InlineData("päss wörd with ünïcode and 'quotes' \"and\" $dollars")]
    public void A_sealed_credential_opens_with_the_sidecar_key(string secret)
    {
        using var key = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
        var sealedValue = CredentialSeal.Seal(secret, "sc-1", key.ExportSubjectPublicKeyInfo());
        Assert.DoesNotContain(secret.Length > 0 ? secret : "\u0001", sealedValue, StringComparison.Ordinal);
        Assert.Equal(secret, CredentialSeal.Open(sealedValue, "sc-1", key));
    }

    [Fact]
    public void Another_sidecars_key_cannot_open_it()
    {
        using var key = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
        using var other = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
        var sealedValue = CredentialSeal.Seal("hunter2", "sc-1", key.ExportSubjectPublicKeyInfo());
        Assert.Null(CredentialSeal.Open(sealedValue, "sc-1", other));
    }

    [Fact]
    public void It_is_bound_to_the_sidecar_id()
    {
        using var key = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
        var sealedValue = CredentialSeal.Seal("hunter2", "sc-1", key.ExportSubjectPublicKeyInfo());
        Assert.Null(CredentialSeal.Open(sealedValue, "sc-2", key));
    }

    [Fact]
    public void Every_single_byte_change_is_detected()
    {
        using var key = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
        var bytes = Convert.FromBase64String(CredentialSeal.Seal("hunter2", "sc-1", key.ExportSubjectPublicKeyInfo()));
        for (var i = 0; i < bytes.Length; i++)
        {
            var copy = (byte[])bytes.Clone();
            copy[i] ^= 0x40;
            Assert.Null(CredentialSeal.Open(Convert.ToBase64String(copy), "sc-1", key));
        }
    }

    [Theory]
    [InlineData("")]
    [InlineData("not base64!")]
    [InlineData("AQ==")]
    [InlineData("AQAA")]
    [InlineData("AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")]
    public void Malformed_input_is_refused_not_thrown(string sealedValue)
    {
        using var key = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
        Assert.Null(CredentialSeal.Open(sealedValue, "sc-1", key));
    }

    [Fact]
    public void Every_truncated_prefix_is_refused()
    {
        using var key = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
        var bytes = Convert.FromBase64String(CredentialSeal.Seal("hunter2", "sc-1", key.ExportSubjectPublicKeyInfo()));
        for (var length = 0; length < bytes.Length; length++)
            Assert.Null(CredentialSeal.Open(Convert.ToBase64String(bytes, 0, length), "sc-1", key));
    }
}
