namespace Airlock.Sidecar.Protocols.Postgres;

/// <summary>
/// How the sidecar may prove itself to a target, named as libpq's <c>require_auth</c> names them.
/// </summary>
public enum UpstreamAuthMethod
{
    /// <summary>The server asks for nothing (<c>trust</c>): anyone answering on the address is believed.</summary>
    None,
    /// <summary>Cleartext password: whoever reads the connection reads the password.</summary>
    Password,
    /// <summary>MD5 challenge: a captured exchange can be replayed against the same salt, and cracked offline.</summary>
    Md5,
    /// <summary>SCRAM-SHA-256: the password never crosses the wire, and the server proves it knows it.</summary>
    ScramSha256,
}

/// <summary>
/// Follows the authentication exchange of the sidecar's own login to a target and decides, step by
/// step, whether to go on. Pure: the connector reads each request, asks here, and acts.
/// <list type="bullet">
/// <item>A method is used only when the target's policy allows it (by default only SCRAM-SHA-256,
/// or only <c>none</c> when no credential is configured): a machine between sidecar and database
/// cannot downgrade the login to a method that gives the password away.</item>
/// <item>A cleartext password is never sent without TLS, whatever the policy says.</item>
/// <item>Once SCRAM has started, <c>AuthenticationOk</c> counts only after the server's final
/// message proved it knows the password: a server that skips that step is an impersonator.</item>
/// <item>A second method after the first (a request in the middle of another) is refused.</item>
/// </list>
/// </summary>
public sealed class UpstreamAuthentication(IReadOnlySet<UpstreamAuthMethod> allowed, bool tls, string target)
{
    private enum Step { Nothing, PasswordSent, ScramStarted, ScramAnswered, ScramVerified }

    private Step _step = Step.Nothing;

    /// <summary>The policy's names for the methods (libpq's <c>require_auth</c> names).</summary>
    public static string Name(UpstreamAuthMethod method) => method switch
    {
        UpstreamAuthMethod.None => "none",
        UpstreamAuthMethod.Password => "password",
        UpstreamAuthMethod.Md5 => "md5",
        _ => "scram-sha-256",
    };

    public static bool TryParse(string name, out UpstreamAuthMethod method)
    {
        foreach (var candidate in Enum.GetValues<UpstreamAuthMethod>())
        {
            if (string.Equals(Name(candidate), name, StringComparison.OrdinalIgnoreCase))
            {
                method = candidate;
                return true;
            }
        }
        method = default;
        return false;
    }

    /// <summary>Null when the server's request for <paramref name="method"/> may be answered; else why the login stops.</summary>
    public string? OnRequest(UpstreamAuthMethod method)
    {
        if (_step != Step.Nothing)
            return $"target \"{target}\" asked for {Name(method)} authentication in the middle of another exchange";
        if (method == UpstreamAuthMethod.Password && !tls)
            return $"target \"{target}\" asks for a cleartext password on a connection without TLS; the sidecar never sends one that way (use tls: require or verify-full)";
        if (!allowed.Contains(method))
            return $"target \"{target}\" asks for {Name(method)} authentication, which its policy does not allow (upstream auth: {Describe(allowed)})";
        _step = method == UpstreamAuthMethod.ScramSha256 ? Step.ScramStarted : Step.PasswordSent;
        return null;
    }

    /// <summary>Null when a SASL continue (server-first) is expected now.</summary>
    public string? OnScramContinue()
    {
        if (_step != Step.ScramStarted)
            return $"target \"{target}\" sent a SASL continue message out of order";
        _step = Step.ScramAnswered;
        return null;
    }

    /// <summary>Null when a SASL final message is expected now; call <see cref="ScramVerified"/> once its signature checked out.</summary>
    public string? OnScramFinal() => _step == Step.ScramAnswered ? null : $"target \"{target}\" sent a SASL final message out of order";

    public void ScramVerified() => _step = Step.ScramVerified;

    /// <summary>Null when <c>AuthenticationOk</c> may be believed now.</summary>
    public string? OnOk() => _step switch
    {
        Step.ScramStarted or Step.ScramAnswered =>
            $"target \"{target}\" reported a successful login before proving it knows the password (SCRAM server signature missing): it may not be the database",
        Step.Nothing when !allowed.Contains(UpstreamAuthMethod.None) =>
            $"target \"{target}\" let the sidecar in without asking for a password, which its policy does not allow (upstream auth: {Describe(allowed)}); it may not be the database",
        _ => null,
    };

    private static string Describe(IReadOnlySet<UpstreamAuthMethod> methods) => string.Join(", ", methods.Order().Select(Name));
}
