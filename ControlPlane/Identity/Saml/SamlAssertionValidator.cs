using System.Globalization;
using System.Security.Cryptography.X509Certificates;
using System.Security.Cryptography.Xml;
using System.Xml;

namespace Airlock.ControlPlane.Identity.Saml;

/// <summary>A trusted SAML identity provider: its entity id and the one certificate that signs its assertions.</summary>
public sealed record SamlIdentityProvider(string Name, string EntityId, X509Certificate2 Certificate, IReadOnlyList<string> Audiences);

/// <summary>What a verified assertion says: read only from the signed element.</summary>
public sealed record SamlAssertion(
    SamlIdentityProvider Provider,
    string Id,
    string NameId,
    IReadOnlyDictionary<string, IReadOnlyList<string>> Attributes,
    DateTimeOffset NotOnOrAfter);

public sealed record SamlCheck(SamlAssertion? Assertion, string? Reason)
{
    public static SamlCheck Reject(string reason) => new(null, reason);
}

/// <summary>
/// Strict validation of a SAML 2.0 bearer assertion (RFC 7522). Steps, each able to reject:
/// <list type="number">
/// <item>parse with DTDs and external entities off, size-limited; the root is a <c>saml:Assertion</c>; no XML comments anywhere
/// (canonicalization drops them from what is signed, so a comment inside a NameID could change its meaning);</item>
/// <item>the issuer is a trusted provider;</item>
/// <item>exactly one <c>ds:Signature</c>, a direct child of the root, whose one reference points at the root's own ID,
/// which no other element carries (signature wrapping); SHA-256 or stronger; verified with the provider's configured
/// certificate, never with keys the document brings;</item>
/// <item>conditions: <c>NotBefore</c>/<c>NotOnOrAfter</c> (60 s skew) and an audience of ours;</item>
/// <item>a bearer subject confirmation whose recipient is our token endpoint and which has not expired.</item>
/// </list>
/// One-time use is the caller's job (it needs storage): <see cref="SamlAssertion.Id"/> names the assertion.
/// </summary>
public static class SamlAssertionValidator
{
    public const string AssertionNs = "urn:oasis:names:tc:SAML:2.0:assertion";
    public const string DsigNs = "http://www.w3.org/2000/09/xmldsig#";
    public const int MaxAssertionBytes = 64 * 1024;
    public static readonly TimeSpan MaxSkew = TimeSpan.FromSeconds(60);

    private static readonly HashSet<string> _signatureMethods = new(StringComparer.Ordinal)
    {
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
    };

    private static readonly HashSet<string> _digestMethods = new(StringComparer.Ordinal)
    {
        "http://www.w3.org/2001/04/xmlenc#sha256",
        "http://www.w3.org/2001/04/xmldsig-more#sha384",
        "http://www.w3.org/2001/04/xmlenc#sha512",
    };

    private static readonly HashSet<string> _transforms = new(StringComparer.Ordinal)
    {
        SignedXml.XmlDsigEnvelopedSignatureTransformUrl,
        SignedXml.XmlDsigExcC14NTransformUrl,
    };

    public static SamlCheck Validate(string xml, IReadOnlyList<SamlIdentityProvider> providers, string recipient, DateTimeOffset now)
    {
        if (xml.Length > MaxAssertionBytes)
            return SamlCheck.Reject($"assertion is larger than {MaxAssertionBytes} bytes");

        var doc = new XmlDocument { PreserveWhitespace = true, XmlResolver = null };
        try
        {
            using var reader = XmlReader.Create(new StringReader(xml), new XmlReaderSettings
            {
                DtdProcessing = DtdProcessing.Prohibit,
                XmlResolver = null,
                MaxCharactersInDocument = MaxAssertionBytes,
            });
            doc.Load(reader);
        }
        catch (XmlException e)
        {
            return SamlCheck.Reject($"assertion is not well-formed XML: {e.Message}");
        }

        var root = doc.DocumentElement;
        if (root is null || root.LocalName != "Assertion" || root.NamespaceURI != AssertionNs)
            return SamlCheck.Reject("the document is not a SAML 2.0 Assertion");
        if (doc.SelectNodes("//comment()") is { Count: > 0 })
            return SamlCheck.Reject("assertion contains XML comments, which are refused (comment injection)");

        var ns = new XmlNamespaceManager(doc.NameTable);
        ns.AddNamespace("saml", AssertionNs);
        ns.AddNamespace("ds", DsigNs);

        var issuer = Text(root.SelectSingleNode("saml:Issuer", ns));
        var provider = providers.FirstOrDefault(p => string.Equals(p.EntityId, issuer, StringComparison.Ordinal));
        if (provider is null)
            return SamlCheck.Reject($"SAML issuer '{issuer}' is not trusted");

        var id = root.GetAttribute("ID");
        if (string.IsNullOrEmpty(id))
            return SamlCheck.Reject("assertion has no ID");
        if (doc.SelectNodes($"//*[@ID='{EscapeXPath(id)}' or @Id='{EscapeXPath(id)}' or @id='{EscapeXPath(id)}']")!.Count != 1)
            return SamlCheck.Reject("assertion ID is not unique in the document (signature wrapping)");

        if (SignatureProblem(doc, root, ns, id, provider) is { } problem)
            return SamlCheck.Reject(problem);

        // From here on, everything is read from the verified root element only.
        var conditions = root.SelectSingleNode("saml:Conditions", ns) as XmlElement;
        if (conditions is null)
            return SamlCheck.Reject("assertion has no Conditions");
        if (Time(conditions, "NotBefore") is { } notBefore && notBefore - MaxSkew > now)
            return SamlCheck.Reject($"assertion is not valid before {notBefore:O}");
        if (Time(conditions, "NotOnOrAfter") is not { } notOnOrAfter)
            return SamlCheck.Reject("assertion Conditions have no NotOnOrAfter");
        if (notOnOrAfter + MaxSkew <= now)
            return SamlCheck.Reject($"assertion expired at {notOnOrAfter:O}");
        var audiences = conditions.SelectNodes("saml:AudienceRestriction/saml:Audience", ns)!.Cast<XmlNode>().Select(Text).ToList();
        if (!audiences.Any(a => provider.Audiences.Contains(a!, StringComparer.Ordinal)))
            return SamlCheck.Reject($"assertion audience is not {string.Join(" or ", provider.Audiences.Select(a => $"'{a}'"))}");

        var subject = root.SelectSingleNode("saml:Subject", ns);
        var nameId = Text(subject?.SelectSingleNode("saml:NameID", ns));
        if (string.IsNullOrEmpty(nameId))
            return SamlCheck.Reject("assertion has no Subject NameID");
        var confirmations = subject!.SelectNodes("saml:SubjectConfirmation[@Method='urn:oasis:names:tc:SAML:2.0:cm:bearer']/saml:SubjectConfirmationData", ns)!
            .Cast<XmlElement>()
            .ToList();
        var confirmed = confirmations.FirstOrDefault(c =>
            string.Equals(c.GetAttribute("Recipient"), recipient, StringComparison.Ordinal)
            && Time(c, "NotOnOrAfter") is { } until && until + MaxSkew > now);
        if (confirmed is null)
            return SamlCheck.Reject(confirmations.Count == 0
                ? "assertion has no bearer SubjectConfirmation"
                : $"no bearer SubjectConfirmation names recipient '{recipient}' and is still valid");

        var attributes = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        foreach (XmlElement attribute in root.SelectNodes("saml:AttributeStatement/saml:Attribute", ns)!)
        {
            var values = attribute.SelectNodes("saml:AttributeValue", ns)!.Cast<XmlNode>().Select(v => Text(v) ?? "").ToList();
            attributes[attribute.GetAttribute("Name")] = values;
        }
        return new SamlCheck(new SamlAssertion(provider, id, nameId, attributes, notOnOrAfter), null);
    }

    private static string? SignatureProblem(XmlDocument doc, XmlElement root, XmlNamespaceManager ns, string id, SamlIdentityProvider provider)
    {
        var signatures = doc.SelectNodes("//ds:Signature", ns)!;
        if (signatures.Count != 1)
            return signatures.Count == 0 ? "assertion is not signed" : "assertion carries more than one signature";
        if (signatures[0]!.ParentNode != root)
            return "the signature is not on the assertion itself (signature wrapping)";

        var signed = new RootOnlySignedXml(doc, root);
        signed.LoadXml((XmlElement)signatures[0]!);
        if (!_signatureMethods.Contains(signed.SignedInfo!.SignatureMethod ?? ""))
            return $"signature method '{signed.SignedInfo.SignatureMethod}' is not allowed (SHA-256 or stronger)";
        if (signed.SignedInfo.References.Count != 1 || signed.SignedInfo.References[0] is not Reference reference)
            return "the signature must have exactly one reference";
        if (reference.Uri != "#" + id)
            return "the signature does not reference the assertion (signature wrapping)";
        if (!_digestMethods.Contains(reference.DigestMethod ?? ""))
            return $"digest method '{reference.DigestMethod}' is not allowed (SHA-256 or stronger)";
        foreach (Transform transform in reference.TransformChain)
            if (!_transforms.Contains(transform.Algorithm ?? ""))
                return $"transform '{transform.Algorithm}' is not allowed";
        try
        {
            // The configured certificate only: KeyInfo in the document is ignored.
            return signed.CheckSignature(provider.Certificate, verifySignatureOnly: true) ? null : "the signature does not verify with the provider's certificate";
        }
        catch (System.Security.Cryptography.CryptographicException e)
        {
            return $"the signature cannot be verified: {e.Message}";
        }
    }

    /// <summary>Resolves a reference only to the document's root element: no other element can be substituted.</summary>
    private sealed class RootOnlySignedXml(XmlDocument document, XmlElement root) : SignedXml(document)
    {
        public override XmlElement? GetIdElement(XmlDocument? document, string idValue) =>
            string.Equals(root.GetAttribute("ID"), idValue, StringComparison.Ordinal) ? root : null;
    }

    private static string? Text(XmlNode? node) => node?.InnerText.Trim();

    private static DateTimeOffset? Time(XmlElement element, string attribute) =>
        DateTimeOffset.TryParse(element.GetAttribute(attribute), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t) ? t : null;

    private static string EscapeXPath(string value) => value.Replace("'", "", StringComparison.Ordinal);
}
