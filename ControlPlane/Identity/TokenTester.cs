using System.Buffers.Text;
using System.Text.Json;
using Airlock.ControlPlane.Policies;
using Airlock.Sidecar.Policy;
using Airlock.Sidecar.Policy.Identity;

namespace Airlock.ControlPlane.Identity;

/// <summary>One claim condition of a binding against a pasted token.</summary>
public sealed record ConditionTest(string Claim, string Expected, string? Actual, bool Holds);

/// <summary>One binding of a trusted issuer against a pasted token, condition by condition.</summary>
public sealed record BindingTest(string Issuer, string Binding, string Agent, IReadOnlyList<ConditionTest> Conditions)
{
    public bool Matches => Conditions.All(c => c.Holds);
}

/// <summary>
/// What the console's "test a token" box shows: the token decoded, each binding of the issuers it
/// names with each condition held or not, and the verdict a sidecar would reach — signature, expiry
/// and audience included — or why it cannot be read at all.
/// </summary>
public sealed record TokenTest(string? Unreadable, string? Header, string? Claims, string? Issuer, IReadOnlyList<BindingTest> Bindings, string? Agent, string? Refusal);

public sealed class TokenTester(SnapshotCompiler compiler, TimeProvider time)
{
    private static readonly JsonSerializerOptions _indented = new() { WriteIndented = true };

    public async Task<TokenTest> TestAsync(string token, CancellationToken ct)
    {
        var (identity, agents) = await compiler.CompileIdentityForEveryAgentAsync(ct);
        return Explain(token.Trim(), identity, agents, time.GetUtcNow());
    }

    /// <summary>Pure: the explanation for one token against one identity policy.</summary>
    public static TokenTest Explain(string token, IdentityPolicy identity, IReadOnlyList<AgentPolicy> agents, DateTimeOffset now)
    {
        var parts = token.Split('.');
        if (token.Length > TokenValidator.MaxTokenLength || parts.Length != 3)
            return Unreadable(token.Length > TokenValidator.MaxTokenLength ? $"longer than {TokenValidator.MaxTokenLength} characters" : "not a signed JWT (header.payload.signature)");
        JsonElement header, claims;
        try
        {
            header = JsonDocument.Parse(Base64Url.DecodeFromChars(parts[0])).RootElement;
            claims = JsonDocument.Parse(Base64Url.DecodeFromChars(parts[1])).RootElement;
        }
        catch (Exception e) when (e is FormatException or JsonException)
        {
            return Unreadable("its header or payload is not base64url JSON");
        }
        if (claims.ValueKind != JsonValueKind.Object)
            return Unreadable("its payload is not a JSON object");

        var issuer = claims.TryGetProperty("iss", out var iss) && iss.ValueKind == JsonValueKind.String ? iss.GetString() : null;
        var bindings = identity.TrustedIssuers
            .Where(t => string.Equals(t.Issuer, issuer, StringComparison.Ordinal))
            .SelectMany(t => t.Bindings.Select(b => new BindingTest(t.Name, b.Name, b.Agent,
                b.Conditions.Select(c => new ConditionTest(c.Claim, Describe(c), ClaimText(claims, c.Claim), TokenValidator.Holds(c, claims))).ToList())))
            .ToList();
        var verdict = TokenValidator.Validate(token, identity, agents, now);
        return new TokenTest(null, JsonSerializer.Serialize(header, _indented), JsonSerializer.Serialize(claims, _indented), issuer, bindings,
            verdict.Agent?.Name, verdict.Reason);
    }

    private static TokenTest Unreadable(string why) => new($"This is not a token Airlock can read: {why}.", null, null, null, [], null, null);

    private static string Describe(ClaimCondition c) => c.Match switch
    {
        ClaimMatches.Exact => $"= {c.Values[0]}",
        ClaimMatches.Glob => $"matches {c.Values[0]}",
        _ => $"one of {string.Join(", ", c.Values)}",
    };

    private static string? ClaimText(JsonElement claims, string name) =>
        claims.TryGetProperty(name, out var value) ? (value.ValueKind == JsonValueKind.String ? value.GetString() : value.GetRawText()) : null;
}
