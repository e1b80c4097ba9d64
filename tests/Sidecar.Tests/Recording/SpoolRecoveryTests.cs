using System.Buffers.Binary;
using System.Security.Cryptography;
using Airlock.Contracts.Hubs;
using Airlock.Contracts.Recording;
using Airlock.Sidecar.ControlPlane;
using Airlock.Sidecar.Recording;
using Airlock.Sidecar.Snapshots;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.Sidecar.Tests.Recording;

/// <summary>
/// The recorder's spool after damage and against oversized events: a damaged or impossible record is
/// corruption (kept aside), never a torn tail that takes the records after it; nothing larger than
/// the event limit is ever written.
/// </summary>
public sealed class SpoolRecoveryTests : IDisposable
{
    private readonly ECDsa _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private readonly string _state = Directory.CreateTempSubdirectory("airlock-spool-test-").FullName;
    private readonly Guid _session = Guid.NewGuid();

    public void Dispose()
    {
        _key.Dispose();
        Directory.Delete(_state, recursive: true);
    }

    private string SpoolPath => Path.Combine(_state, "spool", _session + SessionRecorder.SpoolExtension);

    private SessionRecorder NewRecorder()
    {
        var pkcs8 = _key.ExportPkcs8PrivateKey();
        var identity = new SidecarIdentity("sidecar", "test", "credential", "http://127.0.0.1:1", "http://127.0.0.1:1", [], pkcs8, pkcs8);
        return new SessionRecorder(identity, new SidecarOptionsSnapshot(_state, RecordingFlushMilliseconds: 10), TimeProvider.System, NullLogger<SessionRecorder>.Instance);
    }

    /// <summary>A spool of five events (no end, as after a crash), each followed by its signed head; returns each record's offset.</summary>
    private (List<RecordingEvent> Events, List<int> Offsets) WriteSpool()
    {
        Directory.CreateDirectory(Path.GetDirectoryName(SpoolPath)!);
        var events = new List<RecordingEvent>();
        var offsets = new List<int>();
        var bytes = new List<byte>();
        RecordingEvent? last = null;
        for (var i = 1; i <= 5; i++)
        {
            last = EventChain.Next(last, _session, DateTimeOffset.UtcNow, RecordingEventTypes.Notice, RecordingJson.Encode(new NoticePayload("NOTICE", $"event {i}")));
            events.Add(last);
            offsets.Add(bytes.Count);
            bytes.AddRange(RecordCodec.Encode(last));
            bytes.AddRange(RecordCodec.Encode(EventChain.SignHead(last, _key)));
        }
        File.WriteAllBytes(SpoolPath, [.. bytes]);
        return (events, offsets);
    }

    /// <summary>What the recorder does at start, before its writer runs.</summary>
    private Task RecoverAsync()
    {
        using var recorder = NewRecorder();
        recorder.Recover();
        return Task.CompletedTask;
    }

    [Theory]
    [InlineData("a flipped byte")]
    [InlineData("a length over the record limit")]
    [InlineData("a length past the end of the file")]
    public async Task Damage_in_the_middle_keeps_every_whole_record_after_it_and_the_original_aside(string damage)
    {
        var (events, offsets) = WriteSpool();
        var original = File.ReadAllBytes(SpoolPath);
        var damaged = original.ToArray();
        switch (damage)
        {
            case "a flipped byte": damaged[offsets[2] + 30] ^= 0xFF; break;
            case "a length over the record limit": BinaryPrimitives.WriteUInt32BigEndian(damaged.AsSpan(offsets[2]), RecordCodec.MaxRecordBytes + 1u); break;
            default: BinaryPrimitives.WriteUInt32BigEndian(damaged.AsSpan(offsets[2]), (uint)damaged.Length); break;
        }
        File.WriteAllBytes(SpoolPath, damaged);

        await RecoverAsync();

        Assert.Equal(damaged, File.ReadAllBytes(SpoolPath + ".corrupt"));
        var contents = RecordCodec.Decode(File.ReadAllBytes(SpoolPath));
        Assert.False(contents.Corrupt);
        var kept = contents.Records.Where(r => r.Event is not null).Select(r => r.Event!).ToList();
        // Events 1, 2, 4 and 5 survive; the session is closed as interrupted after the last of them.
        Assert.Equal([events[0].Hash, events[1].Hash, events[3].Hash, events[4].Hash], kept.Take(4).Select(e => e.Hash));
        Assert.Equal(RecordingEventTypes.SessionEnd, kept[^1].Type);
        Assert.Equal(events[4].Hash, kept[^1].PrevHash);
    }

    [Fact]
    public async Task A_torn_tail_is_cut_quietly_and_nothing_is_kept_aside()
    {
        var (events, _) = WriteSpool();
        var whole = File.ReadAllBytes(SpoolPath);
        File.WriteAllBytes(SpoolPath, whole[..^10]); // the last head is torn

        await RecoverAsync();

        Assert.False(File.Exists(SpoolPath + ".corrupt"));
        var kept = RecordCodec.Decode(File.ReadAllBytes(SpoolPath)).Records.Where(r => r.Event is not null).Select(r => r.Event!).ToList();
        Assert.Equal(events.Select(e => e.Hash), kept.Take(5).Select(e => e.Hash));
        Assert.Equal(RecordingEventTypes.SessionEnd, kept[^1].Type);
    }

    [Fact]
    public async Task An_event_over_the_limit_is_never_written_a_placeholder_says_what_it_was()
    {
        using var recorder = NewRecorder();
        await recorder.StartAsync(default);
        var huge = new byte[RecordingLimits.MaxEventPayloadBytes + 1];
        Assert.True(recorder.TryRecord(_session, RecordingEventTypes.Notice, huge));
        Assert.True(recorder.TryRecord(_session, RecordingEventTypes.SessionEnd, RecordingJson.Encode(new SessionEndPayload("client"))));
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!(File.Exists(SpoolPath) && recorder.DurableLength(_session) is null) && DateTime.UtcNow < deadline)
            await Task.Delay(20);
        await recorder.StopAsync(default);

        var events = RecordCodec.Decode(File.ReadAllBytes(SpoolPath)).Records.Where(r => r.Event is not null).Select(r => r.Event!).ToList();
        Assert.Equal(2, events.Count);
        var placeholder = RecordingJson.Decode<OmittedPayload>(events[0].Payload)!;
        Assert.True(placeholder.Omitted);
        Assert.Equal(huge.Length, placeholder.OriginalBytes);
        Assert.True(ChainVerifier.Verify(events, [], null).Verifies);
    }
}
