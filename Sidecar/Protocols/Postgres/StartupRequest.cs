namespace Airlock.Sidecar.Protocols.Postgres;

public enum StartupKind
{
    Ssl,
    GssEnc,
    Cancel,
    Startup,
}

/// <summary>
/// The first packet(s) of a connection: <c>length (int32) ‖ code (int32) ‖ …</c>. A StartupMessage
/// carries the protocol version and NUL-terminated name/value pairs; CancelRequest a process id and
/// secret; SSLRequest and GSSENCRequest nothing.
/// </summary>
public sealed record StartupRequest(StartupKind Kind, int ProtocolVersion, IReadOnlyList<KeyValuePair<string, string>> Parameters, int ProcessId, int Secret)
{
    public int MajorVersion => ProtocolVersion >> 16;
    public int MinorVersion => ProtocolVersion & 0xFFFF;

    public string? this[string name] => Parameters.FirstOrDefault(p => p.Key == name).Value;

    /// <summary>Validates the declared packet length before anything is read: 8 ≤ length ≤ <see cref="PgWire.MaxStartupPacketBytes"/>.</summary>
    public static string? CheckLength(int length) =>
        length < 8 ? $"startup packet length {length} is too short"
        : length > PgWire.MaxStartupPacketBytes ? $"startup packet length {length} is over the {PgWire.MaxStartupPacketBytes}-byte limit"
        : null;

    /// <summary>Parses the packet after its length field.</summary>
    public static StartupRequest Parse(ReadOnlySpan<byte> packet)
    {
        var reader = new PgReader(packet);
        var code = reader.ReadInt32();
        switch (code)
        {
            case PgWire.SslRequestCode:
                return new StartupRequest(StartupKind.Ssl, code, [], 0, 0);
            case PgWire.GssEncRequestCode:
                return new StartupRequest(StartupKind.GssEnc, code, [], 0, 0);
            case PgWire.CancelRequestCode:
                var processId = reader.ReadInt32();
                var secret = reader.ReadInt32();
                return new StartupRequest(StartupKind.Cancel, code, [], processId, secret);
        }
        var parameters = new List<KeyValuePair<string, string>>();
        while (true)
        {
            var name = reader.ReadCString();
            if (name.Length == 0)
                break;
            var value = reader.ReadCString();
            if (parameters.Any(p => p.Key == name))
                throw new PgProtocolException($"startup parameter '{name}' is given twice");
            parameters.Add(new(name, value));
        }
        if (reader.Remaining != 0)
            throw new PgProtocolException("bytes after the startup parameters' terminator");
        return new StartupRequest(StartupKind.Startup, code, parameters, 0, 0);
    }
}
