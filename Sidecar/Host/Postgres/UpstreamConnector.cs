using System.Buffers.Binary;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Airlock.Sidecar.ControlPlane;
using Airlock.Sidecar.Policy;
using Airlock.Sidecar.Protocols.Postgres;
using Microsoft.Extensions.Options;

namespace Airlock.Sidecar.Postgres;

/// <summary>A refusal to show the agent: the FATAL it gets, and the reason for the log and the recording.</summary>
public sealed class GatewayRefusal(PgError error) : Exception(error.Message)
{
    public PgError Error { get; } = error;
}

/// <summary>An authenticated upstream connection, ready for queries, with what the server said during startup.</summary>
public sealed record UpstreamSession(Stream Stream, bool Tls, int ProcessId, int Secret, IReadOnlyList<byte[]> StartupMessages, byte TransactionStatus);

/// <summary>
/// Opens the sidecar's own connection to a target: TCP (NoDelay), TLS as the target's mode asks
/// (<c>disable</c>, <c>prefer</c>, <c>require</c>, <c>verify-full</c>), the startup packet with the
/// target's user and database, and whichever password method the server asks for — SCRAM-SHA-256,
/// MD5 or cleartext — with the target's credential, resolved only when the server asks for it.
/// Every failure becomes a FATAL for the agent naming the cause (08001 cannot reach / log in,
/// 08006 the connection broke).
/// </summary>
public sealed class UpstreamConnector(SidecarIdentity identity, IOptions<Hosting.SidecarOptions> options)
{
    private const int MaxStartupMessageBytes = 1024 * 1024;

    private PostgresGatewayOptions Options => options.Value.Postgres;

    public async Task<UpstreamSession> ConnectAsync(TargetPolicy target, IReadOnlyList<KeyValuePair<string, string>> settings, CancellationToken ct)
    {
        var upstream = target.Upstream;
        var stream = await OpenAsync(target, ct);
        try
        {
            var tls = false;
            if (upstream.TlsMode != "disable")
            {
                await stream.WriteAsync(PgWire.SslRequest(), ct);
                var answer = new byte[1];
                await ReadExactlyAsync(stream, answer, target, ct);
                if (answer[0] == (byte)'S')
                {
                    stream = await StartTlsAsync(stream, target, ct);
                    tls = true;
                }
                else if (answer[0] != (byte)'N')
                    throw Refuse(SqlStates.UnableToConnect, $"target \"{target.Name}\" answered the TLS request with an unexpected byte 0x{answer[0]:x2}");
                else if (upstream.TlsMode is "require" or "verify-full")
                    throw Refuse(SqlStates.UnableToConnect, $"target \"{target.Name}\" does not accept TLS, but its tls mode is {upstream.TlsMode}");
            }

            var startup = new List<KeyValuePair<string, string>> { new("user", upstream.Username), new("database", upstream.Database) };
            startup.AddRange(settings);
            await stream.WriteAsync(PgWire.StartupMessage(startup), ct);
            return await AuthenticateAsync(stream, tls, target, ct);
        }
        catch
        {
            await stream.DisposeAsync();
            throw;
        }
    }

    /// <summary>Sends a cancel request for (process id, secret) on a fresh connection, as PostgreSQL expects.</summary>
    public async Task CancelAsync(TargetPolicy target, int processId, int secret, CancellationToken ct)
    {
        var stream = await OpenAsync(target, ct);
        try
        {
            if (target.Upstream.TlsMode != "disable")
            {
                await stream.WriteAsync(PgWire.SslRequest(), ct);
                var answer = new byte[1];
                await ReadExactlyAsync(stream, answer, target, ct);
                if (answer[0] == (byte)'S')
                    stream = await StartTlsAsync(stream, target, ct);
            }
            await stream.WriteAsync(PgWire.CancelRequest(processId, secret), ct);
            await stream.FlushAsync(ct);
        }
        finally
        {
            await stream.DisposeAsync();
        }
    }

    private async Task<Stream> OpenAsync(TargetPolicy target, CancellationToken ct)
    {
        var upstream = target.Upstream;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(Options.UpstreamConnectTimeoutSeconds));
        try
        {
            return await Net.SocketStreams.ConnectAsync(upstream.Host, upstream.Port, Options.NativeSockets, timeout.Token);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            var cause = e is SocketException s ? s.Message : $"no answer within {Options.UpstreamConnectTimeoutSeconds} s";
            throw Refuse(SqlStates.UnableToConnect, $"cannot reach target \"{target.Name}\" at {upstream.Host}:{upstream.Port}: {cause}");
        }
    }

    private async Task<Stream> StartTlsAsync(Stream stream, TargetPolicy target, CancellationToken ct)
    {
        var verify = target.Upstream.TlsMode == "verify-full";
        var ssl = new SslStream(stream, leaveInnerStreamOpen: false);
        var authentication = new SslClientAuthenticationOptions
        {
            TargetHost = target.Upstream.Host,
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            // prefer / require encrypt without checking who answers (libpq's meaning); verify-full checks chain and name.
            RemoteCertificateValidationCallback = verify ? ValidateUpstreamCertificate : (_, _, _, _) => true,
        };
        try
        {
            await ssl.AuthenticateAsClientAsync(authentication, ct);
            return ssl;
        }
        catch (Exception e) when (e is AuthenticationException or IOException)
        {
            await ssl.DisposeAsync();
            throw Refuse(SqlStates.UnableToConnect, $"TLS with target \"{target.Name}\" failed ({target.Upstream.TlsMode}): {e.Message}");
        }
    }

    private bool ValidateUpstreamCertificate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (errors == SslPolicyErrors.None)
            return true;
        if (errors != SslPolicyErrors.RemoteCertificateChainErrors || certificate is null || Options.UpstreamCaPath is null)
            return false;
        // Name and presence are fine; the chain may end at the configured private CA.
        using var custom = new X509Chain();
        custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        var roots = new X509Certificate2Collection();
        roots.ImportFromPemFile(Options.UpstreamCaPath);
        custom.ChainPolicy.CustomTrustStore.AddRange(roots);
        return custom.Build(certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()));
    }

    /// <summary>The methods the target's policy allows (<see cref="UpstreamPolicy.Auth"/>; by default SCRAM, or none without a credential).</summary>
    public static IReadOnlySet<UpstreamAuthMethod> AllowedMethods(UpstreamPolicy upstream)
    {
        if (upstream.Auth is not { Count: > 0 } names)
            return new HashSet<UpstreamAuthMethod> { upstream.SealedCredential is null && upstream.CredentialReference is null ? UpstreamAuthMethod.None : UpstreamAuthMethod.ScramSha256 };
        var methods = new HashSet<UpstreamAuthMethod>();
        foreach (var name in names)
            if (UpstreamAuthentication.TryParse(name, out var method))
                methods.Add(method);
        return methods;
    }

    private async Task<UpstreamSession> AuthenticateAsync(Stream stream, bool tls, TargetPolicy target, CancellationToken ct)
    {
        var forwarded = new List<byte[]>();
        var exchange = new UpstreamAuthentication(AllowedMethods(target.Upstream), tls, target.Name);
        ScramSha256Client? scram = null;
        int processId = 0, secret = 0;
        var authenticated = false;
        while (true)
        {
            var (type, body) = await ReadMessageAsync(stream, target, ct);
            switch (type)
            {
                case (byte)'R':
                {
                    var code = body.Length >= 4 ? BinaryPrimitives.ReadInt32BigEndian(body) : -1;
                    if (authenticated)
                        throw Refuse(SqlStates.ProtocolViolation, $"target \"{target.Name}\" sent an authentication request (code {code}) after the login succeeded");
                    switch (code)
                    {
                        case 0:
                            Check(exchange.OnOk());
                            authenticated = true;
                            break;
                        case 3:
                            Check(exchange.OnRequest(UpstreamAuthMethod.Password));
                            await stream.WriteAsync(PgWire.PasswordMessage(ResolveCredential(target)), ct);
                            break;
                        case 5 when body.Length == 8:
                            Check(exchange.OnRequest(UpstreamAuthMethod.Md5));
                            await stream.WriteAsync(PgWire.PasswordMessage(PgAuth.Md5Password(target.Upstream.Username, ResolveCredential(target), body.AsSpan(4))), ct);
                            break;
                        case 10:
                            var mechanisms = Encoding.UTF8.GetString(body, 4, body.Length - 4).Split('\0', StringSplitOptions.RemoveEmptyEntries);
                            if (!mechanisms.Contains(ScramSha256Client.Mechanism))
                                throw Refuse(SqlStates.UnableToConnect, $"target \"{target.Name}\" offers SASL mechanisms the sidecar does not speak: {string.Join(", ", mechanisms)}");
                            Check(exchange.OnRequest(UpstreamAuthMethod.ScramSha256));
                            scram = new ScramSha256Client(ResolveCredential(target));
                            await stream.WriteAsync(PgWire.SaslInitialResponse(ScramSha256Client.Mechanism, scram.ClientFirst()), ct);
                            break;
                        case 11:
                            Check(exchange.OnScramContinue());
                            byte[] final;
                            try
                            {
                                final = scram!.ClientFinal(body.AsSpan(4));
                            }
                            catch (PgProtocolException e)
                            {
                                throw Refuse(SqlStates.UnableToConnect, $"target \"{target.Name}\": {e.Message}");
                            }
                            await stream.WriteAsync(PgWire.SaslResponse(final), ct);
                            break;
                        case 12:
                            Check(exchange.OnScramFinal());
                            if (!scram!.VerifyServerFinal(body.AsSpan(4), out var problem))
                                throw Refuse(SqlStates.UnableToConnect, $"target \"{target.Name}\" failed SCRAM server verification: {problem}");
                            exchange.ScramVerified();
                            break;
                        default:
                            throw Refuse(SqlStates.UnableToConnect, $"target \"{target.Name}\" asks for an authentication method the sidecar does not support (code {code})");
                    }
                    break;
                }
                case (byte)'E':
                {
                    var error = StatementLedger.ReadError(body);
                    throw Refuse(SqlStates.UnableToConnect, $"target \"{target.Name}\" refused the sidecar's login as \"{target.Upstream.Username}\": {error.Message} (SQLSTATE {error.SqlState})");
                }
                case (byte)'K' or (byte)'S' or (byte)'Z' when !authenticated:
                    throw Refuse(SqlStates.ProtocolViolation, $"target \"{target.Name}\" sent '{(char)type}' before the login succeeded");
                case (byte)'K' when body.Length == 8:
                    processId = BinaryPrimitives.ReadInt32BigEndian(body);
                    secret = BinaryPrimitives.ReadInt32BigEndian(body.AsSpan(4));
                    break;
                case (byte)'S' or (byte)'N' or (byte)'v':
                    forwarded.Add(PgWire.Message(type, body));
                    break;
                case (byte)'Z' when body.Length == 1:
                    return new UpstreamSession(stream, tls, processId, secret, forwarded, body[0]);
                default:
                    throw Refuse(SqlStates.ProtocolViolation, $"target \"{target.Name}\" sent an unexpected message '{(char)type}' during startup");
            }
        }
    }

    /// <summary>The target's password: sealed to this sidecar by the control plane, or <c>env:NAME</c> / <c>file:/path</c> here.</summary>
    private string ResolveCredential(TargetPolicy target)
    {
        var upstream = target.Upstream;
        if (upstream.SealedCredential is { } sealedValue)
        {
            using var key = identity.OpenSealingKey();
            return CredentialSeal.Open(sealedValue, identity.SidecarId, key)
                ?? throw Refuse(SqlStates.UnableToConnect, $"the stored credential of target \"{target.Name}\" cannot be opened by this sidecar (sealed for another key?)");
        }
        if (upstream.CredentialReference is { } reference)
        {
            var (value, problem) = Credentials.CredentialReferences.Resolve(reference, target.Name, options.Value.CredentialReferences);
            return value ?? throw Refuse(SqlStates.UnableToConnect, problem!);
        }
        throw Refuse(SqlStates.UnableToConnect, $"target \"{target.Name}\" asks for a password and no credential is configured for it");
    }

    private static async Task<(byte Type, byte[] Body)> ReadMessageAsync(Stream stream, TargetPolicy target, CancellationToken ct)
    {
        var header = new byte[5];
        await ReadExactlyAsync(stream, header, target, ct);
        var length = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(1));
        if (length < 4 || length > MaxStartupMessageBytes)
            throw Refuse(SqlStates.ProtocolViolation, $"target \"{target.Name}\" sent a message with invalid length {length} during startup");
        var body = new byte[length - 4];
        await ReadExactlyAsync(stream, body, target, ct);
        return (header[0], body);
    }

    private static async Task ReadExactlyAsync(Stream stream, byte[] buffer, TargetPolicy target, CancellationToken ct)
    {
        try
        {
            await stream.ReadExactlyAsync(buffer, ct);
        }
        catch (Exception e) when (e is EndOfStreamException or IOException)
        {
            throw Refuse(SqlStates.ConnectionFailure, $"target \"{target.Name}\" closed the connection during startup");
        }
    }

    private static GatewayRefusal Refuse(string state, string message) => new(PgError.Fatal(state, message));

    private static void Check(string? refusal)
    {
        if (refusal is not null)
            throw Refuse(SqlStates.UnableToConnect, refusal);
    }
}
