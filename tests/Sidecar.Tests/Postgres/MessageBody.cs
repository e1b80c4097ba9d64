using System.Buffers.Binary;
using System.Text;

namespace Airlock.Sidecar.Tests.Postgres;

/// <summary>Builds a protocol message body field by field, as the wire carries it (big-endian, C strings).</summary>
internal sealed class MessageBody
{
    private readonly List<byte> _bytes = [];
    public MessageBody Str(string s) { _bytes.AddRange(Encoding.UTF8.GetBytes(s + "\0")); return this; }
    public MessageBody I16(short v) { var b = new byte[2]; BinaryPrimitives.WriteInt16BigEndian(b, v); _bytes.AddRange(b); return this; }
    /// <summary>A 16-bit count as the wire carries it (unsigned: 0–65,535).</summary>
    public MessageBody U16(int v) { var b = new byte[2]; BinaryPrimitives.WriteUInt16BigEndian(b, checked((ushort)v)); _bytes.AddRange(b); return this; }
    public MessageBody I32(int v) { var b = new byte[4]; BinaryPrimitives.WriteInt32BigEndian(b, v); _bytes.AddRange(b); return this; }
    public MessageBody Byte(char c) { _bytes.Add((byte)c); return this; }
    public MessageBody Value(byte[]? v) { if (v is null) return I32(-1); I32(v.Length); _bytes.AddRange(v); return this; }
    public byte[] Bytes => [.. _bytes];
}
