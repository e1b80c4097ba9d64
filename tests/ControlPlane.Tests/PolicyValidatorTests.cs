using Airlock.ControlPlane.Policies;

namespace Airlock.ControlPlane.Tests;

public sealed class PolicyValidatorTests
{
    private static readonly PolicyContext _context = new(
        new HashSet<string> { "edge-1", "edge-2" },
        new HashSet<string> { "alice" },
        new HashSet<string> { "stored-db" });

    private const string Valid = """
        targets:
        - name: orders
          sidecar: edge-1
          listenPort: 6432
          labels: {env: prod}
          upstream: {host: db.internal, database: orders, username: airlock, credential: "env:PG_PASSWORD"}
        roles:
        - name: reader
          grants: [{target: orders}, {selector: {env: prod}}]
          rules:
          - name: no-ddl
            action: block
            match: {classes: [ddl]}
            message: DDL is not allowed
          - name: approve-writes
            action: require_approval
            match: {classes: [write]}
          - name: mask-email
            action: mask
            mask: {columns: [users.email]}
        agents:
        - {name: ci-deploy, owner: alice, role: reader}
        """;

    private static (PolicyDocument Doc, IReadOnlyList<PolicyError> Errors) Validate(string yaml)
    {
        var (doc, parseError) = PolicyFormat.Parse<PolicyDocument>(yaml, yaml: true);
        Assert.Null(parseError);
        return (doc!, PolicyValidator.ValidateAndNormalize(doc!, _context));
    }

    [Fact]
    public void A_valid_document_has_no_errors_and_gets_defaults()
    {
        var (doc, errors) = Validate(Valid);
        Assert.Empty(errors);
        Assert.Equal("postgres", doc.Targets![0].Kind);
        Assert.Equal(5432, doc.Targets[0].Upstream!.Port);
        Assert.Equal("prefer", doc.Targets[0].Upstream!.Tls);
        Assert.True(doc.Agents![0].Enabled);
        var approval = doc.Roles![0].Rules![1].Approval!;
        Assert.Equal(("hold", 1, 900), (approval.Mode, approval.Approvals, approval.TimeoutSeconds));
        Assert.Equal("redact", doc.Roles[0].Rules![2].Mask!.Strategy);
    }

    public static TheoryData<string, string, string, string> BadDocuments => new()
    {
        // description, text to replace in Valid, replacement, expected "path: message" fragment
        { "bad name", "name: orders", "name: Orders!", "targets[0].name: 'Orders!' is not a valid name" },
        { "unknown kind", "listenPort: 6432", "listenPort: 6432\n  kind: oracle", "targets[0].kind: unknown kind 'oracle'" },
        { "unknown sidecar", "sidecar: edge-1", "sidecar: edge-9", "targets[0].sidecar: sidecar 'edge-9' does not exist" },
        { "port out of range", "listenPort: 6432", "listenPort: 70000", "targets[0].listenPort: is required and must be between 1 and 65535" },
        { "missing upstream host", "host: db.internal, ", "", "targets[0].upstream.host: is required" },
        { "bad tls", "username: airlock,", "username: airlock, tls: maybe,", "targets[0].upstream.tls: unknown TLS mode 'maybe'" },
        { "bad credential ref", "\"env:PG_PASSWORD\"", "\"vault:x\"", "targets[0].upstream.credential: must be 'env:NAME', 'file:/absolute/path' or 'stored'" },
        { "stored without secret", "\"env:PG_PASSWORD\"", "stored", "targets[0].upstream.credential: 'stored' but no credential is stored" },
        { "password and reference", "credential: \"env:PG_PASSWORD\"", "credential: \"env:X\", password: hunter2", "targets[0].upstream.password: give either a password" },
        { "grant to unknown target", "{target: orders}, ", "{target: nowhere}, ", "roles[0].grants[0].target: target 'nowhere' is not defined" },
        { "grant with both", "{target: orders}, ", "{target: orders, selector: {a: b}}, ", "roles[0].grants[0]: give exactly one of 'target' or a non-empty 'selector'" },
        { "unknown action", "action: block", "action: explode", "roles[0].rules[0].action: must be one of" },
        { "unknown class", "classes: [ddl]", "classes: [ddl, evil]", "roles[0].rules[0].match.classes[1]: unknown class 'evil'" },
        { "bad regex", "classes: [ddl]}", "classes: [ddl], pattern: '(unclosed'}", "roles[0].rules[0].match.pattern: is not a valid regular expression" },
        { "unknown flag", "classes: [ddl]}", "classes: [ddl], flags: [unfiltered_write, sneaky]}", "roles[0].rules[0].match.flags[1]: unknown flag 'sneaky'; expected one of: unfiltered_write," },
        { "unknown baseline", "  grants: [{target: orders}", "  baseline: very-safe\n  grants: [{target: orders}", "roles[0].baseline: unknown baseline 'very-safe'; expected one of: agent-safe" },
        { "mask without spec", "mask: {columns: [users.email]}", "message: x", "roles[0].rules[2].mask: is required for action 'mask'" },
        { "bad strategy", "mask: {columns: [users.email]}", "mask: {columns: [users.email], strategy: shred}", "roles[0].rules[2].mask.strategy: must be one of" },
        { "approval on block", "message: DDL is not allowed", "message: DDL\n    approval: {mode: hold}", "roles[0].rules[0].approval: is only allowed with action 'require_approval'" },
        { "duplicate rule", "name: approve-writes", "name: no-ddl", "roles[0].rules[1].name: rule 'no-ddl' is defined twice" },
        { "agent without role", ", role: reader}", "}", "agents[0].role: is required" },
        { "agent unknown role", "role: reader}", "role: writer}", "agents[0].role: role 'writer' is not defined" },
        { "agent unknown owner", "owner: alice", "owner: mallory", "agents[0].owner: console user 'mallory' does not exist" },
    };

    [Fact]
    public void Baseline_functions_and_flags_are_accepted_and_functions_folded()
    {
        var (doc, errors) = Validate(Valid
            .Replace("  grants: [{target: orders}", "  baseline: agent-safe\n  grants: [{target: orders}", StringComparison.Ordinal)
            .Replace("match: {classes: [ddl]}", "match: {classes: [ddl], functions: [PG_CATALOG.PG_SLEEP], flags: [row_lock, file_access]}", StringComparison.Ordinal));
        Assert.Empty(errors);
        Assert.Equal("agent-safe", doc.Roles![0].Baseline);
        Assert.Equal(["pg_sleep"], doc.Roles[0].Rules![0].Match!.Functions);
        Assert.Equal(["row_lock", "file_access"], doc.Roles[0].Rules![0].Match!.Flags);
    }

    [Theory]
    [MemberData(nameof(BadDocuments))]
    public void A_bad_document_reports_the_error_with_its_path(string _, string find, string replace, string expected)
    {
        Assert.Contains(find, Valid, StringComparison.Ordinal);
        var (_, errors) = Validate(Valid.Replace(find, replace, StringComparison.Ordinal));
        Assert.Contains(errors, e => $"{e.Path}: {e.Message}".Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void Every_error_is_reported_not_only_the_first()
    {
        var (_, errors) = Validate(Valid.Replace("sidecar: edge-1", "sidecar: nope").Replace("owner: alice", "owner: bob").Replace("action: block", "action: no"));
        Assert.Equal(3, errors.Count);
    }

    [Fact]
    public void Two_targets_on_one_sidecar_port_collide()
    {
        var twice = Valid.Replace("roles:", """
            - name: orders-2
              sidecar: edge-1
              listenPort: 6432
              upstream: {host: x}
            roles:
            """.Replace("\n", "\n", StringComparison.Ordinal));
        var (_, errors) = Validate(twice);
        Assert.Contains(errors, e => e.Path == "targets[1].listenPort" && e.Message.Contains("already used", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("targets: [", "line")]
    [InlineData("targets:\n- name: a\n  nosuchfield: 1\n", "line 3")]
    public void Yaml_syntax_and_unknown_fields_are_parse_errors_with_a_position(string yaml, string where)
    {
        var (_, error) = PolicyFormat.Parse<PolicyDocument>(yaml, yaml: true);
        Assert.NotNull(error);
        Assert.Contains(where, error!.Path, StringComparison.Ordinal);
    }

    [Fact]
    public void Json_unknown_fields_are_errors_too()
    {
        var (_, error) = PolicyFormat.Parse<PolicyDocument>("""{"targets": [{"name": "a", "lisenPort": 1}]}""", yaml: false);
        Assert.NotNull(error);
        Assert.Contains("lisenPort", error!.Message + error.Path, StringComparison.Ordinal);
    }
}

public sealed class TrustedIssuerValidationTests
{
    private static readonly PolicyContext _context = new(new HashSet<string>(), new HashSet<string> { "alice" }, new HashSet<string>());

    private const string Valid = """
        roles:
        - {name: r}
        agents:
        - {name: bot, owner: alice, role: r}
        trustedIssuers:
        - name: github
          issuer: https://token.actions.githubusercontent.com
          audiences: [https://github.com/acme]
          bindings:
          - name: b1
            agent: bot
            claims: [{claim: repository, exact: acme/api}, {claim: ref, oneOf: [refs/heads/main]}]
        """;

    private static IReadOnlyList<PolicyError> Validate(string yaml)
    {
        var (doc, error) = PolicyFormat.Parse<PolicyDocument>(yaml, yaml: true);
        Assert.Null(error);
        return PolicyValidator.ValidateAndNormalize(doc!, _context);
    }

    [Fact]
    public void A_valid_issuer_has_no_errors() => Assert.Empty(Validate(Valid));

    public static TheoryData<string, string, string> Bad => new()
    {
        { "issuer: https://token.actions.githubusercontent.com", "issuer: http://evil.example", "trustedIssuers[0].issuer: must be https" },
        { "issuer: https://token.actions.githubusercontent.com", "issuer: not a url", "trustedIssuers[0].issuer: is required" },
        { "audiences: [https://github.com/acme]", "audiences: []", "trustedIssuers[0].audiences: name at least one" },
        { "agent: bot", "agent: ghost", "trustedIssuers[0].bindings[0].agent: agent 'ghost' is not defined" },
        { "{claim: repository, exact: acme/api}", "{claim: repository, exact: acme/api, glob: 'a*'}", "trustedIssuers[0].bindings[0].claims[0]: give exactly one of" },
        { "{claim: repository, exact: acme/api}", "{claim: repository, glob: '*'}", "trustedIssuers[0].bindings[0].claims[0].glob: a glob that matches everything" },
        { "oneOf: [refs/heads/main]", "oneOf: []", "trustedIssuers[0].bindings[0].claims[1].oneOf: must list at least one value" },
        { "claims: [{claim: repository, exact: acme/api}, {claim: ref, oneOf: [refs/heads/main]}]", "claims: []", "trustedIssuers[0].bindings[0].claims: name at least one claim condition" },
        { "  audiences:", "  kind: ldap\n  audiences:", "trustedIssuers[0].kind: must be 'oidc' or 'saml'" },
        { "  audiences:", "  kind: saml\n  audiences:", "trustedIssuers[0].certificate: is required for kind 'saml'" },
        { "  audiences:", "  kind: saml\n  certificate: nope\n  audiences:", "trustedIssuers[0].certificate: is not a PEM certificate" },
        { "  audiences:", "  jwks: {keys: [{kid: k, kty: oct}]}\n  audiences:", "trustedIssuers[0].jwks.keys[0]: must be an RSA key" },
    };

    [Theory]
    [MemberData(nameof(Bad))]
    public void A_bad_issuer_reports_the_error_with_its_path(string find, string replace, string expected)
    {
        Assert.Contains(find, Valid, StringComparison.Ordinal);
        var errors = Validate(Valid.Replace(find, replace, StringComparison.Ordinal));
        Assert.Contains(errors, e => $"{e.Path}: {e.Message}".Contains(expected, StringComparison.Ordinal));
    }
}
