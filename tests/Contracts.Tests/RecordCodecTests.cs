using System.Text;
using Airlock.Contracts.Hubs;
using Airlock.Contracts.Recording;

namespace Airlock.Contracts.Tests;

public sealed class RecordCodecTests
{
    private static readonly Guid _session = Guid.NewGuid();

    private static (byte[] Bytes, List<RecordingEvent> Events) Spool(int count)
    {
        var events = new List<RecordingEvent>();
        RecordingEvent? last = null;
        var bytes = new List<byte>();
        for (var i = 0; i < count; i++)
        {
            last = EventChain.Next(last, _session, DateTimeOffset.UtcNow, RecordingEventTypes.Notice, RecordingJson.Encode(new NoticePayload("NOTICE", $"n{i}")));
            events.Add(last);
            bytes.AddRange(RecordCodec.Encode(last));
        }
        return (bytes.ToArray(), events);
    }

    [Fact]
    public void Records_round_trip_in_order()
    {
        var (bytes, events) = Spool(5);
        var head = new ChainHeadSignature(_session, 5, events[^1].Hash, [1, 2, 3]);
        var all = bytes.Concat(RecordCodec.Encode(head)).ToArray();
        var contents = RecordCodec.Decode(all);
        Assert.False(contents.Corrupt);
        Assert.Equal(all.Length, contents.ValidLength);
        Assert.Equal(events.Select(e => e.Hash), contents.Records.Where(r => r.Event is not null).Select(r => r.Event!.Hash));
        Assert.Equal(head.Hash, contents.Records[^1].Head!.Hash);
        Assert.Equal(events[2].Payload, contents.Records[2].Event!.Payload);
    }

    [Fact]
    public void Every_torn_tail_keeps_the_whole_records_before_it()
    {
        var (bytes, _) = Spool(3);
        var firstTwo = RecordCodec.Decode(bytes).Records.Take(2).ToList();
        var secondEnd = RecordCodec.Encode(firstTwo[0].Event!).Length + RecordCodec.Encode(firstTwo[1].Event!).Length;
        for (var cut = secondEnd; cut < bytes.Length; cut++)
        {
            var contents = RecordCodec.Decode(bytes.AsSpan(0, cut));
            Assert.Equal(2, contents.Records.Count);
            Assert.Equal(secondEnd, contents.ValidLength);
            Assert.False(contents.Corrupt);
        }
    }

    [Fact]
    public void A_damaged_record_is_corruption_and_the_whole_records_after_it_are_kept()
    {
        var (bytes, events) = Spool(3);
        bytes[20] ^= 0xFF; // inside the first record's body
        var contents = RecordCodec.Decode(bytes);
        Assert.True(contents.Corrupt);
        Assert.Equal(events.Skip(1).Select(e => e.Hash), contents.Records.Select(r => r.Event!.Hash));
        Assert.Equal(bytes.Length, contents.ValidLength);
    }

    [Theory]
    [InlineData(RecordCodec.MaxRecordBytes + 1)]
    [InlineData(uint.MaxValue)]
    public void An_impossible_length_is_corruption_never_a_torn_tail(uint length)
    {
        // A record no writer produces (e.g. one over the limit) between whole records: what follows is kept.
        var (bytes, events) = Spool(3);
        var first = RecordCodec.Encode(events[0]).Length;
        var damaged = bytes.ToArray();
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(damaged.AsSpan(first), length);
        var contents = RecordCodec.Decode(damaged);
        Assert.True(contents.Corrupt);
        Assert.Equal([events[0].Hash, events[2].Hash], contents.Records.Select(r => r.Event!.Hash));

        // At the very end it is corruption as well, not a tail to cut quietly.
        var last = RecordCodec.Encode(events[2]).Length;
        var tail = bytes.ToArray();
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(tail.AsSpan(bytes.Length - last), length);
        var atEnd = RecordCodec.Decode(tail);
        Assert.True(atEnd.Corrupt);
        Assert.Equal(2, atEnd.Records.Count);
    }

    [Fact]
    public void Damage_anywhere_loses_only_the_damaged_record()
    {
        // Every single flipped byte of a five-record spool: at most the record holding it is lost.
        var (bytes, events) = Spool(5);
        var ends = new List<int>();
        var end = 0;
        foreach (var e in events)
            ends.Add(end += RecordCodec.Encode(e).Length);
        for (var at = 0; at < bytes.Length; at++)
        {
            var damaged = bytes.ToArray();
            damaged[at] ^= 0x5A;
            var hit = ends.FindIndex(e => at < e);
            var kept = RecordCodec.Decode(damaged).Records.Select(r => r.Event!.Hash).ToList();
            Assert.Equal(events.Where((_, i) => i != hit).Select(e => e.Hash), kept);
        }
    }

    [Theory]
    [InlineData(new byte[] { 3 })]                  // an event kind with no event
    [InlineData(new byte[] { 4, 1, 2, 3 })]         // a head too short to be one
    [InlineData(new byte[] { 1, (byte)'n', (byte)'u', (byte)'l', (byte)'l' })] // JSON null
    public void A_checksummed_frame_that_holds_no_record_is_damage_not_a_record(byte[] body)
    {
        // Such a frame can be planted inside a payload an agent chose; it must not pass for a record.
        var (bytes, events) = Spool(2);
        var frame = new byte[8 + body.Length];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(frame, (uint)body.Length);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(4), Crc32C.Compute(body));
        body.CopyTo(frame, 8);
        var first = RecordCodec.Encode(events[0]).Length;
        var planted = bytes[..first].Concat(frame).Concat(bytes[first..]).ToArray();
        var contents = RecordCodec.Decode(planted);
        Assert.True(contents.Corrupt);
        Assert.Equal(events.Select(e => e.Hash), contents.Records.Select(r => r.Event!.Hash));
    }

    [Fact]
    public void A_writer_refuses_a_record_over_the_limit()
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        var hash = new byte[32];
        Assert.Throws<ArgumentException>(() => RecordCodec.WriteEvent(buffer, _session, 1, DateTimeOffset.UtcNow, "statement", new byte[RecordCodec.MaxRecordBytes], hash));
        Assert.Equal(0, buffer.WrittenCount);
    }

    [Theory]
    [InlineData("")]
    [InlineData("garbage that is not a spool")]
    public void Garbage_yields_no_records_and_no_exception(string text) =>
        Assert.Empty(RecordCodec.Decode(Encoding.UTF8.GetBytes(text)).Records);

    [Fact]
    public void Crc32c_matches_the_standard_check_value() =>
        Assert.Equal(0xE3069283u, Crc32C.Compute("123456789"u8));

    [Theory]
    [InlineData(0)]
    [InlineData(100)]
    [InlineData(8_000)]
    [InlineData(300_000)]
    public void Writing_the_next_event_in_place_gives_the_bytes_and_hash_of_the_chain(int payloadBytes)
    {
        // The recorder's path (hash into the record, no strings) against the reference path (EventChain.Next, Encode).
        var writer = new System.Buffers.ArrayBufferWriter<byte>();
        var chain = new byte[32];
        RecordingEvent? last = null;
        var expected = new List<byte>();
        var time = DateTimeOffset.UtcNow;
        for (var seq = 1; seq <= 4; seq++)
        {
            var payload = Encoding.UTF8.GetBytes(new string((char)('a' + seq), payloadBytes + seq));
            last = EventChain.Next(last, _session, time.AddMilliseconds(seq).AddTicks(1234), RecordingEventTypes.Statement, payload);
            expected.AddRange(RecordCodec.Encode(last));
            RecordCodec.WriteEvent(writer, _session, seq, time.AddMilliseconds(seq).AddTicks(1234), RecordingEventTypes.Statement, payload, chain);
            Assert.Equal(last.Hash, Convert.ToHexStringLower(chain));
        }
        Assert.Equal(expected.ToArray(), writer.WrittenSpan.ToArray());
        Assert.True(RecordCodec.TryViewEvent(writer.WrittenSpan, out var first, out var length));
        Assert.Equal((1L, EventChain.GenesisHash), (first.Seq, Convert.ToHexStringLower(first.PrevHash)));
        Assert.Equal(RecordCodec.Encode(EventChain.Next(null, _session, time.AddMilliseconds(1).AddTicks(1234), RecordingEventTypes.Statement,
            Encoding.UTF8.GetBytes(new string('b', payloadBytes + 1)))).Length, length);
    }

    [Fact]
    public void A_damaged_or_foreign_record_is_not_viewed_as_an_event()
    {
        var (bytes, _) = Spool(1);
        Assert.True(RecordCodec.TryViewEvent(bytes, out _, out _));
        Assert.False(RecordCodec.TryViewEvent(bytes.AsSpan(0, bytes.Length - 1), out _, out var torn));
        Assert.Equal(0, torn);
        var flipped = bytes.ToArray();
        flipped[^1] ^= 1;
        Assert.False(RecordCodec.TryViewEvent(flipped, out _, out var consumed));
        Assert.Equal(bytes.Length, consumed);
        var head = RecordCodec.Encode(new ChainHeadSignature(_session, 1, new string('a', 64), [1, 2]));
        Assert.False(RecordCodec.TryViewEvent(head, out _, out _));
    }
}
