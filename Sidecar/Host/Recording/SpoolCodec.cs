using System.Buffers.Binary;
using System.Text.Json;
using Airlock.Contracts.Hubs;
using Airlock.Contracts.Recording;

namespace Airlock.Sidecar.Recording;

/// <summary>One record of a spool file: an event or a signed chain head.</summary>
public sealed record SpoolRecord(RecordingEvent? Event, ChainHeadSignature? Head);

/// <summary>The result of reading a spool: the records, and the length of the valid prefix.</summary>
/// <param name="ValidLength">Bytes up to the end of the last whole, checksummed record; a torn tail beyond it is a crash mid-append.</param>
/// <param name="Corrupt">A bad record followed by good ones: not a torn write but damage.</param>
public sealed record SpoolContents(IReadOnlyList<SpoolRecord> Records, long ValidLength, bool Corrupt);

/// <summary>
/// The spool file format, pure. A file is a sequence of records:
/// <c>length (u32 BE) ‖ CRC-32C of body (u32 BE) ‖ body</c>, body = kind byte (1 event, 2 head) ‖ JSON.
/// Appends are whole records; after a crash the last one may be torn, which the reader reports by
/// <see cref="SpoolContents.ValidLength"/> so the writer can cut it off before appending again.
/// </summary>
public static class SpoolCodec
{
    public const int MaxRecordBytes = 16 * 1024 * 1024;
    private const byte EventKind = 1;
    private const byte HeadKind = 2;

    public static byte[] Encode(RecordingEvent e) => Frame(EventKind, JsonSerializer.SerializeToUtf8Bytes(e, RecordingJson.Options));

    public static byte[] Encode(ChainHeadSignature h) => Frame(HeadKind, JsonSerializer.SerializeToUtf8Bytes(h, RecordingJson.Options));

    public static SpoolContents Decode(ReadOnlySpan<byte> data)
    {
        var records = new List<SpoolRecord>();
        var offset = 0;
        while (offset < data.Length)
        {
            var record = TryRead(data[offset..], out var consumed);
            if (record is null)
            {
                // Damage in the middle (a good record follows somewhere) versus a torn tail.
                var corrupt = consumed > 0 && offset + consumed < data.Length;
                return new SpoolContents(records, offset, corrupt);
            }
            records.Add(record);
            offset += consumed;
        }
        return new SpoolContents(records, offset, false);
    }

    /// <summary>Reads one record; null when incomplete or bad. <paramref name="consumed"/> is its framed length when the header was readable.</summary>
    private static SpoolRecord? TryRead(ReadOnlySpan<byte> data, out int consumed)
    {
        consumed = 0;
        if (data.Length < 8)
            return null;
        var length = BinaryPrimitives.ReadUInt32BigEndian(data);
        var crc = BinaryPrimitives.ReadUInt32BigEndian(data[4..]);
        if (length is 0 or > MaxRecordBytes)
            return null;
        if (data.Length < 8 + (long)length)
            return null;
        consumed = 8 + (int)length;
        var body = data.Slice(8, (int)length);
        if (Crc32C.Compute(body) != crc)
            return null;
        try
        {
            return body[0] switch
            {
                EventKind => new SpoolRecord(JsonSerializer.Deserialize<RecordingEvent>(body[1..], RecordingJson.Options), null),
                HeadKind => new SpoolRecord(null, JsonSerializer.Deserialize<ChainHeadSignature>(body[1..], RecordingJson.Options)),
                _ => null,
            };
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static byte[] Frame(byte kind, byte[] json)
    {
        var frame = new byte[8 + 1 + json.Length];
        frame[8] = kind;
        json.CopyTo(frame, 9);
        var body = frame.AsSpan(8);
        BinaryPrimitives.WriteUInt32BigEndian(frame, (uint)body.Length);
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(4), Crc32C.Compute(body));
        return frame;
    }
}

/// <summary>CRC-32C (Castagnoli), table-driven: detects torn and damaged spool records.</summary>
public static class Crc32C
{
    private static readonly uint[] _table = BuildTable();

    public static uint Compute(ReadOnlySpan<byte> data)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in data)
            crc = _table[(crc ^ b) & 0xFF] ^ (crc >> 8);
        return ~crc;
    }

    private static uint[] BuildTable()
    {
        var table = new uint[256];
        for (uint i = 0; i < 256; i++)
        {
            var c = i;
            for (var k = 0; k < 8; k++)
                c = (c & 1) != 0 ? 0x82F63B78 ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        return table;
    }
}
