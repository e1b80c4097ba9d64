using System.Security.Cryptography;
using Airlock.ControlPlane.Sidecars;
using Airlock.Contracts;
using Airlock.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Airlock.ControlPlane.Tests;

public sealed class EnrollmentRaceOnSqliteTests() : EnrollmentRaceTests(StoreProvider.Sqlite);

public sealed class EnrollmentRaceOnPostgresTests() : EnrollmentRaceTests(StoreProvider.Postgres);

/// <summary>Two tokens of one sidecar used at the same moment: exactly one enrolls it, the other is refused.</summary>
public abstract class EnrollmentRaceTests(StoreProvider provider) : StoreTestBase(provider)
{
    private static EnrollRequest Request(string token)
    {
        using var signing = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var sealing = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
        return new EnrollRequest(token, signing.ExportSubjectPublicKeyInfo(), sealing.ExportSubjectPublicKeyInfo(), "test");
    }

    [Fact]
    public async Task Two_tokens_used_at_once_enroll_the_sidecar_once()
    {
        for (var round = 0; round < 5; round++)
        {
            var name = $"edge-{round}";
            await CreateSidecarAsync(name);
            var tokens = new List<string>();
            for (var i = 0; i < 4; i++)
                tokens.Add(await WithScope(async sp => (await sp.GetRequiredService<SidecarService>().CreateEnrollmentTokenAsync(name, null, "test", default)).Token));

            var outcomes = await Task.WhenAll(tokens.Select(token => Task.Run(async () =>
            {
                try
                {
                    return await WithScope(async sp => (await sp.GetRequiredService<SidecarService>().EnrollAsync(Request(token), default)).Credential);
                }
                catch (ApiProblemException)
                {
                    return null;
                }
            })));
            var credential = Assert.Single(outcomes, c => c is not null);
            // The stored credential is the one the winner was given.
            var stored = await WithDb(db => Task.FromResult(db.Sidecars.Single(s => s.Name == name).CredentialHash));
            Assert.Equal(Identity.Secrets.Hash(credential!), stored);
        }
    }
}
