using System.Buffers.Text;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Security.Cryptography.Xml;
using System.Text;
using System.Xml;
using Airlock.ControlPlane.Data;
using Airlock.ControlPlane.Identity;
using Airlock.ControlPlane.Identity.Saml;
using Airlock.Testing;

namespace Airlock.ControlPlane.Tests;

public sealed class SamlAssertionValidatorTests : IDisposable
{
    private static readonly DateTimeOffset _now = DateTimeOffset.UtcNow;
    private readonly TestSamlIdp _idp = new();

    public void Dispose() => _idp.Dispose();

    private SamlCheck Check(string xml) => SamlAssertionValidator.Validate(xml, [_idp.Provider], TestSamlIdp.Recipient, _now);

    [Fact]
    public void A_signed_assertion_yields_its_subject_and_attributes()
    {
        var check = Check(_idp.Sign(TestSamlIdp.Unsigned("_a1", "deploy-bot@acme.example", _now)));
        Assert.Null(check.Reason);
        Assert.Equal("deploy-bot@acme.example", check.Assertion!.NameId);
        Assert.Equal(["deployers", "everyone"], check.Assertion.Attributes["group"]);
        Assert.Equal("_a1", check.Assertion.Id);
    }

    [Fact]
    public void A_wrapped_assertion_is_refused()
    {
        // Signature wrapping: the genuinely signed assertion is hidden inside an unsigned one that
        // says something else and carries the same ID.
        var genuine = _idp.Sign(TestSamlIdp.Unsigned("_w1", "nobody@acme.example", _now));
        var evil = TestSamlIdp.Unsigned("_w1", "admin@acme.example", _now)
            .Replace("</saml:Assertion>", $"<saml:Advice>{genuine}</saml:Advice></saml:Assertion>", StringComparison.Ordinal);
        Assert.Null(Check(evil).Assertion);
        Assert.Contains("wrapping", Check(evil).Reason, StringComparison.Ordinal);

        // The same with a fresh ID on the outside: the signature is not on the root assertion.
        var renamed = evil.Replace("ID=\"_w1\" Version", "ID=\"_w2\" Version", StringComparison.Ordinal);
        Assert.Contains("wrapping", Check(renamed).Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void The_signature_moved_onto_an_unsigned_root_does_not_verify()
    {
        var genuine = _idp.Sign(TestSamlIdp.Unsigned("_m1", "nobody@acme.example", _now));
        var doc = new XmlDocument { PreserveWhitespace = true };
        doc.LoadXml(genuine);
        var signature = doc.GetElementsByTagName("Signature", SamlAssertionValidator.DsigNs)[0]!.OuterXml;
        var forged = TestSamlIdp.Unsigned("_m1", "admin@acme.example", _now)
            .Replace("</saml:Issuer>", "</saml:Issuer>" + signature, StringComparison.Ordinal);
        Assert.Equal("the signature does not verify with the provider's certificate", Check(forged).Reason);
    }

    [Fact]
    public void An_assertion_signed_by_another_certificate_is_refused()
    {
        using var other = RSA.Create(2048);
        Assert.Equal("the signature does not verify with the provider's certificate", Check(_idp.Sign(TestSamlIdp.Unsigned("_o1", "a@acme.example", _now), other)).Reason);
    }

    [Fact]
    public void A_comment_injected_into_the_name_id_is_refused()
    {
        // exc-c14n drops comments, so the signature still verifies: the comment itself must be refused.
        var signed = _idp.Sign(TestSamlIdp.Unsigned("_c1", "admin@acme.example.evil.com", _now));
        var injected = signed.Replace("admin@acme.example.evil.com", "admin@acme.example<!---->.evil.com", StringComparison.Ordinal);
        Assert.Contains("comment", Check(injected).Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void An_expired_assertion_is_refused() =>
        Assert.Contains("expired", Check(_idp.Sign(TestSamlIdp.Unsigned("_e1", "a@acme.example", _now.AddMinutes(-30)))).Reason, StringComparison.Ordinal);

    [Fact]
    public void A_wrong_audience_is_refused() =>
        Assert.Contains("audience", Check(_idp.Sign(TestSamlIdp.Unsigned("_au", "a@acme.example", _now, audience: "https://other.example/"))).Reason, StringComparison.Ordinal);

    [Fact]
    public void A_wrong_recipient_is_refused() =>
        Assert.Contains("recipient", Check(_idp.Sign(TestSamlIdp.Unsigned("_r1", "a@acme.example", _now, recipient: "https://other.example/token"))).Reason, StringComparison.Ordinal);

    [Fact]
    public void An_unsigned_assertion_is_refused() =>
        Assert.Equal("assertion is not signed", Check(TestSamlIdp.Unsigned("_u1", "a@acme.example", _now)).Reason);

    [Fact]
    public void A_sha1_signature_is_refused() =>
        Assert.Contains("is not allowed", Check(_idp.Sign(TestSamlIdp.Unsigned("_s1", "a@acme.example", _now), signatureMethod: SignedXml.XmlDsigRSASHA1Url, digestMethod: SignedXml.XmlDsigSHA1Url)).Reason, StringComparison.Ordinal);

    [Fact]
    public void A_document_with_a_dtd_is_refused() =>
        Assert.Contains("not well-formed", Check("<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>" + TestSamlIdp.Unsigned("_d1", "&e;", _now)).Reason, StringComparison.Ordinal);

    [Fact]
    public void An_unknown_issuer_is_refused() =>
        Assert.Contains("is not trusted", SamlAssertionValidator.Validate(_idp.Sign(TestSamlIdp.Unsigned("_i1", "a@acme.example", _now)), [], TestSamlIdp.Recipient, _now).Reason, StringComparison.Ordinal);

    [Fact]
    public void Every_truncated_prefix_is_refused_without_throwing()
    {
        var signed = _idp.Sign(TestSamlIdp.Unsigned("_t1", "a@acme.example", _now));
        for (var length = 0; length < signed.Length; length += 7)
            Assert.Null(Check(signed[..length]).Assertion);
    }
}

/// <summary>The grant over a real store: bindings and one-time use.</summary>
public sealed class SamlBearerGrantTests : IAsyncLifetime
{
    private TestStore? _store;
    private readonly TestSamlIdp _idp = new();
    private readonly AgentTokenOptions _options = new() { Issuer = TestSamlIdp.Audience };

    public async Task InitializeAsync()
    {
        _store = await TestStore.CreateAsync(StoreProvider.Sqlite);
        await using var db = _store.Open();
        db.TrustedIssuers.Add(new TrustedIssuer
        {
            Id = Guid.NewGuid(),
            Name = "acme-idp",
            Issuer = TestSamlIdp.EntityId,
            Kind = TrustedIssuerKinds.Saml,
            Certificate = _idp.Certificate.ExportCertificatePem(),
            Bindings =
            [
                new BindingData("deploy-bot", "saml-deployer", [new ConditionData(SamlBearerGrant.NameIdClaim, "exact", ["deploy-bot@acme.example"])]),
                new BindingData("by-group", "saml-group", [new ConditionData("group", "one_of", ["auditors"])]),
                new BindingData("also-group", "saml-group-2", [new ConditionData("group", "glob", ["audit*"])]),
            ],
        });
        await db.SaveChangesAsync();
    }

    public async Task DisposeAsync()
    {
        _idp.Dispose();
        if (_store is not null)
            await _store.DisposeAsync();
    }

    private async Task<(string? Agent, string? Problem)> ExchangeAsync(string xml)
    {
        await using var db = _store!.Open();
        return await SamlBearerGrant.ResolveAgentAsync(Base64Url.EncodeToString(Encoding.UTF8.GetBytes(xml)), db, _options, DateTimeOffset.UtcNow, default);
    }

    [Fact]
    public async Task A_valid_assertion_is_bound_to_its_agent_once_and_a_replay_is_refused()
    {
        var assertion = _idp.Sign(TestSamlIdp.Unsigned("_g1", "deploy-bot@acme.example", DateTimeOffset.UtcNow));
        Assert.Equal(("saml-deployer", (string?)null), await ExchangeAsync(assertion));
        Assert.Equal("the assertion was already used (replay)", (await ExchangeAsync(assertion)).Problem);
    }

    [Fact]
    public async Task An_assertion_matching_no_binding_or_two_is_refused()
    {
        Assert.Contains("matches no binding", (await ExchangeAsync(_idp.Sign(TestSamlIdp.Unsigned("_g2", "someone@acme.example", DateTimeOffset.UtcNow)))).Problem, StringComparison.Ordinal);
        Assert.Contains("matches 2 bindings (by-group, also-group)",
            (await ExchangeAsync(_idp.Sign(TestSamlIdp.Unsigned("_g3", "someone@acme.example", DateTimeOffset.UtcNow, group: "auditors")))).Problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Garbage_is_refused_with_a_reason() =>
        Assert.Equal("the assertion is not base64url", (await SamlBearerGrant.ResolveAgentAsync("%%%", _store!.Open(), _options, DateTimeOffset.UtcNow, default)).Problem);
}
