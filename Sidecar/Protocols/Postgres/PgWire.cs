using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace Airlock.Sidecar.Protocols.Postgres;

/// <summary>
/// PostgreSQL protocol 3.0 framing: after the startup phase every message is
/// <c>type (1 byte) ‖ length (int32, big-endian, includes itself) ‖ body</c>.
/// See https://www.postgresql.org/docs/current/protocol-message-formats.html.
/// </summary>
public static class PgWire
{
    public const int Protocol30 = 196608;           // 3 << 16
    public const int SslRequestCode = 80877103;
    public const int GssEncRequestCode = 80877104;
    public const int CancelRequestCode = 80877102;

    /// <summary>Startup packets are small; anything larger is garbage or an attack (PostgreSQL allows 10,000).</summary>
    public const int MaxStartupPacketBytes = 10_000;

    /// <summary>Frontend message types a client may send after authentication.</summary>
    public static bool IsFrontendType(byte type) => type is
        (byte)'Q' or (byte)'P' or (byte)'B' or (byte)'D' or (byte)'E' or (byte)'S' or (byte)'H' or (byte)'C'
        or (byte)'d' or (byte)'c' or (byte)'f' or (byte)'F' or (byte)'X';

    /// <summary>Backend message types a server may send after authentication.</summary>
    public static bool IsBackendType(byte type) => type is
        (byte)'R' or (byte)'K' or (byte)'S' or (byte)'Z' or (byte)'T' or (byte)'D' or (byte)'C' or (byte)'E'
        or (byte)'N' or (byte)'A' or (byte)'I' or (byte)'1' or (byte)'2' or (byte)'3' or (byte)'n' or (byte)'s'
        or (byte)'t' or (byte)'G' or (byte)'H' or (byte)'W' or (byte)'d' or (byte)'c' or (byte)'V' or (byte)'v';

    /// <summary>
    /// Reads a message header. <see cref="FrameStatus.Incomplete"/> when fewer than 5 bytes are
    /// buffered; <see cref="FrameStatus.Invalid"/> when the length is below 4 or above <paramref name="maxLength"/>.
    /// </summary>
    public static FrameStatus TryReadHeader(ReadOnlySequence<byte> buffer, int maxLength, out byte type, out int length)
    {
        Span<byte> header = stackalloc byte[5];
        var available = (int)Math.Min(buffer.Length, 5);
        buffer.Slice(0, available).CopyTo(header);
        var status = TryReadHeader(header[..available], maxLength, out type, out length);
        return status == FrameStatus.Invalid || available < 5 ? status
            : buffer.Length >= 1L + length ? FrameStatus.Complete : FrameStatus.Incomplete;
    }

    /// <summary>
    /// The header of the message at the start of <paramref name="buffer"/>. Incomplete with
    /// <paramref name="length"/> 0 when fewer than 5 bytes are there; otherwise type and length are set.
    /// </summary>
    public static FrameStatus TryReadHeader(ReadOnlySpan<byte> buffer, int maxLength, out byte type, out int length)
    {
        type = 0;
        length = 0;
        if (buffer.Length < 5)
            return FrameStatus.Incomplete;
        type = buffer[0];
        length = BinaryPrimitives.ReadInt32BigEndian(buffer[1..]);
        if (length < 4 || length > maxLength)
            return FrameStatus.Invalid;
        return buffer.Length >= 1L + length ? FrameStatus.Complete : FrameStatus.Incomplete;
    }

    // ---- backend messages the gateway writes itself ----

    public static void WriteAuthenticationCleartextPassword(IBufferWriter<byte> w) => WriteAuthentication(w, 3);

    public static void WriteAuthenticationOk(IBufferWriter<byte> w) => WriteAuthentication(w, 0);

    private static void WriteAuthentication(IBufferWriter<byte> w, int code)
    {
        var span = w.GetSpan(9);
        span[0] = (byte)'R';
        BinaryPrimitives.WriteInt32BigEndian(span[1..], 8);
        BinaryPrimitives.WriteInt32BigEndian(span[5..], code);
        w.Advance(9);
    }

    public static void WriteBackendKeyData(IBufferWriter<byte> w, int processId, int secret)
    {
        var span = w.GetSpan(13);
        span[0] = (byte)'K';
        BinaryPrimitives.WriteInt32BigEndian(span[1..], 12);
        BinaryPrimitives.WriteInt32BigEndian(span[5..], processId);
        BinaryPrimitives.WriteInt32BigEndian(span[9..], secret);
        w.Advance(13);
    }

    public static void WriteReadyForQuery(IBufferWriter<byte> w, byte status)
    {
        var span = w.GetSpan(6);
        span[0] = (byte)'Z';
        BinaryPrimitives.WriteInt32BigEndian(span[1..], 5);
        span[5] = status;
        w.Advance(6);
    }

    /// <summary>NegotiateProtocolVersion: the newest minor version we speak (0) and the protocol options we ignore.</summary>
    public static void WriteNegotiateProtocolVersion(IBufferWriter<byte> w, int newestMinor, IReadOnlyList<string> unrecognized)
    {
        var body = new ArrayBufferWriter<byte>();
        WriteInt32(body, newestMinor);
        WriteInt32(body, unrecognized.Count);
        foreach (var option in unrecognized)
            WriteCString(body, option);
        WriteMessage(w, (byte)'v', body.WrittenSpan);
    }

    /// <summary>ErrorResponse (or NoticeResponse with <paramref name="type"/> 'N'): severity, SQLSTATE, message, optional detail/hint.</summary>
    public static void WriteError(IBufferWriter<byte> w, PgError error, byte type = (byte)'E')
    {
        var body = new ArrayBufferWriter<byte>();
        WriteField(body, (byte)'S', error.Severity);
        WriteField(body, (byte)'V', error.Severity);
        WriteField(body, (byte)'C', error.SqlState);
        WriteField(body, (byte)'M', error.Message);
        if (error.Detail is not null)
            WriteField(body, (byte)'D', error.Detail);
        if (error.Hint is not null)
            WriteField(body, (byte)'H', error.Hint);
        body.GetSpan(1)[0] = 0;
        body.Advance(1);
        WriteMessage(w, type, body.WrittenSpan);
    }

    // ---- frontend messages the gateway writes upstream ----

    public static byte[] StartupMessage(IEnumerable<KeyValuePair<string, string>> parameters)
    {
        var body = new ArrayBufferWriter<byte>();
        WriteInt32(body, Protocol30);
        foreach (var (name, value) in parameters)
        {
            WriteCString(body, name);
            WriteCString(body, value);
        }
        body.GetSpan(1)[0] = 0;
        body.Advance(1);
        var packet = new byte[4 + body.WrittenCount];
        BinaryPrimitives.WriteInt32BigEndian(packet, packet.Length);
        body.WrittenSpan.CopyTo(packet.AsSpan(4));
        return packet;
    }

    public static byte[] SslRequest() => CodePacket(SslRequestCode);

    public static byte[] CancelRequest(int processId, int secret)
    {
        var packet = new byte[16];
        BinaryPrimitives.WriteInt32BigEndian(packet, 16);
        BinaryPrimitives.WriteInt32BigEndian(packet.AsSpan(4), CancelRequestCode);
        BinaryPrimitives.WriteInt32BigEndian(packet.AsSpan(8), processId);
        BinaryPrimitives.WriteInt32BigEndian(packet.AsSpan(12), secret);
        return packet;
    }

    private static byte[] CodePacket(int code)
    {
        var packet = new byte[8];
        BinaryPrimitives.WriteInt32BigEndian(packet, 8);
        BinaryPrimitives.WriteInt32BigEndian(packet.AsSpan(4), code);
        return packet;
    }

    /// <summary>PasswordMessage 'p' with a NUL-terminated password (cleartext or MD5 hash).</summary>
    public static byte[] PasswordMessage(string password)
    {
        var body = new ArrayBufferWriter<byte>();
        WriteCString(body, password);
        return Message((byte)'p', body.WrittenSpan);
    }

    /// <summary>SASLInitialResponse: mechanism name and the client-first message.</summary>
    public static byte[] SaslInitialResponse(string mechanism, ReadOnlySpan<byte> data)
    {
        var body = new ArrayBufferWriter<byte>();
        WriteCString(body, mechanism);
        WriteInt32(body, data.Length);
        body.Write(data);
        return Message((byte)'p', body.WrittenSpan);
    }

    /// <summary>SASLResponse: raw data in a 'p' message.</summary>
    public static byte[] SaslResponse(ReadOnlySpan<byte> data) => Message((byte)'p', data);

    public static byte[] Terminate() => Message((byte)'X', []);

    public static byte[] Message(byte type, ReadOnlySpan<byte> body)
    {
        var message = new byte[5 + body.Length];
        message[0] = type;
        BinaryPrimitives.WriteInt32BigEndian(message.AsSpan(1), 4 + body.Length);
        body.CopyTo(message.AsSpan(5));
        return message;
    }

    public static void WriteMessage(IBufferWriter<byte> w, byte type, ReadOnlySpan<byte> body)
    {
        var span = w.GetSpan(5 + body.Length);
        span[0] = type;
        BinaryPrimitives.WriteInt32BigEndian(span[1..], 4 + body.Length);
        body.CopyTo(span[5..]);
        w.Advance(5 + body.Length);
    }

    private static void WriteField(IBufferWriter<byte> w, byte code, string value)
    {
        w.GetSpan(1)[0] = code;
        w.Advance(1);
        WriteCString(w, value);
    }

    public static void WriteCString(IBufferWriter<byte> w, string value)
    {
        // A NUL inside would end the string early on the wire: cut there.
        var text = value.Contains('\0', StringComparison.Ordinal) ? value[..value.IndexOf('\0', StringComparison.Ordinal)] : value;
        var count = Encoding.UTF8.GetByteCount(text);
        var span = w.GetSpan(count + 1);
        Encoding.UTF8.GetBytes(text, span);
        span[count] = 0;
        w.Advance(count + 1);
    }

    /// <summary>
    /// One statement by the extended protocol, as a driver sends it: Parse (unnamed, parameter types left to
    /// the server), Bind of text values (null: SQL NULL), Describe of the portal, Execute of at most
    /// <paramref name="maxRows"/> rows (0: all), Sync. Text must hold no NUL (the caller refuses it).
    /// </summary>
    public static void WriteExtendedQuery(IBufferWriter<byte> w, string sql, IReadOnlyList<string?> parameters, int maxRows)
    {
        var body = new ArrayBufferWriter<byte>();
        WriteCString(body, "");
        WriteCString(body, sql);
        WriteInt16(body, 0);
        WriteMessage(w, (byte)'P', body.WrittenSpan);

        body.ResetWrittenCount();
        WriteCString(body, "");
        WriteCString(body, "");
        WriteInt16(body, 0); // all parameters in text
        WriteInt16(body, checked((short)parameters.Count));
        foreach (var value in parameters)
        {
            if (value is null)
            {
                WriteInt32(body, -1);
                continue;
            }
            var bytes = Encoding.UTF8.GetBytes(value);
            WriteInt32(body, bytes.Length);
            body.Write(bytes);
        }
        WriteInt16(body, 0); // all results in text
        WriteMessage(w, (byte)'B', body.WrittenSpan);

        WriteMessage(w, (byte)'D', "P\0"u8);
        body.ResetWrittenCount();
        WriteCString(body, "");
        WriteInt32(body, maxRows);
        WriteMessage(w, (byte)'E', body.WrittenSpan);
        WriteMessage(w, (byte)'S', []);
    }

    public static void WriteInt16(IBufferWriter<byte> w, short value)
    {
        BinaryPrimitives.WriteInt16BigEndian(w.GetSpan(2), value);
        w.Advance(2);
    }

    public static void WriteInt32(IBufferWriter<byte> w, int value)
    {
        BinaryPrimitives.WriteInt32BigEndian(w.GetSpan(4), value);
        w.Advance(4);
    }
}

public enum FrameStatus
{
    Incomplete,
    Complete,
    Invalid,
}

/// <summary>An error or notice as PostgreSQL reports it.</summary>
public sealed record PgError(string Severity, string SqlState, string Message, string? Detail = null, string? Hint = null)
{
    public static PgError Fatal(string sqlState, string message, string? hint = null) => new("FATAL", sqlState, message, null, hint);

    public static PgError Error(string sqlState, string message, string? hint = null) => new("ERROR", sqlState, message, null, hint);

    public override string ToString() => $"{Severity} {SqlState}: {Message}";
}

/// <summary>SQLSTATE codes the gateway itself answers with.</summary>
public static class SqlStates
{
    public const string ProtocolViolation = "08P01";
    public const string ConnectionFailure = "08006";
    public const string UnableToConnect = "08001";
    public const string InvalidAuthorization = "28000";
    public const string InvalidPassword = "28P01";
    public const string InsufficientPrivilege = "42501";
    public const string InvalidCatalogName = "3D000";
    public const string FeatureNotSupported = "0A000";
    public const string ProgramLimitExceeded = "54000";
    public const string QueryCanceled = "57014";
    public const string AdminShutdown = "57P01";
    public const string CannotConnectNow = "57P03";
    public const string InsufficientResources = "53000";
    public const string TooManyConnections = "53300";
    public const string InternalError = "XX000";
    public const string SuccessfulCompletion = "00000";
}
