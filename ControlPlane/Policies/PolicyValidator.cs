using System.Text.RegularExpressions;
using Airlock.Sidecar.Policy;
using Airlock.Sidecar.Protocols;
using Airlock.Sidecar.Policy.Guardrails;
using Airlock.Sidecar.Protocols.Sql;

namespace Airlock.ControlPlane.Policies;

/// <summary>What the validator needs to know about the store beyond the document itself.</summary>
public sealed record PolicyContext(
    IReadOnlySet<string> Sidecars,
    IReadOnlySet<string> Users,
    IReadOnlySet<string> TargetsWithStoredCredential);

/// <summary>
/// Checks a whole document and reports every problem with its path; fills in defaults. Pure: the
/// store's facts come in through <see cref="PolicyContext"/>.
/// </summary>
public static partial class PolicyValidator
{
    public const string StoredCredential = "stored";

    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,62}$")]
    private static partial Regex NamePattern();

    public static IReadOnlyList<PolicyError> ValidateAndNormalize(PolicyDocument doc, PolicyContext context)
    {
        var errors = new List<PolicyError>();
        doc.Targets ??= [];
        doc.Roles ??= [];
        doc.Agents ??= [];
        doc.TrustedIssuers ??= [];

        var targetNames = new HashSet<string>(StringComparer.Ordinal);
        var listeners = new HashSet<(string, int)>();
        for (var i = 0; i < doc.Targets.Count; i++)
            ValidateTarget(doc.Targets[i], $"targets[{i}]", context, targetNames, listeners, errors);

        var roleNames = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < doc.Roles.Count; i++)
            ValidateRole(doc.Roles[i], $"roles[{i}]", targetNames, roleNames, errors);

        var agentNames = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < doc.Agents.Count; i++)
        {
            var agent = doc.Agents[i];
            var path = $"agents[{i}]";
            if (agent is null) { errors.Add(new(path, "must be an object")); continue; }
            Name(agent.Name, path, "agent", agentNames, errors);
            agent.Description ??= "";
            agent.Enabled ??= true;
            if (string.IsNullOrEmpty(agent.Role))
                errors.Add(new($"{path}.role", "is required: an agent has exactly one role"));
            else if (!roleNames.Contains(agent.Role))
                errors.Add(new($"{path}.role", $"role '{agent.Role}' is not defined in this document"));
            if (string.IsNullOrEmpty(agent.Owner))
                errors.Add(new($"{path}.owner", "is required: the console user who owns this agent"));
            else if (!context.Users.Contains(agent.Owner))
                errors.Add(new($"{path}.owner", $"console user '{agent.Owner}' does not exist"));
        }

        var issuerNames = new HashSet<string>(StringComparer.Ordinal);
        var issuerUrls = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < doc.TrustedIssuers.Count; i++)
            ValidateTrustedIssuer(doc.TrustedIssuers[i], $"trustedIssuers[{i}]", agentNames, issuerNames, issuerUrls, errors);
        return errors;
    }

    private static void ValidateTrustedIssuer(
        TrustedIssuerSpec? t, string path, HashSet<string> agents, HashSet<string> names, HashSet<string> urls, List<PolicyError> errors)
    {
        if (t is null) { errors.Add(new(path, "must be an object")); return; }
        Name(t.Name, path, "trusted issuer", names, errors);
        t.Kind ??= "oidc";
        if (t.Kind == "saml")
        {
            ValidateSamlIssuer(t, path, urls, errors);
            ValidateBindings(t, path, agents, errors);
            return;
        }
        if (t.Kind != "oidc")
            errors.Add(new($"{path}.kind", "must be 'oidc' or 'saml'"));
        if (t.Certificate is not null)
            errors.Add(new($"{path}.certificate", "is only for kind 'saml'; OIDC issuers use jwks or discovery"));
        if (string.IsNullOrEmpty(t.Issuer) || !Uri.TryCreate(t.Issuer, UriKind.Absolute, out var issuer))
            errors.Add(new($"{path}.issuer", "is required: the absolute URL its tokens carry in 'iss'"));
        else if (issuer.Scheme != Uri.UriSchemeHttps && !(issuer.Scheme == Uri.UriSchemeHttp && issuer.IsLoopback))
            errors.Add(new($"{path}.issuer", "must be https (plain http only on loopback, for tests)"));
        else if (!urls.Add(t.Issuer))
            errors.Add(new($"{path}.issuer", $"issuer '{t.Issuer}' is trusted twice"));
        t.Audiences ??= [];
        if (t.Audiences.Count == 0 || t.Audiences.Any(string.IsNullOrWhiteSpace))
            errors.Add(new($"{path}.audiences", "name at least one accepted audience (the 'aud' your tokens are minted for)"));
        if (t.Jwks is not null)
        {
            t.Jwks.Keys ??= [];
            if (t.Jwks.Keys.Count == 0)
                errors.Add(new($"{path}.jwks.keys", "a static JWKS needs at least one key"));
            for (var k = 0; k < t.Jwks.Keys.Count; k++)
            {
                var key = t.Jwks.Keys[k];
                var kp = $"{path}.jwks.keys[{k}]";
                if (key is null || string.IsNullOrEmpty(key.Kid))
                    errors.Add(new($"{kp}.kid", "is required"));
                else if (!(key.Kty == "RSA" && key.N is not null && key.E is not null) && !(key.Kty == "EC" && key.Crv == "P-256" && key.X is not null && key.Y is not null))
                    errors.Add(new(kp, "must be an RSA key (n, e) or an EC P-256 key (x, y)"));
            }
        }
        ValidateBindings(t, path, agents, errors);
    }

    private static void ValidateSamlIssuer(TrustedIssuerSpec t, string path, HashSet<string> urls, List<PolicyError> errors)
    {
        if (string.IsNullOrEmpty(t.Issuer))
            errors.Add(new($"{path}.issuer", "is required: the identity provider's entity ID"));
        else if (!urls.Add(t.Issuer))
            errors.Add(new($"{path}.issuer", $"issuer '{t.Issuer}' is trusted twice"));
        if (t.Jwks is not null)
            errors.Add(new($"{path}.jwks", "SAML providers are trusted by certificate, not JWKS"));
        t.Audiences ??= [];
        if (t.Audiences.Any(string.IsNullOrWhiteSpace))
            errors.Add(new($"{path}.audiences", "must not contain empty values"));
        if (string.IsNullOrWhiteSpace(t.Certificate))
        {
            errors.Add(new($"{path}.certificate", "is required for kind 'saml': the PEM certificate that signs its assertions"));
            return;
        }
        try
        {
            using var certificate = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(t.Certificate);
            t.Certificate = certificate.ExportCertificatePem();
        }
        catch (Exception e) when (e is System.Security.Cryptography.CryptographicException or ArgumentException)
        {
            errors.Add(new($"{path}.certificate", $"is not a PEM certificate: {e.Message}"));
        }
    }

    private static void ValidateBindings(TrustedIssuerSpec t, string path, HashSet<string> agents, List<PolicyError> errors)
    {
        t.Bindings ??= [];
        if (t.Bindings.Count == 0)
            errors.Add(new($"{path}.bindings", "name at least one binding: a trusted issuer without bindings grants nothing"));
        var bindingNames = new HashSet<string>(StringComparer.Ordinal);
        for (var b = 0; b < t.Bindings.Count; b++)
        {
            var binding = t.Bindings[b];
            var bp = $"{path}.bindings[{b}]";
            if (binding is null) { errors.Add(new(bp, "must be an object")); continue; }
            Name(binding.Name, bp, "binding", bindingNames, errors);
            if (string.IsNullOrEmpty(binding.Agent))
                errors.Add(new($"{bp}.agent", "is required"));
            else if (!agents.Contains(binding.Agent))
                errors.Add(new($"{bp}.agent", $"agent '{binding.Agent}' is not defined in this document"));
            binding.Claims ??= [];
            if (binding.Claims.Count == 0)
                errors.Add(new($"{bp}.claims", "name at least one claim condition: a binding without conditions would match every token"));
            for (var c = 0; c < binding.Claims.Count; c++)
            {
                var condition = binding.Claims[c];
                var cp = $"{bp}.claims[{c}]";
                if (condition is null || string.IsNullOrEmpty(condition.Claim))
                {
                    errors.Add(new($"{cp}.claim", "is required"));
                    continue;
                }
                var given = (condition.Exact is null ? 0 : 1) + (condition.Glob is null ? 0 : 1) + (condition.OneOf is null ? 0 : 1);
                if (given != 1)
                    errors.Add(new(cp, "give exactly one of 'exact', 'glob' or 'oneOf'"));
                else if (condition.OneOf is { Count: 0 })
                    errors.Add(new($"{cp}.oneOf", "must list at least one value"));
                else if (condition.Glob is "*" or "")
                    errors.Add(new($"{cp}.glob", "a glob that matches everything is not a condition"));
            }
        }
    }

    private static void ValidateTarget(
        TargetSpec? t, string path, PolicyContext context, HashSet<string> names, HashSet<(string, int)> listeners, List<PolicyError> errors)
    {
        if (t is null) { errors.Add(new(path, "must be an object")); return; }
        Name(t.Name, path, "target", names, errors);
        t.Kind ??= TargetKind.Postgres;
        if (!TargetKind.IsKnown(t.Kind))
            errors.Add(new($"{path}.kind", $"unknown kind '{t.Kind}'; expected one of: {string.Join(", ", TargetKind.All)}"));
        t.Labels ??= [];
        foreach (var (key, value) in t.Labels)
            if (!NamePattern().IsMatch(key) || value is null || value.Length > 63)
                errors.Add(new($"{path}.labels.{key}", "label keys are lower-case names and values at most 63 characters"));

        if (string.IsNullOrEmpty(t.Sidecar))
            errors.Add(new($"{path}.sidecar", "is required: the sidecar that serves this target"));
        else if (!context.Sidecars.Contains(t.Sidecar))
            errors.Add(new($"{path}.sidecar", $"sidecar '{t.Sidecar}' does not exist (create it with an enrollment token first)"));

        if (t.ListenPort is not (>= 1 and <= 65535))
            errors.Add(new($"{path}.listenPort", "is required and must be between 1 and 65535"));
        else if (t.Sidecar is not null && !listeners.Add((t.Sidecar, t.ListenPort.Value)))
            errors.Add(new($"{path}.listenPort", $"port {t.ListenPort} is already used by another target on sidecar '{t.Sidecar}'"));

        t.AllowCleartextOnLoopback ??= false;

        var u = t.Upstream;
        if (u is null) { errors.Add(new($"{path}.upstream", "is required")); return; }
        if (string.IsNullOrWhiteSpace(u.Host))
            errors.Add(new($"{path}.upstream.host", "is required"));
        u.Port ??= t.Kind == TargetKind.Postgres ? 5432 : null;
        if (u.Port is not (>= 1 and <= 65535))
            errors.Add(new($"{path}.upstream.port", "must be between 1 and 65535"));
        u.Database ??= "";
        u.Username ??= "";
        u.Tls ??= "prefer";
        if (!UpstreamTlsModes.All.Contains(u.Tls))
            errors.Add(new($"{path}.upstream.tls", $"unknown TLS mode '{u.Tls}'; expected one of: {string.Join(", ", UpstreamTlsModes.All)}"));

        if (u.Auth is { } auth)
        {
            foreach (var method in auth)
                if (!UpstreamAuthMethods.All.Contains(method))
                    errors.Add(new($"{path}.upstream.auth", $"unknown authentication method '{method}'; expected any of: {string.Join(", ", UpstreamAuthMethods.All)}"));
            if (auth.Count == 0)
                errors.Add(new($"{path}.upstream.auth", "lists no method; leave it out for the default (scram-sha-256)"));
            if (auth.Contains(UpstreamAuthMethods.Password) && u.Tls == "disable")
                errors.Add(new($"{path}.upstream.auth", "'password' sends the credential in clear, and this target's tls is 'disable'; use tls: require or verify-full"));
            u.Auth = [.. auth.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];
        }

        if (u.Password is not null)
        {
            if (u.Credential is not null && u.Credential != StoredCredential)
                errors.Add(new($"{path}.upstream.password", "give either a password to store or a credential reference, not both"));
            u.Credential = StoredCredential;
        }
        else if (u.Credential == StoredCredential)
        {
            if (t.Name is null || !context.TargetsWithStoredCredential.Contains(t.Name))
                errors.Add(new($"{path}.upstream.credential", "'stored' but no credential is stored for this target; give upstream.password"));
        }
        else if (u.Credential is not null)
        {
            var isEnv = u.Credential.StartsWith("env:", StringComparison.Ordinal) && u.Credential.Length > 4;
            var isFile = u.Credential.StartsWith("file:/", StringComparison.Ordinal);
            if (!isEnv && !isFile)
                errors.Add(new($"{path}.upstream.credential", "must be 'env:NAME', 'file:/absolute/path' or 'stored'"));
        }
    }

    private static void ValidateRole(RoleSpec? r, string path, HashSet<string> targets, HashSet<string> names, List<PolicyError> errors)
    {
        if (r is null) { errors.Add(new(path, "must be an object")); return; }
        Name(r.Name, path, "role", names, errors);
        r.Description ??= "";
        if (r.Baseline is not null && !Baselines.All.Contains(r.Baseline))
            errors.Add(new($"{path}.baseline", $"unknown baseline '{r.Baseline}'; expected one of: {string.Join(", ", Baselines.All)}"));
        r.Grants ??= [];
        r.Rules ??= [];
        for (var g = 0; g < r.Grants.Count; g++)
        {
            var grant = r.Grants[g];
            var gp = $"{path}.grants[{g}]";
            if (grant is null) { errors.Add(new(gp, "must be an object")); continue; }
            if ((grant.Target is null) == (grant.Selector is null or { Count: 0 }))
                errors.Add(new(gp, "give exactly one of 'target' or a non-empty 'selector'"));
            else if (grant.Target is not null && !targets.Contains(grant.Target))
                errors.Add(new($"{gp}.target", $"target '{grant.Target}' is not defined in this document"));
            if (grant.Selector is { Count: 0 })
                grant.Selector = null;
        }

        var ruleNames = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < r.Rules.Count; i++)
            ValidateRule(r.Rules[i], $"{path}.rules[{i}]", targets, ruleNames, errors);
    }

    private static void ValidateRule(RuleSpec? rule, string path, HashSet<string> targets, HashSet<string> names, List<PolicyError> errors)
    {
        if (rule is null) { errors.Add(new(path, "must be an object")); return; }
        Name(rule.Name, path, "rule", names, errors);
        if (rule.Action is null || !RuleActions.All.Contains(rule.Action))
            errors.Add(new($"{path}.action", $"must be one of: {string.Join(", ", RuleActions.All)}"));
        rule.Targets ??= [];
        for (var i = 0; i < rule.Targets.Count; i++)
            if (!targets.Contains(rule.Targets[i]))
                errors.Add(new($"{path}.targets[{i}]", $"target '{rule.Targets[i]}' is not defined in this document"));

        rule.Match ??= new MatchSpec();
        rule.Match.Classes ??= [];
        rule.Match.Commands ??= [];
        rule.Match.Tables ??= [];
        rule.Match.Functions ??= [];
        rule.Match.Flags ??= [];
        for (var i = 0; i < rule.Match.Flags.Count; i++)
            if (!StatementNames.AllFlags.Contains(rule.Match.Flags[i]))
                errors.Add(new($"{path}.match.flags[{i}]", $"unknown flag '{rule.Match.Flags[i]}'; expected one of: {string.Join(", ", StatementNames.AllFlags)}"));
        for (var i = 0; i < rule.Match.Functions.Count; i++)
            rule.Match.Functions[i] = SqlFunctions.Fold(rule.Match.Functions[i]?.Trim() ?? "");
        for (var i = 0; i < rule.Match.Classes.Count; i++)
            if (!StatementClasses.All.Contains(rule.Match.Classes[i]))
                errors.Add(new($"{path}.match.classes[{i}]", $"unknown class '{rule.Match.Classes[i]}'; expected one of: {string.Join(", ", StatementClasses.All)}"));
        for (var i = 0; i < rule.Match.Commands.Count; i++)
            rule.Match.Commands[i] = rule.Match.Commands[i]?.Trim().ToUpperInvariant() ?? "";
        if (rule.Match.Pattern is not null)
        {
            try
            {
                _ = new Regex(rule.Match.Pattern, RegexOptions.None, TimeSpan.FromMilliseconds(100));
            }
            catch (ArgumentException e)
            {
                errors.Add(new($"{path}.match.pattern", $"is not a valid regular expression: {e.Message}"));
            }
        }

        if (rule.Action == RuleActions.Mask)
        {
            if (rule.Mask is null)
                errors.Add(new($"{path}.mask", "is required for action 'mask'"));
        }
        else if (rule.Mask is not null)
        {
            errors.Add(new($"{path}.mask", "is only allowed with action 'mask'"));
        }
        if (rule.Mask is { } mask)
        {
            mask.Columns ??= [];
            mask.Detectors ??= [];
            mask.Strategy ??= "redact";
            if (!MaskStrategies.All.Contains(mask.Strategy))
                errors.Add(new($"{path}.mask.strategy", $"must be one of: {string.Join(", ", MaskStrategies.All)}"));
            if (mask.Columns.Count == 0 && mask.Detectors.Count == 0)
                errors.Add(new($"{path}.mask", "name at least one column or detector"));
            if (mask.KeepLast is < 0 or > 64)
                errors.Add(new($"{path}.mask.keepLast", "must be between 0 and 64"));
            if (mask.Mode is not null && !Sidecar.Policy.Masking.MaskModes.All.Contains(mask.Mode))
                errors.Add(new($"{path}.mask.mode", $"must be one of: {string.Join(", ", Sidecar.Policy.Masking.MaskModes.All)}"));
            for (var c = 0; c < mask.Columns.Count; c++)
            {
                var parts = (mask.Columns[c] ?? "").Trim().Split('.');
                if (parts.Length is < 2 or > 3 || parts.Any(p => p.Length == 0 || p.Any(char.IsWhiteSpace)))
                    errors.Add(new($"{path}.mask.columns[{c}]", "must be 'table.column' or 'schema.table.column' (names as the catalog spells them)"));
            }
            for (var d = 0; d < mask.Detectors.Count; d++)
                if (!Sidecar.Policy.Masking.ContentDetectors.Names.Contains(mask.Detectors[d]))
                    errors.Add(new($"{path}.mask.detectors[{d}]", $"must be one of: {string.Join(", ", Sidecar.Policy.Masking.ContentDetectors.Names)}"));
        }

        if (rule.Action == RuleActions.RequireApproval)
            rule.Approval ??= new ApprovalSpecDoc();
        else if (rule.Approval is not null)
            errors.Add(new($"{path}.approval", "is only allowed with action 'require_approval'"));
        if (rule.Approval is { } approval)
        {
            approval.Mode ??= "hold";
            approval.Approvals ??= 1;
            approval.TimeoutSeconds ??= 900;
            if (!ApprovalModes.All.Contains(approval.Mode))
                errors.Add(new($"{path}.approval.mode", $"must be one of: {string.Join(", ", ApprovalModes.All)}"));
            if (approval.Approvals is < 1 or > 10)
                errors.Add(new($"{path}.approval.approvals", "must be between 1 and 10"));
            if (approval.TimeoutSeconds is < 10 or > 86400)
                errors.Add(new($"{path}.approval.timeoutSeconds", "must be between 10 and 86400"));
            if (approval.Group is { } group && !Identity.ConsoleGroupName.IsValid(group))
                errors.Add(new($"{path}.approval.group", Identity.ConsoleGroupName.Rule));
            if (approval.WindowMinutes is not null && approval.Mode != ApprovalModes.FailFast)
                errors.Add(new($"{path}.approval.windowMinutes", "is only allowed with mode 'fail-fast' (a held statement runs once, when approved)"));
            if (approval.WindowMinutes is < 1 or > 1440)
                errors.Add(new($"{path}.approval.windowMinutes", "must be between 1 and 1440"));
        }
        if (rule.Action == RuleActions.Block && string.IsNullOrWhiteSpace(rule.Message))
            rule.Message = null;
    }

    private static void Name(string? name, string path, string what, HashSet<string> seen, List<PolicyError> errors)
    {
        if (string.IsNullOrEmpty(name))
            errors.Add(new($"{path}.name", "is required"));
        else if (!NamePattern().IsMatch(name))
            errors.Add(new($"{path}.name", $"'{name}' is not a valid name: lower-case letters, digits, '.', '_' and '-', at most 63 characters"));
        else if (!seen.Add(name))
            errors.Add(new($"{path}.name", $"{what} '{name}' is defined twice"));
    }
}
