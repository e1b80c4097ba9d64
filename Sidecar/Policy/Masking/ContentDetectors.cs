using System.Numerics;
using System.Text.RegularExpressions;
using PhoneNumbers;

namespace Airlock.Sidecar.Policy.Masking;

/// <summary>What a content detector looks for.</summary>
public enum ContentDetector
{
    Email,
    /// <summary>13–19 digits (spaces or dashes between) that pass the Luhn check.</summary>
    Card,
    /// <summary>Phone numbers as libphonenumber finds them (international form, or national numbers of the default region).</summary>
    Phone,
    /// <summary>IBANs that pass the mod-97 check.</summary>
    Iban,
    /// <summary>National identifiers with a fixed shape: US social security numbers (<c>123-45-6789</c>, valid areas only) and UK National Insurance numbers.</summary>
    NationalId,
    /// <summary>JSON Web Tokens (<c>eyJ…</c>.<c>eyJ…</c>.signature).</summary>
    Jwt,
    /// <summary>Cloud and SaaS API keys with a recognisable prefix: AWS access keys, Google API keys, GitHub, GitLab, Slack and Stripe tokens.</summary>
    ApiKey,
    /// <summary>PEM private keys.</summary>
    PrivateKey,
    /// <summary>A detector name this sidecar does not know (from a newer control plane): the whole value is masked (fail closed).</summary>
    Unknown,
}

/// <summary>One piece of text a detector found.</summary>
public readonly record struct Detection(int Start, int Length, ContentDetector Detector);

/// <summary>
/// Content detectors: a backstop for values whose column PostgreSQL does not attribute to a table (an
/// expression the rules let through, a function's result). Opt-in per rule; each finds pieces of text,
/// never guesses at a whole value. Pure and safe on hostile input (every pattern has a timeout and is
/// linear; the text scanned per value is bounded by the caller).
/// </summary>
public static class ContentDetectors
{
    public static IReadOnlyList<string> Names { get; } = ["email", "card", "phone", "iban", "national_id", "jwt", "api_key", "private_key"];

    public static ContentDetector Parse(string name) => name switch
    {
        "email" => ContentDetector.Email,
        "card" => ContentDetector.Card,
        "phone" => ContentDetector.Phone,
        "iban" => ContentDetector.Iban,
        "national_id" => ContentDetector.NationalId,
        "jwt" => ContentDetector.Jwt,
        "api_key" => ContentDetector.ApiKey,
        "private_key" => ContentDetector.PrivateKey,
        _ => ContentDetector.Unknown,
    };

    public static string NameOf(ContentDetector d) => d switch
    {
        ContentDetector.NationalId => "national_id",
        ContentDetector.ApiKey => "api_key",
        ContentDetector.PrivateKey => "private_key",
        _ => d.ToString().ToLowerInvariant(),
    };

    private static readonly TimeSpan Timeout = TimeSpan.FromMilliseconds(200);
    private const RegexOptions Options = RegexOptions.CultureInvariant | RegexOptions.NonBacktracking;

    private static readonly Regex Email = new(@"[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(\.[A-Za-z0-9\-]{1,63})*\.[A-Za-z]{2,24}", Options, Timeout);
    private static readonly Regex CardLike = new(@"\d([ \-]?\d){12,18}", Options, Timeout);
    private static readonly Regex IbanLike = new(@"[A-Z]{2}\d{2}( ?[A-Z0-9]){11,30}", Options, Timeout);
    private static readonly Regex Ssn = new(@"\b(00[1-9]|0[1-9]\d|[1-578]\d\d|6[0-57-9]\d|66[0-57-9])-(0[1-9]|[1-9]\d)-(000[1-9]|00[1-9]\d|0[1-9]\d\d|[1-9]\d{3})\b", Options, Timeout);
    private static readonly Regex Nino = new(@"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b", Options, Timeout);
    private static readonly Regex Jwt = new(@"eyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{10,}", Options, Timeout);
    private static readonly Regex ApiKey = new(
        @"(AKIA|ASIA)[0-9A-Z]{16}|AIza[0-9A-Za-z_\-]{35}|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}|glpat-[A-Za-z0-9_\-]{20,}|xox[abprs]-[A-Za-z0-9\-]{10,}|(sk|rk)_live_[0-9A-Za-z]{20,}",
        Options, Timeout);
    private static readonly Regex PrivateKey = new(@"-----BEGIN ([A-Z]+ )*PRIVATE KEY-----[A-Za-z0-9+/=\s:,\-]*(-----END ([A-Z]+ )*PRIVATE KEY-----)?", Options, Timeout);

    private static readonly PhoneNumberUtil Phones = PhoneNumberUtil.GetInstance();

    /// <summary>
    /// Every detection of <paramref name="detectors"/> in <paramref name="text"/>, in order, without
    /// overlaps (the earlier and then the longer wins). An unknown detector, or a scan that timed out,
    /// detects the whole text (fail closed).
    /// </summary>
    public static List<Detection> Find(string text, IReadOnlyList<ContentDetector> detectors, string phoneRegion = "US")
    {
        var found = new List<Detection>();
        foreach (var detector in detectors)
        {
            try
            {
                switch (detector)
                {
                    case ContentDetector.Email:
                        Add(found, Email, text, detector);
                        break;
                    case ContentDetector.Card:
                        foreach (Match m in CardLike.Matches(text))
                            if (Luhn(m.Value))
                                found.Add(new Detection(m.Index, m.Length, detector));
                        break;
                    case ContentDetector.Iban:
                        foreach (Match m in IbanLike.Matches(text))
                            if (Mod97(m.Value))
                                found.Add(new Detection(m.Index, m.Length, detector));
                        break;
                    case ContentDetector.NationalId:
                        Add(found, Ssn, text, detector);
                        Add(found, Nino, text, detector);
                        break;
                    case ContentDetector.Jwt:
                        Add(found, Jwt, text, detector);
                        break;
                    case ContentDetector.ApiKey:
                        Add(found, ApiKey, text, detector);
                        break;
                    case ContentDetector.PrivateKey:
                        Add(found, PrivateKey, text, detector);
                        break;
                    case ContentDetector.Phone:
                        if (text.Count(char.IsAsciiDigit) >= 7)
                            foreach (var m in Phones.FindNumbers(text, phoneRegion, PhoneNumberUtil.Leniency.VALID, 10_000))
                                found.Add(new Detection(m.Start, m.Length, detector));
                        break;
                    default:
                        return [new Detection(0, text.Length, ContentDetector.Unknown)];
                }
            }
            catch (RegexMatchTimeoutException)
            {
                return [new Detection(0, text.Length, detector)];
            }
        }
        if (found.Count <= 1)
            return found;
        found.Sort((a, b) => a.Start != b.Start ? a.Start.CompareTo(b.Start) : b.Length.CompareTo(a.Length));
        var merged = new List<Detection>(found.Count);
        var end = -1;
        foreach (var d in found)
        {
            if (d.Start < end)
                continue;
            merged.Add(d);
            end = d.Start + d.Length;
        }
        return merged;
    }

    private static void Add(List<Detection> found, Regex regex, string text, ContentDetector detector)
    {
        foreach (Match m in regex.Matches(text))
            found.Add(new Detection(m.Index, m.Length, detector));
    }

    public static bool Luhn(string candidate)
    {
        var sum = 0;
        var digits = 0;
        for (var i = candidate.Length - 1; i >= 0; i--)
        {
            var c = candidate[i];
            if (!char.IsAsciiDigit(c))
                continue;
            var d = c - '0';
            if (digits++ % 2 == 1)
            {
                d *= 2;
                if (d > 9)
                    d -= 9;
            }
            sum += d;
        }
        return digits is >= 13 and <= 19 && sum % 10 == 0;
    }

    public static bool Mod97(string candidate)
    {
        var compact = candidate.Replace(" ", "");
        if (compact.Length is < 15 or > 34)
            return false;
        var rearranged = compact[4..] + compact[..4];
        var number = new System.Text.StringBuilder(rearranged.Length * 2);
        foreach (var c in rearranged)
            number.Append(char.IsAsciiDigit(c) ? c.ToString() : (c - 'A' + 10).ToString(System.Globalization.CultureInfo.InvariantCulture));
        return BigInteger.Parse(number.ToString(), System.Globalization.CultureInfo.InvariantCulture) % 97 == 1;
    }
}
