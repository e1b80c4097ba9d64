using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Security.Cryptography.Xml;
using System.Xml;

namespace Airlock.Testing;

/// <summary>A SAML identity provider for tests: its own certificate, assertions signed like real IdPs sign them.</summary>
public sealed class TestSamlIdp : IDisposable
{
    public const string EntityId = "https://idp.acme.example/saml";
    public const string Recipient = "http://airlock.test/connect/token";
    public const string Audience = "http://airlock.test/";

    public TestSamlIdp()
    {
        Key = RSA.Create(2048);
        var request = new CertificateRequest("CN=Test IdP", Key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        Certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));
    }

    public RSA Key { get; }
    public X509Certificate2 Certificate { get; }

    public Airlock.ControlPlane.Identity.Saml.SamlIdentityProvider Provider => new("acme-idp", EntityId, Certificate, [Audience]);

    public static string Unsigned(string id, string nameId, DateTimeOffset now, string audience = Audience, string recipient = Recipient, TimeSpan? life = null, string group = "deployers") =>
        $"""
        <saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{now.UtcDateTime:O}"><saml:Issuer>{EntityId}</saml:Issuer><saml:Subject><saml:NameID>{nameId}</saml:NameID><saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData Recipient="{recipient}" NotOnOrAfter="{now.Add(life ?? TimeSpan.FromMinutes(5)).UtcDateTime:O}"/></saml:SubjectConfirmation></saml:Subject><saml:Conditions NotBefore="{now.AddMinutes(-1).UtcDateTime:O}" NotOnOrAfter="{now.Add(life ?? TimeSpan.FromMinutes(5)).UtcDateTime:O}"><saml:AudienceRestriction><saml:Audience>{audience}</saml:Audience></saml:AudienceRestriction></saml:Conditions><saml:AttributeStatement><saml:Attribute Name="group"><saml:AttributeValue>{group}</saml:AttributeValue><saml:AttributeValue>everyone</saml:AttributeValue></saml:Attribute></saml:AttributeStatement></saml:Assertion>
        """;

    /// <summary>Signs the root assertion (enveloped, exc-c14n, RSA-SHA256), the signature placed after Issuer.</summary>
    public string Sign(string xml, RSA? key = null, string signatureMethod = SignedXml.XmlDsigRSASHA256Url, string digestMethod = SignedXml.XmlDsigSHA256Url)
    {
        var doc = new XmlDocument { PreserveWhitespace = true };
        doc.LoadXml(xml);
        var signed = new SignedXml(doc) { SigningKey = key ?? Key };
        signed.SignedInfo!.CanonicalizationMethod = SignedXml.XmlDsigExcC14NTransformUrl;
        signed.SignedInfo.SignatureMethod = signatureMethod;
        var reference = new Reference("#" + doc.DocumentElement!.GetAttribute("ID")) { DigestMethod = digestMethod };
        reference.AddTransform(new XmlDsigEnvelopedSignatureTransform());
        reference.AddTransform(new XmlDsigExcC14NTransform());
        signed.AddReference(reference);
        signed.ComputeSignature();
        var issuer = doc.DocumentElement.FirstChild!;
        doc.DocumentElement.InsertAfter(doc.ImportNode(signed.GetXml(), true), issuer);
        return doc.OuterXml;
    }

    public void Dispose()
    {
        Certificate.Dispose();
        Key.Dispose();
    }
}
