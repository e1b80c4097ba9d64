using System.Security.Cryptography;
using Airlock.Contracts.Hubs;
using Airlock.Contracts.Recording;

namespace Airlock.Contracts.Tests;

public sealed class EventChainTests : IDisposable
{
    private static readonly Guid _session = Guid.Parse("3f0b6c1e-2a4d-4e8f-9b71-5c2d8e0a1f33");
    private static readonly DateTimeOffset _t0 = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);
    private readonly ECDsa _sidecarKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);

    public void Dispose() => _sidecarKey.Dispose();

    private byte[] PublicKey => _sidecarKey.ExportSubjectPublicKeyInfo();

    private static List<RecordingEvent> Session(int statements)
    {
        var events = new List<RecordingEvent>();
        RecordingEvent? last = null;
        void Add(string type, byte[] payload) => events.Add(last = EventChain.Next(last, _session, _t0.AddMilliseconds(events.Count * 7.5), type, payload));
        Add(RecordingEventTypes.SessionStart, RecordingJson.Encode(new SessionStartPayload("ci-deploy", "deployer", "orders", "edge-1", "10.0.0.7:51234", true)));
        for (var i = 0; i < statements; i++)
            Add(RecordingEventTypes.Statement, RecordingJson.Encode(new StatementPayload($"SELECT {i}", [], "read", "allow", null, 1.5, 1, null)));
        Add(RecordingEventTypes.SessionEnd, RecordingJson.Encode(new SessionEndPayload("client")));
        return events;
    }

    [Fact]
    public void A_recorded_session_verifies_with_its_signed_heads()
    {
        var events = Session(10);
        var heads = new[] { EventChain.SignHead(events[5], _sidecarKey), EventChain.SignHead(events[^1], _sidecarKey) };
        var verdict = ChainVerifier.Verify(events, heads, PublicKey);
        Assert.True(verdict.Verifies, verdict.Reason);
        Assert.Equal((12L, 12L), (verdict.Events, verdict.SignedThrough));
        Assert.Equal(EventChain.GenesisHash, events[0].PrevHash);
        Assert.Equal(events[0].Hash, events[1].PrevHash);
    }

    [Fact]
    public void Only_a_signed_session_end_makes_a_session_verified()
    {
        var events = Session(10);
        var all = ChainVerifier.Verify(events, [EventChain.SignHead(events[^1], _sidecarKey)], PublicKey);
        Assert.Equal((true, SessionVerification.Verified), (all.SignedEnd, all.Status));

        // Cut after a signed flush: every event present verifies, but it is not the whole session.
        var cut = events.Take(6).ToList();
        var flushed = ChainVerifier.Verify(cut, [EventChain.SignHead(cut[^1], _sidecarKey)], PublicKey);
        Assert.True(flushed.Verifies);
        Assert.Equal(SessionVerification.Incomplete, flushed.Status);

        // An end that no signature covers is not verified either.
        var unsigned = ChainVerifier.Verify(events, [EventChain.SignHead(events[5], _sidecarKey)], PublicKey);
        Assert.Equal(SessionVerification.Incomplete, unsigned.Status);

        // An end with a head signed by another key is broken.
        using var other = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        Assert.Equal(SessionVerification.Broken, ChainVerifier.Verify(events, [EventChain.SignHead(events[^1], other)], PublicKey).Status);
    }

    [Fact]
    public void An_event_type_this_version_does_not_know_is_part_of_the_chain_not_a_break()
    {
        var events = Session(2);
        var future = EventChain.Next(events[^2], _session, _t0, "approval.v2", "{\"x\":1}"u8.ToArray());
        var end = EventChain.Next(future, _session, _t0, RecordingEventTypes.SessionEnd, RecordingJson.Encode(new SessionEndPayload("client")));
        List<RecordingEvent> chain = [.. events.Take(events.Count - 1), future, end];
        Assert.Equal(SessionVerification.Verified, ChainVerifier.Verify(chain, [EventChain.SignHead(end, _sidecarKey)], PublicKey).Status);
    }

    public static TheoryData<string, Func<List<RecordingEvent>, List<RecordingEvent>>, long, string> Tampering => new()
    {
        { "payload edited", e => Replace(e, 4, e[4] with { Payload = RecordingJson.Encode(new StatementPayload("DROP TABLE x", [], "ddl", "allow", null, 1, 0, null)) }), 5, "does not match its hash" },
        { "type edited", e => Replace(e, 4, e[4] with { Type = RecordingEventTypes.Notice }), 5, "does not match its hash" },
        { "time edited", e => Replace(e, 4, e[4] with { Time = e[4].Time.AddSeconds(1) }), 5, "does not match its hash" },
        { "hash recomputed after an edit", e => Replace(e, 4, Rehash(e[4] with { Payload = [1, 2, 3] })), 6, "does not follow event 5" },
        { "event removed", e => e.Where((_, i) => i != 4).ToList(), 5, "event 5 is missing" },
        { "events swapped", e => Swap(e, 3, 4), 4, "event 4 is missing" },
    };

    [Theory]
    [MemberData(nameof(Tampering))]
    public void A_tampered_chain_reports_where_it_breaks(string _, Func<List<RecordingEvent>, List<RecordingEvent>> tamper, long brokenAt, string reason)
    {
        var verdict = ChainVerifier.Verify(tamper(Session(10)), [], PublicKey);
        Assert.False(verdict.Verifies);
        Assert.Equal(brokenAt, verdict.BrokenAt);
        Assert.Contains(reason, verdict.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_head_signed_by_another_key_does_not_verify()
    {
        using var other = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var events = Session(3);
        var verdict = ChainVerifier.Verify(events, [EventChain.SignHead(events[^1], other)], PublicKey);
        Assert.Contains("does not verify with the sidecar's key", verdict.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_head_for_a_rewritten_chain_does_not_match()
    {
        var events = Session(3);
        var head = EventChain.SignHead(events[^1], _sidecarKey) with { Hash = EventChain.GenesisHash };
        Assert.Contains("does not match the chain", ChainVerifier.Verify(events, [head], PublicKey).Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Time_is_hashed_to_the_millisecond_it_is_stored_with()
    {
        var e = EventChain.Next(null, _session, _t0.AddTicks(1234), RecordingEventTypes.Notice, RecordingJson.Encode(new NoticePayload("NOTICE", "hi")));
        Assert.Equal(_t0, e.Time);
        Assert.True(ChainVerifier.Verify([e], [], PublicKey).Verifies);
    }

    private static List<RecordingEvent> Replace(List<RecordingEvent> events, int index, RecordingEvent replacement)
    {
        var copy = events.ToList();
        copy[index] = replacement;
        return copy;
    }

    private static List<RecordingEvent> Swap(List<RecordingEvent> events, int a, int b)
    {
        var copy = events.ToList();
        (copy[a], copy[b]) = (copy[b], copy[a]);
        return copy;
    }

    private static RecordingEvent Rehash(RecordingEvent e) =>
        e with { Hash = EventChain.Hash(e.PrevHash, e.Session, e.Seq, e.Time, e.Type, e.Payload) };

    [Theory]
    [InlineData("statement", 0)]
    [InlineData("statement", 7_648)] // the largest payload hashed in one call
    [InlineData("statement", 7_649)] // the smallest hashed incrementally
    [InlineData("statement", 300_000)]
    [InlineData("a-very-long-type-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 10)]
    public void Every_hashing_path_gives_sha256_of_the_previous_hash_and_the_canonical_bytes(string type, int payloadLength)
    {
        var session = Guid.Parse("0b8f6f7e-4a54-4d55-9a53-0c5f1f8b3a11");
        var time = DateTimeOffset.FromUnixTimeMilliseconds(1_795_000_000_123);
        var prev = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData("y"u8));
        var bytes = Enumerable.Range(0, payloadLength).Select(i => (byte)(i * 31)).ToArray();
        var expected = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(
            [.. Convert.FromHexString(prev), .. EventChain.Canonical(session, 9_999_999_999, time, type, bytes)]));
        Assert.Equal(expected, EventChain.Hash(prev, session, 9_999_999_999, time, type, bytes));
    }

    [Theory]
    [InlineData("statement", "{\"text\":\"SELECT 1\"}")]
    [InlineData("session.start", "")]
    [InlineData("a-type-with-ünïcode", "payload")]
    public void The_hash_is_sha256_of_the_previous_hash_and_the_canonical_bytes(string type, string payload)
    {
        var session = Guid.Parse("0b8f6f7e-4a54-4d55-9a53-0c5f1f8b3a11");
        var time = DateTimeOffset.FromUnixTimeMilliseconds(1_795_000_000_123);
        var prev = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData("x"u8));
        var bytes = System.Text.Encoding.UTF8.GetBytes(payload);
        var expected = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(
            [.. Convert.FromHexString(prev), .. EventChain.Canonical(session, 42, time, type, bytes)]));
        Assert.Equal(expected, EventChain.Hash(prev, session, 42, time, type, bytes));
        Assert.StartsWith("airlock-event-v1\n0b8f6f7e-4a54-4d55-9a53-0c5f1f8b3a11\n42\n1795000000123\n", System.Text.Encoding.UTF8.GetString(EventChain.Canonical(session, 42, time, type, bytes)), StringComparison.Ordinal);
    }
}
