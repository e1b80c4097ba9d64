using System.Buffers;
using System.Buffers.Binary;
using System.Text.Json;
using Airlock.Contracts.Hubs;

namespace Airlock.Contracts.Recording;

/// <summary>One record: an event or a signed chain head.</summary>
public sealed record SpoolRecord(RecordingEvent? Event, ChainHeadSignature? Head);

/// <summary>The result of reading records: every whole record, and where the last one ends.</summary>
/// <param name="ValidLength">Bytes up to the end of the last whole, checksummed record; a torn tail beyond it is a crash mid-append.</param>
/// <param name="Corrupt">
/// Bytes that are no record — a bad checksum, an impossible length (over <see cref="RecordCodec.MaxRecordBytes"/>),
/// an unknown kind — with whole records after them: not a torn write but damage. <see cref="SpoolContents.Records"/>
/// then holds the records on both sides of it.
/// </param>
public sealed record SpoolContents(IReadOnlyList<SpoolRecord> Records, long ValidLength, bool Corrupt);

/// <summary>
/// An event record read in place: every field a view into the record's bytes, nothing allocated.
/// The control plane verifies and stores uploads through this, so ingest costs a checksum and a
/// hash per event rather than objects and strings.
/// </summary>
public readonly ref struct EventRecordView
{
    public required Guid Session { get; init; }
    public required long Seq { get; init; }
    public required long UnixMilliseconds { get; init; }
    public required ReadOnlySpan<byte> Type { get; init; }
    public required ReadOnlySpan<byte> PrevHash { get; init; }
    public required ReadOnlySpan<byte> Hash { get; init; }
    public required ReadOnlySpan<byte> Payload { get; init; }

    public DateTimeOffset Time => DateTimeOffset.FromUnixTimeMilliseconds(UnixMilliseconds);

    public RecordingEvent ToEvent() => new(Session, Seq, Time, System.Text.Encoding.UTF8.GetString(Type), Payload.ToArray(),
        Convert.ToHexStringLower(PrevHash), Convert.ToHexStringLower(Hash));
}

/// <summary>
/// The evidence record format, pure: the sidecar's spool files, recording uploads and the control
/// plane's stored segments are all sequences of these records, so an event is encoded once, where
/// it is hashed, and travels and rests as the same bytes. A sequence is:
/// <c>length (u32 BE) ‖ CRC-32C of body (u32 BE) ‖ body</c>, body = kind byte ‖ content:
/// <list type="bullet">
/// <item>3, an event: session (16) ‖ seq (i64 BE) ‖ time (Unix ms, i64 BE) ‖ type length (1) ‖ type (UTF-8) ‖
/// previous hash (32) ‖ hash (32) ‖ payload — binary, because the writer encodes every event the
/// gateway records and JSON with base64 payloads was a measurable share of a proxied transaction;</item>
/// <item>4, a signed head: session (16) ‖ seq (i64 BE) ‖ hash (32) ‖ signature;</item>
/// <item>1 and 2: the same as JSON (the first format), still read.</item>
/// </list>
/// Appends are whole records; after a crash the last one may be torn, which the reader reports by
/// <see cref="SpoolContents.ValidLength"/> so the writer can cut it off before appending again.
/// </summary>
public static class RecordCodec
{
    public const int MaxRecordBytes = 16 * 1024 * 1024;
    private const byte JsonEventKind = 1;
    private const byte JsonHeadKind = 2;
    private const byte EventKind = 3;
    private const byte HeadKind = 4;
    private const int HashBytes = 32;

    public static byte[] Encode(RecordingEvent e)
    {
        var type = System.Text.Encoding.UTF8.GetByteCount(e.Type);
        if (type > 255 || !IsHash(e.PrevHash) || !IsHash(e.Hash))
            return Frame(JsonEventKind, JsonSerializer.SerializeToUtf8Bytes(e, RecordingJson.Options));
        var frame = new byte[8 + 1 + 16 + 8 + 8 + 1 + type + HashBytes * 2 + e.Payload.Length];
        var body = frame.AsSpan(8);
        body[0] = EventKind;
        e.Session.TryWriteBytes(body[1..], bigEndian: true, out _);
        BinaryPrimitives.WriteInt64BigEndian(body[17..], e.Seq);
        BinaryPrimitives.WriteInt64BigEndian(body[25..], e.Time.ToUnixTimeMilliseconds());
        body[33] = (byte)type;
        System.Text.Encoding.UTF8.GetBytes(e.Type, body[34..]);
        var at = 34 + type;
        Convert.FromHexString(e.PrevHash, body.Slice(at, HashBytes), out _, out _);
        Convert.FromHexString(e.Hash, body.Slice(at + HashBytes, HashBytes), out _, out _);
        e.Payload.CopyTo(body[(at + 2 * HashBytes)..]);
        return Seal(frame);
    }

    /// <summary>
    /// Appends the next event of a chain as a binary record and hashes it in place, without a string
    /// or an intermediate array: <paramref name="chainHash"/> holds the previous event's hash (32 bytes,
    /// zeros before the first) and receives this event's. The recorder writes every event this way.
    /// </summary>
    public static void WriteEvent(IBufferWriter<byte> writer, Guid session, long seq, DateTimeOffset time, string type, ReadOnlySpan<byte> payload, Span<byte> chainHash)
    {
        var typeLength = System.Text.Encoding.UTF8.GetByteCount(type);
        if (typeLength > 255 || chainHash.Length != HashBytes)
            throw new ArgumentException($"event type '{type}' or chain hash cannot be encoded");
        var total = 8 + 1 + 16 + 8 + 8 + 1 + typeLength + HashBytes * 2 + payload.Length;
        if (total - 8 > MaxRecordBytes)
            throw new ArgumentException($"an event of {payload.Length} payload bytes is over the {MaxRecordBytes}-byte record limit; no reader would accept it");
        var frame = writer.GetSpan(total)[..total];
        var body = frame[8..];
        body[0] = EventKind;
        session.TryWriteBytes(body[1..], bigEndian: true, out _);
        BinaryPrimitives.WriteInt64BigEndian(body[17..], seq);
        var unixMilliseconds = time.ToUnixTimeMilliseconds();
        BinaryPrimitives.WriteInt64BigEndian(body[25..], unixMilliseconds);
        body[33] = (byte)typeLength;
        System.Text.Encoding.UTF8.GetBytes(type, body[34..]);
        var at = 34 + typeLength;
        chainHash.CopyTo(body.Slice(at, HashBytes));
        EventChain.Hash(chainHash, session, seq, unixMilliseconds, body.Slice(34, typeLength), payload, body.Slice(at + HashBytes, HashBytes));
        body.Slice(at + HashBytes, HashBytes).CopyTo(chainHash);
        payload.CopyTo(body[(at + 2 * HashBytes)..]);
        BinaryPrimitives.WriteUInt32BigEndian(frame, (uint)body.Length);
        BinaryPrimitives.WriteUInt32BigEndian(frame[4..], Crc32C.Compute(body));
        writer.Advance(total);
    }

    public static byte[] Encode(ChainHeadSignature h)
    {
        if (!IsHash(h.Hash))
            return Frame(JsonHeadKind, JsonSerializer.SerializeToUtf8Bytes(h, RecordingJson.Options));
        var frame = new byte[8 + 1 + 16 + 8 + HashBytes + h.Signature.Length];
        var body = frame.AsSpan(8);
        body[0] = HeadKind;
        h.Session.TryWriteBytes(body[1..], bigEndian: true, out _);
        BinaryPrimitives.WriteInt64BigEndian(body[17..], h.Seq);
        Convert.FromHexString(h.Hash, body.Slice(25, HashBytes), out _, out _);
        h.Signature.CopyTo(body[(25 + HashBytes)..]);
        return Seal(frame);
    }

    private static bool IsHash(string hex) => hex.Length == 2 * HashBytes && hex.AsSpan().ContainsAnyExcept("0123456789abcdef") is false;

    /// <summary>
    /// Reads records. Where bytes are not a record, the reader looks for the next whole, checksummed
    /// record after them: if there is one, the bytes were damage (<see cref="SpoolContents.Corrupt"/>)
    /// and reading goes on from it, so nothing valid after damage is lost; if there is none, they are
    /// a torn tail (a crash mid-append) and reading stops.
    /// </summary>
    /// <param name="verifyChecksums">False reads records whose checksum does not match (stored evidence, where the hash chain is the check); it stops at the first bad record.</param>
    public static SpoolContents Decode(ReadOnlySpan<byte> data, bool verifyChecksums = true)
    {
        var records = new List<SpoolRecord>();
        var offset = 0;
        var validLength = 0;
        var corrupt = false;
        while (offset < data.Length)
        {
            var record = TryRead(data[offset..], verifyChecksums, out var consumed);
            if (record is not null)
            {
                records.Add(record);
                offset += consumed;
                validLength = offset;
                continue;
            }
            var next = verifyChecksums ? NextWholeRecord(data, offset + 1) : -1;
            if (next < 0)
            {
                // Nothing whole follows: a torn tail — unless the header is impossible (no writer produces
                // a record over the limit) or more bytes follow a whole-length record that failed its checksum.
                corrupt |= HasImpossibleHeader(data[offset..]) || consumed > 0 && offset + consumed < data.Length;
                break;
            }
            corrupt = true;
            offset = next;
        }
        return new SpoolContents(records, validLength, corrupt);
    }

    /// <summary>
    /// The offset of the first whole, checksummed record at or after <paramref name="from"/>; −1 when
    /// there is none. Payloads are agent-chosen bytes, so candidates are filtered by the record's own
    /// layout before a checksum is computed, and the checksum work of one search is capped
    /// (<see cref="MaxResyncChecksumBytes"/>): past it the rest counts as damage, kept aside by the caller.
    /// </summary>
    private static int NextWholeRecord(ReadOnlySpan<byte> data, int from)
    {
        long checksummed = 0;
        for (var at = from; at + 9 <= data.Length; at++)
        {
            var length = BinaryPrimitives.ReadUInt32BigEndian(data[at..]);
            if (length is 0 or > MaxRecordBytes || at + 8 + (long)length > data.Length || !PlausibleBody(data.Slice(at + 8, (int)length)))
                continue;
            if ((checksummed += length) > MaxResyncChecksumBytes)
                return -1;
            if (TryRead(data[at..], verifyChecksum: true, out _) is not null)
                return at;
        }
        return -1;
    }

    private const long MaxResyncChecksumBytes = 256L * 1024 * 1024;

    /// <summary>Whether a body could be a record of its kind (before its checksum is computed).</summary>
    private static bool PlausibleBody(ReadOnlySpan<byte> body) => body[0] switch
    {
        EventKind => body.Length >= 1 + 16 + 8 + 8 + 1 && body.Length >= 1 + 33 + body[33] + 2 * HashBytes && body[33] > 0,
        HeadKind => body.Length is >= 1 + 16 + 8 + HashBytes + 8 and <= 1 + 16 + 8 + HashBytes + 256,
        JsonEventKind or JsonHeadKind => body.Length > 2 && body[1] == (byte)'{',
        _ => false,
    };

    private static bool HasImpossibleHeader(ReadOnlySpan<byte> data) =>
        data.Length >= 4 && BinaryPrimitives.ReadUInt32BigEndian(data) > MaxRecordBytes;

    /// <summary>Reads one record; null when incomplete or bad. <paramref name="consumed"/> is its framed length when the header was readable.</summary>
    private static SpoolRecord? TryRead(ReadOnlySpan<byte> data, bool verifyChecksum, out int consumed)
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
        if (verifyChecksum && Crc32C.Compute(body) != crc)
            return null;
        try
        {
            // A checksummed frame whose content is not an event or a head (too short, JSON null) is no record.
            return body[0] switch
            {
                EventKind => ReadEvent(body[1..]) is { } e ? new SpoolRecord(e, null) : null,
                HeadKind => ReadHead(body[1..]) is { } h ? new SpoolRecord(null, h) : null,
                JsonEventKind => JsonSerializer.Deserialize<RecordingEvent>(body[1..], RecordingJson.Options) is { } je ? new SpoolRecord(je, null) : null,
                JsonHeadKind => JsonSerializer.Deserialize<ChainHeadSignature>(body[1..], RecordingJson.Options) is { } jh ? new SpoolRecord(null, jh) : null,
                _ => null,
            };
        }
        catch (Exception e) when (e is JsonException or ArgumentException or IndexOutOfRangeException)
        {
            return null;
        }
    }

    private static RecordingEvent? ReadEvent(ReadOnlySpan<byte> body) => TryViewEvent(body, out var view) ? view.ToEvent() : null;

    /// <summary>The framed length of the whole record at the start of <paramref name="data"/>, or 0 when it is incomplete or its header is bad.</summary>
    public static int FramedLength(ReadOnlySpan<byte> data)
    {
        if (data.Length < 8)
            return 0;
        var length = BinaryPrimitives.ReadUInt32BigEndian(data);
        return length is 0 or > MaxRecordBytes || data.Length < 8 + (long)length ? 0 : 8 + (int)length;
    }

    /// <summary>The kind byte of a whole record (see <see cref="FramedLength"/>).</summary>
    public static bool IsEventRecord(ReadOnlySpan<byte> record) => record[8] == EventKind;

    /// <summary>
    /// Reads the binary event record at the start of <paramref name="data"/> in place: false when it
    /// is incomplete, fails its checksum, or is not an event record. <paramref name="consumed"/> is
    /// its framed length when the header was readable.
    /// </summary>
    public static bool TryViewEvent(ReadOnlySpan<byte> data, out EventRecordView view, out int consumed)
    {
        view = default;
        consumed = FramedLength(data);
        if (consumed == 0)
            return false;
        var body = data[8..consumed];
        return Crc32C.Compute(body) == BinaryPrimitives.ReadUInt32BigEndian(data[4..]) && body[0] == EventKind && TryViewEvent(body[1..], out view);
    }

    private static bool TryViewEvent(ReadOnlySpan<byte> body, out EventRecordView view)
    {
        view = default;
        if (body.Length < 16 + 8 + 8 + 1 || body.Length < 33 + body[32] + 2 * HashBytes)
            return false;
        var at = 33 + body[32];
        view = new EventRecordView
        {
            Session = new Guid(body[..16], bigEndian: true),
            Seq = BinaryPrimitives.ReadInt64BigEndian(body[16..]),
            UnixMilliseconds = BinaryPrimitives.ReadInt64BigEndian(body[24..]),
            Type = body.Slice(33, body[32]),
            PrevHash = body.Slice(at, HashBytes),
            Hash = body.Slice(at + HashBytes, HashBytes),
            Payload = body[(at + 2 * HashBytes)..],
        };
        return true;
    }

    private static ChainHeadSignature? ReadHead(ReadOnlySpan<byte> body) =>
        body.Length < 16 + 8 + HashBytes ? null : new ChainHeadSignature(
            new Guid(body[..16], bigEndian: true),
            BinaryPrimitives.ReadInt64BigEndian(body[16..]),
            Convert.ToHexStringLower(body.Slice(24, HashBytes)),
            body[(24 + HashBytes)..].ToArray());

    private static byte[] Frame(byte kind, byte[] json)
    {
        var frame = new byte[8 + 1 + json.Length];
        frame[8] = kind;
        json.CopyTo(frame, 9);
        return Seal(frame);
    }

    /// <summary>Fills in length and checksum of a frame whose body starts at offset 8.</summary>
    private static byte[] Seal(byte[] frame)
    {
        var body = frame.AsSpan(8);
        BinaryPrimitives.WriteUInt32BigEndian(frame, (uint)body.Length);
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(4), Crc32C.Compute(body));
        return frame;
    }
}

/// <summary>CRC-32C (Castagnoli): detects torn and damaged spool records. Eight bytes at a time with the CPU's CRC32 instruction where there is one.</summary>
public static class Crc32C
{
    public static uint Compute(ReadOnlySpan<byte> data)
    {
        var crc = 0xFFFFFFFFu;
        while (data.Length >= 8)
        {
            crc = System.Numerics.BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[8..];
        }
        foreach (var b in data)
            crc = System.Numerics.BitOperations.Crc32C(crc, b);
        return ~crc;
    }
}
