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
    public void A_damaged_record_in_the_middle_is_reported_as_corruption()
    {
        var (bytes, _) = Spool(3);
        bytes[20] ^= 0xFF; // inside the first record's body
        var contents = RecordCodec.Decode(bytes);
        Assert.True(contents.Corrupt);
        Assert.Empty(contents.Records);
        Assert.Equal(0, contents.ValidLength);
    }

    [Theory]
    [InlineData("")]
    [InlineData("garbage that is not a spool")]
    public void Garbage_yields_no_records_and_no_exception(string text) =>
        Assert.Empty(RecordCodec.Decode(Encoding.UTF8.GetBytes(text)).Records);

    [Fact]
    public void Crc32c_matches_the_standard_check_value() =>
        Assert.Equal(0xE3069283u, Crc32C.Compute("123456789"u8));
}
