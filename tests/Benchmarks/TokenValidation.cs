using System.Buffers.Text;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Airlock.Sidecar.ControlPlane;
using Airlock.Sidecar.Identity;
using Airlock.Sidecar.Policy;
using Airlock.Sidecar.Policy.Identity;
using Airlock.Sidecar.Snapshots;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.Benchmarks;

/// <summary>
/// Agent-token validations per second on one core at the sidecar, RS256 and ES256: cold (the full
/// offline validation: parse, key lookup, signature, claims, agent) and cached (the sidecar's
/// authenticator answering a token it already validated under the same snapshot).
/// </summary>
internal static class TokenValidation
{
    private const string SidecarId = "bench-sidecar";
    private const string Issuer = "https://airlock.bench/";

    public static async Task<int> RunAsync(string[] args)
    {
        var seconds = args.Length > 0 && double.TryParse(args[0], out var s) ? s : 2.0;
        using var rsa = RSA.Create(2048);
        using var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var agents = new List<AgentPolicy> { new("agent-1", "ci-deploy", "deployer", true) };
        var identity = new IdentityPolicy(Issuer, "airlock", [Jwk("rsa", rsa), Jwk("ec", ec)], []);
        var tokens = new Dictionary<string, string>
        {
            ["RS256"] = Mint("RS256", "rsa", input => rsa.SignData(input, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1)),
            ["ES256"] = Mint("ES256", "ec", input => ec.SignData(input, HashAlgorithmName.SHA256)),
        };
        var authenticator = await AuthenticatorAsync(identity, agents);

        Console.WriteLine($"token validation, one thread, {seconds:F0} s per measurement ({Environment.ProcessorCount} cores on this machine)");
        Console.WriteLine($"{"alg",-6} {"path",-7} {"validations/s",14} {"µs each",9}");
        foreach (var (alg, token) in tokens)
        {
            var now = DateTimeOffset.UtcNow;
            var cold = Measure(() => TokenValidator.Validate(token, identity, agents, now).IsValid, seconds);
            var cached = Measure(() => authenticator.Authenticate(token).IsValid, seconds);
            Console.WriteLine($"{alg,-6} {"cold",-7} {cold,14:N0} {1e6 / cold,9:F1}");
            Console.WriteLine($"{alg,-6} {"cached",-7} {cached,14:N0} {1e6 / cached,9:F2}");
        }
        Console.WriteLine("target: the cached path adds under 20 µs to a connection");
        return 0;
    }

    private static double Measure(Func<bool> operation, double seconds)
    {
        for (var i = 0; i < 200; i++)
            if (!operation())
                throw new InvalidOperationException("the benchmark token does not validate");
        long count = 0;
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed.TotalSeconds < seconds)
        {
            for (var i = 0; i < 64; i++)
                operation();
            count += 64;
        }
        return count / clock.Elapsed.TotalSeconds;
    }

    /// <summary>The sidecar's own authenticator over a real snapshot store holding a signed snapshot.</summary>
    private static async Task<AgentAuthenticator> AuthenticatorAsync(IdentityPolicy identity, List<AgentPolicy> agents)
    {
        using var snapshotKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var state = Directory.CreateTempSubdirectory("airlock-bench-tokens-").FullName;
        var sidecar = new SidecarIdentity(SidecarId, "bench", "sc_bench", "http://127.0.0.1", "http://127.0.0.1",
            [new SnapshotKey("k", snapshotKey.ExportSubjectPublicKeyInfo())], [], []);
        var store = new SnapshotStore(sidecar, new SidecarOptionsSnapshot(state), TimeProvider.System, NullLogger<SnapshotStore>.Instance);
        var snapshot = new PolicySnapshot(SidecarId, "bench", [], [], agents, [], identity);
        var check = await store.ApplyAsync(SnapshotCodec.Sign(snapshot, 1, DateTimeOffset.UtcNow, 3600, "k", snapshotKey), default);
        if (check.Verdict != SnapshotVerdict.Accepted)
            throw new InvalidOperationException(check.Reason);
        return new AgentAuthenticator(store, TimeProvider.System);
    }

    private static string Mint(string alg, string kid, Func<byte[], byte[]> sign)
    {
        var now = DateTimeOffset.UtcNow;
        var header = B64(new { alg, typ = "at+jwt", kid });
        var payload = B64(new { iss = Issuer, sub = "agent-1", aud = "airlock", name = "ci-deploy", role = "deployer", iat = now.ToUnixTimeSeconds(), exp = now.AddMinutes(15).ToUnixTimeSeconds(), jti = Guid.NewGuid() });
        return $"{header}.{payload}.{Base64Url.EncodeToString(sign(Encoding.ASCII.GetBytes($"{header}.{payload}")))}";
    }

    private static string B64(object value) => Base64Url.EncodeToString(JsonSerializer.SerializeToUtf8Bytes(value));

    private static PublicJwk Jwk(string kid, RSA key)
    {
        var p = key.ExportParameters(false);
        return new PublicJwk(kid, "RSA", "RS256", Base64Url.EncodeToString(p.Modulus), Base64Url.EncodeToString(p.Exponent), null, null, null);
    }

    private static PublicJwk Jwk(string kid, ECDsa key)
    {
        var q = key.ExportParameters(false).Q;
        return new PublicJwk(kid, "EC", "ES256", null, null, "P-256", Base64Url.EncodeToString(q.X), Base64Url.EncodeToString(q.Y));
    }
}
