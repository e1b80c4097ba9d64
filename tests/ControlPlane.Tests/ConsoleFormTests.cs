using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Airlock.ControlPlane.Components.Pages.Roles;
using Airlock.ControlPlane.Components.Pages.Targets;
using Airlock.ControlPlane.Components.Shared;
using Airlock.ControlPlane.Data;
using Airlock.ControlPlane.Identity;
using Airlock.ControlPlane.Policies;
using Airlock.ControlPlane.Sessions;
using Airlock.Sidecar.Policy;
using Airlock.Sidecar.Policy.Identity;

namespace Airlock.ControlPlane.Tests;

/// <summary>The console forms' pure cores: what a form makes of its fields, and back.</summary>
public sealed class ConsoleFormTests
{
    private static readonly PolicyContext _context = new(new HashSet<string> { "edge-1" }, new HashSet<string> { "alice" }, new HashSet<string> { "orders" });

    [Fact]
    public void A_target_round_trips_through_its_form_without_its_secret()
    {
        var spec = new TargetSpec
        {
            Name = "orders", Kind = "postgres", Sidecar = "edge-1", ListenPort = 6432, Labels = new() { ["env"] = "prod", ["team"] = "shop" },
            AllowCleartextOnLoopback = true,
            Upstream = new UpstreamSpec { Host = "db", Port = 5432, Database = "orders", Username = "app", Tls = "require", Credential = "stored", Auth = ["scram-sha-256"] },
        };
        var form = TargetForm.From(spec);
        Assert.True(form.Existing);
        Assert.True(form.HasStoredCredential);
        Assert.Null(form.Password);
        Assert.Equal("env=prod, team=shop", form.Labels);
        var (back, errors) = form.ToSpec();
        Assert.Empty(errors);
        Assert.Equal(JsonSerializer.Serialize(spec), JsonSerializer.Serialize(back));
    }

    [Theory]
    [InlineData(CredentialSource.Stored, "s3cret", null, null, "s3cret")]
    [InlineData(CredentialSource.Stored, "", null, "stored", null)] // empty keeps the stored one
    [InlineData(CredentialSource.Reference, null, "env:PG_PW", "env:PG_PW", null)]
    [InlineData(CredentialSource.Reference, null, "", "", null)] // the validator says what a reference must be
    [InlineData(CredentialSource.None, "ignored", "ignored", null, null)]
    public void The_credential_choice_decides_what_is_sent(CredentialSource source, string? password, string? reference, string? credential, string? sentPassword)
    {
        var form = TargetForm.New("edge-1");
        form.Name = "t";
        form.Source = source;
        form.Password = password;
        form.Reference = reference;
        var (spec, _) = form.ToSpec();
        Assert.Equal(credential, spec!.Upstream!.Credential);
        Assert.Equal(sentPassword, spec.Upstream.Password);
    }

    [Theory]
    [InlineData("env=prod", true)]
    [InlineData("env=prod, team = shop", true)]
    [InlineData("", true)]
    [InlineData("env", false)]
    [InlineData("=prod", false)]
    public void Labels_are_key_value_pairs(string labels, bool valid)
    {
        var form = TargetForm.New("edge-1");
        form.Labels = labels;
        var (spec, errors) = form.ToSpec();
        Assert.Equal(valid, spec is not null);
        if (!valid)
            Assert.Equal("labels", Assert.Single(errors).Path);
    }

    [Fact]
    public void A_new_role_starts_from_the_agent_safe_baseline_and_validates()
    {
        var form = RoleForm.New();
        form.Name = "reader";
        form.Grants[0].Target = "orders";
        var (spec, errors) = form.ToSpec();
        Assert.Empty(errors);
        Assert.Equal("agent-safe", spec!.Baseline);
        var doc = new PolicyDocument { Targets = [Target()], Roles = [spec] };
        Assert.Empty(PolicyValidator.ValidateAndNormalize(doc, _context));
    }

    [Fact]
    public void A_role_round_trips_through_its_form_rules_in_order_with_their_kinds_settings()
    {
        var spec = new RoleSpec
        {
            Name = "writer", Description = "d", Baseline = null,
            Grants = [new GrantSpec { Target = "orders" }, new GrantSpec { Selector = new() { ["env"] = "prod" } }],
            Rules =
            [
                new RuleSpec { Name = "mask", Action = RuleActions.Mask, Targets = [], Match = Match(), Mask = new MaskSpecDoc { Columns = ["users.email"], Detectors = [], Strategy = "partial", KeepLast = 4 } },
                new RuleSpec { Name = "approve", Action = RuleActions.RequireApproval, Targets = ["orders"], Match = Match(classes: ["write"]), Approval = new ApprovalSpecDoc { Mode = "hold", Approvals = 2, Group = "dba", TimeoutSeconds = 600 } },
                new RuleSpec { Name = "no-drop", Action = RuleActions.Block, Targets = [], Match = Match(commands: ["DROP TABLE"], pattern: "x+"), Message = "no" },
            ],
        };
        var form = RoleForm.From(spec);
        Assert.False(form.AgentSafeBaseline);
        Assert.True(form.Grants[1].BySelector);
        var (back, errors) = form.ToSpec();
        Assert.Empty(errors);
        Assert.Equal(PolicyFormat.Write(spec, yaml: true), PolicyFormat.Write(back!, yaml: true));

        form.MoveRule(2, -1);
        form.MoveRule(0, -1); // out of range: nothing moves
        Assert.Equal(["mask", "no-drop", "approve"], form.Rules.Select(r => r.Name));
    }

    [Fact]
    public void A_rule_keeps_only_its_own_actions_settings()
    {
        var form = RoleForm.New();
        form.Rules.Add(new RuleRow { Name = "r", Action = RuleActions.Block, MaskColumns = "users.email", Approvals = 3 });
        var rule = form.ToSpec().Spec!.Rules!.Single();
        Assert.Null(rule.Mask);
        Assert.Null(rule.Approval);
    }

    [Fact]
    public void A_selector_that_is_not_key_value_is_an_error_at_its_grant()
    {
        var form = RoleForm.New();
        form.Grants = [new GrantRow { BySelector = true, Selector = "env=prod, oops" }];
        var (spec, errors) = form.ToSpec();
        Assert.Null(spec);
        Assert.Equal("grants[0].selector", Assert.Single(errors).Path);
    }

    [Fact]
    public void Field_errors_are_placed_by_path_and_prefix_and_none_is_lost()
    {
        var errors = new FieldErrors(
        [
            new("upstream.host", "is required"),
            new("upstream.host", "again"),
            new("rules[2].match.pattern", "bad regex"),
            new("rules[12].name", "dup"),
            new("agent 'ci'.role", "role 'x' is not defined"),
        ], ["upstream.host", "rules"]);
        Assert.Equal("is required; again", errors["upstream.host"]);
        Assert.Null(errors["upstream.port"]);
        Assert.Equal(["rules[2].match.pattern"], errors.Under("rules[2]").Select(e => e.Path)); // not rules[12]
        Assert.Equal(["agent 'ci'.role"], errors.Unplaced.Select(e => e.Path));
    }

    private static MatchSpec Match(List<string>? classes = null, List<string>? commands = null, string? pattern = null) =>
        new() { Classes = classes ?? [], Commands = commands ?? [], Tables = [], Functions = [], Flags = [], Pattern = pattern };

    private static TargetSpec Target() => new()
    {
        Name = "orders", Sidecar = "edge-1", ListenPort = 6432, Upstream = new UpstreamSpec { Host = "db", Credential = "env:PW" },
    };
}

public sealed class AuditDiffTests
{
    [Fact]
    public void A_change_shows_as_removed_and_added_lines_between_unchanged_ones()
    {
        var lines = AuditDiff.Lines("""{"name":"r","description":"old","rules":[]}""", """{"name":"r","description":"new","rules":[]}""");
        Assert.Equal(
            ["  {", "  \"name\": \"r\",", "- \"description\": \"old\",", "+ \"description\": \"new\",", "  \"rules\": []", "  }"],
            lines.Select(l => (l.Kind switch { DiffLineKind.Added => "+ ", DiffLineKind.Removed => "- ", _ => "  " }) + l.Text.Trim()));
    }

    [Theory]
    [InlineData(null, """{"a":1}""", 0, 3)]
    [InlineData("""{"a":1}""", null, 3, 0)]
    [InlineData(null, null, 0, 0)]
    [InlineData("not json", "not json either", 1, 1)]
    public void Creations_deletions_and_unreadable_values_still_diff(string? before, string? after, int removed, int added)
    {
        var lines = AuditDiff.Lines(before, after);
        Assert.Equal(removed, lines.Count(l => l.Kind == DiffLineKind.Removed));
        Assert.Equal(added, lines.Count(l => l.Kind == DiffLineKind.Added));
    }
}

public sealed class TokenTesterTests
{
    private static readonly RSA _issuerKey = RSA.Create(2048);
    private static readonly DateTimeOffset _now = new(2026, 12, 5, 12, 0, 0, TimeSpan.Zero);
    private const string GitHub = "https://token.actions.githubusercontent.com";

    private static readonly IdentityPolicy _identity = new("https://airlock.example", "airlock", [],
    [
        new TrustedIssuerPolicy("github", GitHub, ["https://github.com/acme"], [Jwk("gh-1")],
        [
            new BindingPolicy("api-deploy", "ci-deploy", [new ClaimCondition("repository", ClaimMatches.Exact, ["acme/api"]), new ClaimCondition("ref", ClaimMatches.Glob, ["refs/heads/*"])]),
            new BindingPolicy("backup", "nightly", [new ClaimCondition("repository", ClaimMatches.OneOf, ["acme/backup", "acme/db"])]),
        ]),
    ]);

    private static readonly AgentPolicy[] _agents = [new("1", "ci-deploy", "deployer", true), new("2", "nightly", "backup", true)];

    [Fact]
    public void A_matching_token_names_its_agent_and_shows_each_condition()
    {
        var test = TokenTester.Explain(Token(new { iss = GitHub, aud = "https://github.com/acme", exp = _now.AddMinutes(5).ToUnixTimeSeconds(), repository = "acme/api", @ref = "refs/heads/main" }), _identity, _agents, _now);
        Assert.Null(test.Unreadable);
        Assert.Equal("ci-deploy", test.Agent);
        Assert.Null(test.Refusal);
        var api = test.Bindings.Single(b => b.Binding == "api-deploy");
        Assert.True(api.Matches);
        var backup = test.Bindings.Single(b => b.Binding == "backup");
        Assert.False(backup.Matches);
        Assert.Equal(("repository", "one of acme/backup, acme/db", "acme/api", false), Single(backup));
        Assert.Contains("\"repository\": \"acme/api\"", test.Claims, StringComparison.Ordinal);
    }

    [Fact]
    public void A_token_matching_no_binding_says_which_condition_failed_and_why_the_sidecar_refuses()
    {
        var test = TokenTester.Explain(Token(new { iss = GitHub, aud = "https://github.com/acme", exp = _now.AddMinutes(5).ToUnixTimeSeconds(), repository = "acme/web" }), _identity, _agents, _now);
        Assert.Null(test.Agent);
        Assert.Equal("token of issuer 'github' matches no binding", test.Refusal);
        var api = test.Bindings.Single(b => b.Binding == "api-deploy");
        Assert.Equal([false, false], api.Conditions.Select(c => c.Holds));
        Assert.Null(api.Conditions[1].Actual); // no ref claim at all
    }

    [Fact]
    public void An_expired_token_is_decoded_but_refused_for_its_expiry()
    {
        var test = TokenTester.Explain(Token(new { iss = GitHub, aud = "https://github.com/acme", exp = _now.AddHours(-1).ToUnixTimeSeconds(), repository = "acme/api", @ref = "refs/heads/x" }), _identity, _agents, _now);
        Assert.True(test.Bindings.Single(b => b.Binding == "api-deploy").Matches);
        Assert.StartsWith("token expired at", test.Refusal, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("abc")]
    [InlineData("a.b.c.d.e")]
    [InlineData("!!!.???.sig")]
    public void Garbage_is_unreadable_not_an_exception(string token) =>
        Assert.StartsWith("This is not a token Airlock can read", TokenTester.Explain(token, _identity, _agents, _now).Unreadable, StringComparison.Ordinal);

    private static (string, string, string?, bool) Single(BindingTest binding)
    {
        var c = Assert.Single(binding.Conditions);
        return (c.Claim, c.Expected, c.Actual, c.Holds);
    }

    private static string Token(object payload)
    {
        var input = $"{Encode(new { alg = "RS256", kid = "gh-1", typ = "JWT" })}.{Encode(payload)}";
        return $"{input}.{Base64Url.EncodeToString(_issuerKey.SignData(Encoding.ASCII.GetBytes(input), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1))}";
    }

    private static string Encode(object value) => Base64Url.EncodeToString(JsonSerializer.SerializeToUtf8Bytes(value));

    private static PublicJwk Jwk(string kid)
    {
        var p = _issuerKey.ExportParameters(false);
        return new PublicJwk(kid, "RSA", "RS256", Base64Url.EncodeToString(p.Modulus), Base64Url.EncodeToString(p.Exponent), null, null, null);
    }
}

public sealed class SignInRulesTests
{
    [Theory]
    [InlineData("/users", "/users")]
    [InlineData("/sessions/1?x=y", "/sessions/1?x=y")]
    [InlineData(null, "/")]
    [InlineData("", "/")]
    [InlineData("https://evil.example/", "/")]
    [InlineData("//evil.example", "/")]
    [InlineData("/\\evil.example", "/")]
    [InlineData("/\t/evil.example", "/")] // a browser drops the tab: "//evil.example"
    [InlineData("/\n/evil.example", "/")]
    [InlineData("/a\\b", "/")]
    public void Only_local_paths_are_returned_to_after_sign_in(string? returnUrl, string expected) =>
        Assert.Equal(expected, Components.ConsoleExtensions.SafeReturnUrl(returnUrl));

    [Fact]
    public void A_single_sign_on_session_ends_after_its_lifetime_however_busy()
    {
        var now = DateTimeOffset.UtcNow;
        System.Security.Claims.ClaimsPrincipal At(DateTimeOffset t) => new(new System.Security.Claims.ClaimsIdentity(
            [new System.Security.Claims.Claim(ConsoleSsoExtensions.SignedInAtClaim, t.ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture))]));
        Assert.True(ConsoleSsoExtensions.StillVouchedFor(At(now.AddHours(-7)), now));
        Assert.False(ConsoleSsoExtensions.StillVouchedFor(At(now.AddHours(-9)), now));
        Assert.False(ConsoleSsoExtensions.StillVouchedFor(new System.Security.Claims.ClaimsPrincipal(new System.Security.Claims.ClaimsIdentity()), now)); // no time: no session
    }

    [Theory]
    [InlineData(new[] { "airlock-admins", "x" }, "Admin")]
    [InlineData(new[] { "dba", "airlock-auditors" }, "Approver")]
    [InlineData(new[] { "airlock-auditors" }, "Auditor")]
    [InlineData(new[] { "[\"airlock-admins\"]" }, null)] // a name is a name, never parsed
    [InlineData(new[] { "Airlock-Admins" }, null)]
    [InlineData(new string[0], null)]
    public void The_strongest_role_the_groups_give_applies(string[] groups, string? role) =>
        Assert.Equal(role, new ConsoleSsoOptions { AdminGroups = ["airlock-admins"], ApproverGroups = ["dba"], AuditorGroups = ["airlock-auditors"] }.RoleFor(groups));
}
