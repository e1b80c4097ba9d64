using System.Buffers.Binary;
using System.Text;

namespace Airlock.Sidecar.Protocols.Postgres;

/// <summary>Reads a message body; every malformed field throws <see cref="PgProtocolException"/> (never an index error).</summary>
public ref struct PgReader(ReadOnlySpan<byte> body)
{
    private readonly ReadOnlySpan<byte> _body = body;
    private int _position;

    public readonly int Remaining => _body.Length - _position;

    public byte ReadByte()
    {
        Need(1);
        return _body[_position++];
    }

    public short ReadInt16()
    {
        Need(2);
        var value = BinaryPrimitives.ReadInt16BigEndian(_body[_position..]);
        _position += 2;
        return value;
    }

    /// <summary>
    /// A 16-bit count (parameters, formats, columns, fields): PostgreSQL reads these unsigned
    /// (<c>pq_getmsgint(msg, 2)</c>), so 32,768–65,535 are valid counts, never negative ones.
    /// </summary>
    public int ReadCount16()
    {
        Need(2);
        var value = BinaryPrimitives.ReadUInt16BigEndian(_body[_position..]);
        _position += 2;
        return value;
    }

    public int ReadInt32()
    {
        Need(4);
        var value = BinaryPrimitives.ReadInt32BigEndian(_body[_position..]);
        _position += 4;
        return value;
    }

    public string ReadCString() => Encoding.UTF8.GetString(ReadCStringBytes());

    /// <summary>A NUL-terminated string's bytes (without the NUL), for callers that need no string.</summary>
    public ReadOnlySpan<byte> ReadCStringBytes()
    {
        var end = _body[_position..].IndexOf((byte)0);
        if (end < 0)
            throw new PgProtocolException("a string is not NUL-terminated");
        var bytes = _body.Slice(_position, end);
        _position += end + 1;
        return bytes;
    }

    public ReadOnlySpan<byte> ReadBytes(int count)
    {
        if (count < 0)
            throw new PgProtocolException($"negative length {count}");
        Need(count);
        var bytes = _body.Slice(_position, count);
        _position += count;
        return bytes;
    }

    /// <summary>An int32 length then that many bytes; length −1 is NULL.</summary>
    public ReadOnlySpan<byte> ReadValue(out bool isNull)
    {
        var length = ReadInt32();
        isNull = length == -1;
        if (isNull)
            return default;
        if (length < -1)
            throw new PgProtocolException($"invalid value length {length}");
        return ReadBytes(length);
    }

    public readonly ReadOnlySpan<byte> Rest => _body[_position..];

    private readonly void Need(int count)
    {
        if (count > Remaining)
            throw new PgProtocolException($"message truncated: {count} bytes needed, {Remaining} left");
    }
}

/// <summary>A message that does not follow the protocol; the session ends with 08P01.</summary>
public sealed class PgProtocolException(string message) : Exception(message);
