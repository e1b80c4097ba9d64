using System.Security.Cryptography;
using System.Text;

namespace Airlock.Sidecar.Protocols.Postgres;

/// <summary>The client side of PostgreSQL's password methods, for the sidecar's upstream login.</summary>
public static class PgAuth
{
    /// <summary><c>"md5" ‖ hex(md5(hex(md5(password ‖ user)) ‖ salt))</c>.</summary>
    public static string Md5Password(string user, string password, ReadOnlySpan<byte> salt)
    {
        var inner = Convert.ToHexStringLower(MD5.HashData(Encoding.UTF8.GetBytes(password + user)));
        var outer = new byte[inner.Length + salt.Length];
        Encoding.ASCII.GetBytes(inner, outer);
        salt.CopyTo(outer.AsSpan(inner.Length));
        return "md5" + Convert.ToHexStringLower(MD5.HashData(outer));
    }
}

/// <summary>
/// SCRAM-SHA-256 client (RFC 5802, RFC 7677) without channel binding, as libpq does with
/// <c>channel_binding=disable</c>. The server's final message is verified, so a target that does
/// not know the password cannot pretend the login succeeded.
/// </summary>
public sealed class ScramSha256Client
{
    public const string Mechanism = "SCRAM-SHA-256";

    /// <summary>A hostile target could ask for billions of PBKDF2 rounds; PostgreSQL's default is 4096.</summary>
    public const int MaxIterations = 1_000_000;

    private readonly string _password;
    private readonly string _clientNonce;
    private readonly string _user;
    private string? _clientFirstBare;
    private byte[]? _expectedServerSignature;

    /// <param name="user">Sent in client-first; PostgreSQL ignores it (the startup user counts), so empty by default.</param>
    public ScramSha256Client(string password, string? clientNonce = null, string user = "")
    {
        _password = password;
        _user = user;
        _clientNonce = clientNonce ?? Convert.ToBase64String(RandomNumberGenerator.GetBytes(18));
    }

    /// <summary>client-first-message: GS2 header "n,," (no channel binding) and an empty user name (PostgreSQL uses the startup user).</summary>
    public byte[] ClientFirst()
    {
        _clientFirstBare = "n=" + _user + ",r=" + _clientNonce;
        return Encoding.UTF8.GetBytes("n,," + _clientFirstBare);
    }

    /// <summary>client-final-message for the server-first-message; throws <see cref="PgProtocolException"/> when it is malformed.</summary>
    public byte[] ClientFinal(ReadOnlySpan<byte> serverFirstBytes)
    {
        if (_clientFirstBare is null)
            throw new InvalidOperationException("ClientFirst must come first");
        var serverFirst = Encoding.UTF8.GetString(serverFirstBytes);
        var fields = ParseFields(serverFirst);
        if (!fields.TryGetValue('r', out var nonce) || !nonce.StartsWith(_clientNonce, StringComparison.Ordinal) || nonce.Length == _clientNonce.Length)
            throw new PgProtocolException("SCRAM: the server nonce does not extend ours");
        if (!fields.TryGetValue('s', out var saltText) || !TryBase64(saltText, out var salt))
            throw new PgProtocolException("SCRAM: missing or invalid salt");
        if (!fields.TryGetValue('i', out var iterationText) || !int.TryParse(iterationText, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var iterations)
            || iterations < 1 || iterations > MaxIterations)
            throw new PgProtocolException($"SCRAM: iteration count must be between 1 and {MaxIterations}");

        var saltedPassword = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(_password), salt, iterations, HashAlgorithmName.SHA256, 32);
        var clientKey = HMACSHA256.HashData(saltedPassword, "Client Key"u8);
        var storedKey = SHA256.HashData(clientKey);
        var withoutProof = "c=biws,r=" + nonce;
        var authMessage = Encoding.UTF8.GetBytes(_clientFirstBare + "," + serverFirst + "," + withoutProof);
        var clientSignature = HMACSHA256.HashData(storedKey, authMessage);
        var proof = new byte[clientKey.Length];
        for (var i = 0; i < proof.Length; i++)
            proof[i] = (byte)(clientKey[i] ^ clientSignature[i]);
        var serverKey = HMACSHA256.HashData(saltedPassword, "Server Key"u8);
        _expectedServerSignature = HMACSHA256.HashData(serverKey, authMessage);
        return Encoding.UTF8.GetBytes(withoutProof + ",p=" + Convert.ToBase64String(proof));
    }

    /// <summary>Checks the server-final-message; false when the server's signature is wrong or it reports an error.</summary>
    public bool VerifyServerFinal(ReadOnlySpan<byte> serverFinalBytes, out string? error)
    {
        error = null;
        var fields = ParseFields(Encoding.UTF8.GetString(serverFinalBytes));
        if (fields.TryGetValue('e', out var e))
        {
            error = e;
            return false;
        }
        if (_expectedServerSignature is null || !fields.TryGetValue('v', out var v) || !TryBase64(v, out var signature)
            || !CryptographicOperations.FixedTimeEquals(signature, _expectedServerSignature))
        {
            error = "the server's SCRAM signature does not verify";
            return false;
        }
        return true;
    }

    private static Dictionary<char, string> ParseFields(string message)
    {
        var fields = new Dictionary<char, string>();
        foreach (var part in message.Split(','))
            if (part.Length >= 2 && part[1] == '=')
                fields.TryAdd(part[0], part[2..]);
        return fields;
    }

    private static bool TryBase64(string text, out byte[] bytes)
    {
        bytes = new byte[text.Length];
        if (Convert.TryFromBase64String(text, bytes, out var written))
        {
            bytes = bytes[..written];
            return true;
        }
        return false;
    }
}
