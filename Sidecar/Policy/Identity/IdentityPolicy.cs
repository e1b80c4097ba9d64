namespace Airlock.Sidecar.Policy.Identity;

/// <summary>
/// What a sidecar needs to validate agent tokens offline: Airlock's own issuer and keys, and the
/// trusted external issuers with their keys and bindings. Carried in every snapshot.
/// </summary>
public sealed record IdentityPolicy(
    string Issuer,
    string Audience,
    IReadOnlyList<PublicJwk> Keys,
    IReadOnlyList<TrustedIssuerPolicy> TrustedIssuers);

/// <summary>An external issuer (GitHub Actions, a Kubernetes cluster, GitLab …) whose tokens may stand for agents.</summary>
/// <param name="Audiences">A token must name one of these in <c>aud</c>.</param>
/// <param name="Bindings">Claim conditions mapping a token to exactly one agent.</param>
public sealed record TrustedIssuerPolicy(
    string Name,
    string Issuer,
    IReadOnlyList<string> Audiences,
    IReadOnlyList<PublicJwk> Keys,
    IReadOnlyList<BindingPolicy> Bindings);

/// <summary>All conditions must hold for the token to be the agent.</summary>
public sealed record BindingPolicy(string Name, string Agent, IReadOnlyList<ClaimCondition> Conditions);

/// <param name="Match"><c>exact</c> (equals the one value), <c>glob</c> (<c>*</c> any run, <c>?</c> one character) or <c>one_of</c>.</param>
public sealed record ClaimCondition(string Claim, string Match, IReadOnlyList<string> Values);

/// <summary>A public JSON Web Key: RSA (<c>n</c>, <c>e</c>) or EC P-256 (<c>x</c>, <c>y</c>), base64url.</summary>
public sealed record PublicJwk(string Kid, string Kty, string? Alg, string? N, string? E, string? Crv, string? X, string? Y);

public static class ClaimMatches
{
    public const string Exact = "exact";
    public const string Glob = "glob";
    public const string OneOf = "one_of";

    public static IReadOnlyList<string> All { get; } = [Exact, Glob, OneOf];
}
