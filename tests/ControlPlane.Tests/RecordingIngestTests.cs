using System.Security.Cryptography;
using Airlock.ControlPlane.Data;
using Airlock.ControlPlane.Sessions;
using Airlock.Contracts.Hubs;
using Airlock.Contracts.Recording;
using Airlock.Testing;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.ControlPlane.Tests;

public sealed class RecordingIngestOnSqliteTests() : RecordingIngestTests(StoreProvider.Sqlite);

public sealed class RecordingIngestOnPostgresTests() : RecordingIngestTests(StoreProvider.Postgres);

/// <summary>Ingest over a real store: idempotence, continuity, ownership, signatures.</summary>
public abstract class RecordingIngestTests(StoreProvider provider) : IAsyncLifetime
{
    private TestStore? _store;
    private readonly ECDsa _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private readonly Guid _sidecar = Guid.NewGuid();
    private readonly Guid _otherSidecar = Guid.NewGuid();
    private readonly Guid _session = Guid.NewGuid();

    public async Task InitializeAsync()
    {
        _store = await TestStore.CreateAsync(provider);
        await using var db = _store.Open();
        db.Sidecars.Add(new Data.Sidecar { Id = _sidecar, Name = "edge-1", SigningPublicKey = _key.ExportSubjectPublicKeyInfo(), CreatedAt = DateTimeOffset.UtcNow });
        db.Sidecars.Add(new Data.Sidecar { Id = _otherSidecar, Name = "edge-2", SigningPublicKey = _key.ExportSubjectPublicKeyInfo(), CreatedAt = DateTimeOffset.UtcNow });
        // edge-1 serves target "orders", which role "deployer" grants to agent "ci".
        db.Targets.Add(new Target { Id = Guid.NewGuid(), Name = "orders", Kind = "postgres", SidecarId = _sidecar, ListenPort = 6432, UpstreamHost = "db" });
        var role = new Role { Id = Guid.NewGuid(), Name = "deployer", Grants = [new GrantData("orders", null)] };
        db.Roles.Add(role);
        db.Agents.Add(new Agent { Id = Guid.NewGuid(), Name = "ci", Owner = "admin", RoleId = role.Id, CreatedAt = DateTimeOffset.UtcNow });
        await db.SaveChangesAsync();
    }

    public async Task DisposeAsync()
    {
        _key.Dispose();
        if (_store is not null)
            await _store.DisposeAsync();
    }

    private List<RecordingEvent> Events(int statements)
    {
        var list = new List<RecordingEvent>();
        RecordingEvent? last = null;
        void Add(string type, byte[] payload) => list.Add(last = EventChain.Next(last, _session, DateTimeOffset.UtcNow, type, payload));
        Add(RecordingEventTypes.SessionStart, RecordingJson.Encode(new SessionStartPayload("ci", "deployer", "orders", "edge-1", "127.0.0.1:1", false)));
        for (var i = 0; i < statements; i++)
            Add(RecordingEventTypes.Statement, RecordingJson.Encode(new StatementPayload($"SELECT {i}", [], "read", "allow", null, 1, 1, null)));
        Add(RecordingEventTypes.SessionEnd, RecordingJson.Encode(new SessionEndPayload("client")));
        return list;
    }

    /// <summary>Uploads the events as the sidecar does: per session, one segment of their records.</summary>
    private Task<RecordingAck> IngestAsync(Guid sidecar, IReadOnlyList<RecordingEvent> events, IReadOnlyList<ChainHeadSignature>? heads = null) =>
        IngestAsync(sidecar, events.GroupBy(e => e.Session).Select(g => new RecordingSegment(g.Key, [.. g.SelectMany(RecordCodec.Encode)])).ToList(), heads);

    private async Task<RecordingAck> IngestAsync(Guid sidecar, IReadOnlyList<RecordingSegment> segments, IReadOnlyList<ChainHeadSignature>? heads = null)
    {
        await using var db = _store!.Open();
        return await new RecordingIngest(db, new SessionNotifier(), NullLogger<RecordingIngest>.Instance)
            .IngestAsync(sidecar, new RecordingBatch(segments, heads ?? []), default);
    }

    private async Task<IReadOnlyList<RecordingEvent>> StoredAsync()
    {
        await using var db = _store!.Open();
        return (await new SessionQueries(db).ExportAsync(_session, TimeProvider.System, default))!.Events;
    }

    private static void AssertSame(IReadOnlyList<RecordingEvent> expected, IReadOnlyList<RecordingEvent> stored)
    {
        Assert.Equal(expected.Select(e => (e.Seq, e.Time, e.Type, e.PrevHash, e.Hash)), stored.Select(e => (e.Seq, e.Time, e.Type, e.PrevHash, e.Hash)));
        Assert.Equal(expected.Select(e => Convert.ToHexString(e.Payload)), stored.Select(e => Convert.ToHexString(e.Payload)));
    }

    private async Task<RecordedSession> SessionAsync()
    {
        await using var db = _store!.Open();
        return await db.Sessions.SingleAsync(s => s.Id == _session);
    }

    [Fact]
    public async Task Heartbeat_counts_add_up_per_hour_and_outcome_and_negative_ones_are_ignored()
    {
        var hour = Sessions.StatementTally.HourOf(DateTimeOffset.UtcNow);
        await using (var db = _store!.Open())
        {
            await Sessions.StatementTally.AddAsync(db, hour, new StatementCounts(4, 1, 1, 0), default);
            await Sessions.StatementTally.AddAsync(db, hour, new StatementCounts(2, 0, -50, 1), default); // a second sidecar, the same hour
            await Sessions.StatementTally.AddAsync(db, hour + 1, new StatementCounts(7, 0, 0, 0), default);
        }
        await using var read = _store!.Open();
        var counts = await read.StatementStats.ToDictionaryAsync(s => (s.Hour, s.Outcome), s => s.Count);
        Assert.Equal(6, counts[(hour, StatementOutcome.Allowed)]);
        Assert.Equal(1, counts[(hour, StatementOutcome.Masked)]);
        Assert.Equal(1, counts[(hour, StatementOutcome.Blocked)]);
        Assert.Equal(1, counts[(hour, StatementOutcome.Held)]);
        Assert.Equal(7, counts[(hour + 1, StatementOutcome.Allowed)]);
        Assert.Equal(5, counts.Count);
    }

    [Fact]
    public async Task Batches_in_any_split_and_duplicates_store_each_event_once()
    {
        var events = Events(10);
        var first = await IngestAsync(_sidecar, events.Take(5).ToList());
        Assert.Equal(5, first.StoredThrough[_session]);
        Assert.Empty(first.Refused!);
        Assert.Equal(5, (await IngestAsync(_sidecar, events.Take(5).ToList())).StoredThrough[_session]);
        Assert.Equal(12, (await IngestAsync(_sidecar, events.Skip(3).ToList(), [EventChain.SignHead(events[^1], _key)])).StoredThrough[_session]);
        var session = await SessionAsync();
        Assert.Equal((12L, 10L, "ended", "verified"), (session.EventCount, session.StatementCount, session.Status, session.Verification));
        AssertSame(events, await StoredAsync());
        await using var db = _store!.Open();
        // Three uploads stored three segments: 1–5, then 6–12 (the repeated 1–5 and 4–5 added nothing).
        Assert.Equal([(1L, 5L), (6L, 12L)], (await db.SessionSegments.Where(s => s.SessionId == _session).OrderBy(s => s.FirstSeq).ToListAsync()).Select(s => (s.FirstSeq, s.LastSeq)));
    }

    [Fact]
    public async Task Only_a_signed_end_makes_a_session_verified_a_cut_one_is_incomplete()
    {
        var events = Events(10);
        // Cut after a signed flush: every stored event verifies, yet the session is not whole.
        await IngestAsync(_sidecar, events.Take(6).ToList(), [EventChain.SignHead(events[5], _key)]);
        Assert.Equal((SessionVerification.Incomplete, 6L), ((await SessionAsync()).Verification, (await SessionAsync()).SignedThrough));
        // The end arrives, not yet covered by a signature: still incomplete.
        await IngestAsync(_sidecar, events);
        Assert.Equal(SessionVerification.Incomplete, (await SessionAsync()).Verification);
        await IngestAsync(_sidecar, events, [EventChain.SignHead(events[^1], _key)]);
        Assert.Equal(SessionVerification.Verified, (await SessionAsync()).Verification);
        await using var db = _store!.Open();
        Assert.Equal(SessionVerification.Verified, (await new SessionQueries(db).VerifyAsync(_session, default))!.Status);
    }

    [Fact]
    public async Task A_cut_session_verifies_again_as_incomplete_never_verified()
    {
        var events = Events(4).Take(4).ToList();
        await IngestAsync(_sidecar, events, [EventChain.SignHead(events[^1], _key)]);
        await using var db = _store!.Open();
        var verdict = (await new SessionQueries(db).VerifyAsync(_session, default))!;
        Assert.True(verdict.Verifies);
        Assert.Equal(SessionVerification.Incomplete, verdict.Status);
    }

    [Fact]
    public async Task An_event_type_this_version_does_not_know_is_stored_as_it_is()
    {
        var events = Events(2);
        var future = EventChain.Next(events[1], _session, DateTimeOffset.UtcNow, "approval.v2", "{\"request\":7}"u8.ToArray());
        var end = EventChain.Next(future, _session, DateTimeOffset.UtcNow, RecordingEventTypes.SessionEnd, RecordingJson.Encode(new SessionEndPayload("client")));
        List<RecordingEvent> chain = [events[0], events[1], future, end];
        var ack = await IngestAsync(_sidecar, chain, [EventChain.SignHead(end, _key)]);
        Assert.Equal(4, ack.StoredThrough[_session]);
        Assert.Empty(ack.Refused!);
        Assert.Equal(SessionVerification.Verified, (await SessionAsync()).Verification);
        await using var db = _store!.Open();
        var views = await new SessionQueries(db).EventsAsync(_session, 0, 10, default);
        Assert.Equal("approval.v2", views[2].Type);
        Assert.Equal(7, views[2].Payload.GetProperty("request").GetInt32());
    }

    [Fact]
    public async Task A_session_of_a_target_the_sidecar_does_not_serve_is_stored_and_marked_not_attributable()
    {
        // edge-2 serves nothing: its session "on orders" is kept as evidence, but not believed.
        var events = Events(1);
        var ack = await IngestAsync(_otherSidecar, events, [EventChain.SignHead(events[^1], _key)]);
        Assert.Equal(3, ack.StoredThrough[_session]);
        Assert.Equal("sidecar 'edge-2' does not serve target 'orders'", (await SessionAsync()).AttributionProblem);

        // The same from edge-1, which serves orders for agent ci: attributable.
        var own = Guid.NewGuid();
        var start = EventChain.Next(null, own, DateTimeOffset.UtcNow, RecordingEventTypes.SessionStart, RecordingJson.Encode(new SessionStartPayload("ci", "deployer", "orders", "edge-1", "127.0.0.1:1", false)));
        await IngestAsync(_sidecar, [start]);
        var stranger = Guid.NewGuid();
        var unknown = EventChain.Next(null, stranger, DateTimeOffset.UtcNow, RecordingEventTypes.SessionStart, RecordingJson.Encode(new SessionStartPayload("intruder", "deployer", "orders", "edge-1", "127.0.0.1:1", false)));
        await IngestAsync(_sidecar, [unknown]);
        await using var db = _store!.Open();
        Assert.Null((await db.Sessions.SingleAsync(s => s.Id == own)).AttributionProblem);
        Assert.Contains("agent 'intruder' is not one sidecar 'edge-1' knows", (await db.Sessions.SingleAsync(s => s.Id == stranger)).AttributionProblem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_later_session_start_cannot_re_attribute_a_session()
    {
        // Event 1 names what edge-1 serves; a "start" at event 3 naming another target is kept as
        // evidence but changes neither the session's agent and target nor its attribution.
        var events = Events(1).Take(2).ToList();
        var forged = EventChain.Next(events[1], _session, DateTimeOffset.UtcNow, RecordingEventTypes.SessionStart,
            RecordingJson.Encode(new SessionStartPayload("billing-bot", "other", "billing", "edge-1", "127.0.0.1:1", false)));
        await IngestAsync(_sidecar, [.. events, forged]);
        var session = await SessionAsync();
        Assert.Equal((3L, "ci", "orders"), (session.LastSeq, session.Agent, session.Target));
        Assert.Null(session.AttributionProblem);
    }

    [Fact]
    public async Task Re_enrolling_or_deleting_the_sidecar_leaves_its_sessions_verifiable_and_exportable()
    {
        var events = Events(3);
        await IngestAsync(_sidecar, events, [EventChain.SignHead(events[^1], _key)]);
        await using (var db = _store!.Open())
        {
            // Re-enrolled: a new key.
            using var newKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var sidecar = await db.Sidecars.SingleAsync(s => s.Id == _sidecar);
            sidecar.SigningPublicKey = newKey.ExportSubjectPublicKeyInfo();
            await db.SaveChangesAsync();
            Assert.Equal(SessionVerification.Verified, (await new SessionQueries(db).VerifyAsync(_session, default))!.Status);
            // Deleted.
            await db.Targets.Where(t => t.SidecarId == _sidecar).ExecuteDeleteAsync();
            await db.Sidecars.Where(s => s.Id == _sidecar).ExecuteDeleteAsync();
        }
        await using (var db = _store!.Open())
        {
            var queries = new SessionQueries(db);
            Assert.Equal(SessionVerification.Verified, (await queries.VerifyAsync(_session, default))!.Status);
            var bundle = (await queries.ExportAsync(_session, TimeProvider.System, default))!;
            Assert.Equal("edge-1", bundle.Sidecar);
            Assert.True(bundle.Verify().Verifies);
            using var streamed = new AsyncOnlyStream();
            Assert.True(await queries.WriteExportAsync(_session, streamed, TimeProvider.System, default));
            streamed.Position = 0;
            var read = SessionBundle.Read(streamed)!;
            Assert.Equal((SessionVerification.Verified, 5L), (read.Verify().Status, read.Verify().Events));
        }
    }

    [Fact]
    public async Task A_batch_of_many_events_is_stored_whole_and_read_back_as_sent()
    {
        // 3,002 events in one upload: stored in segments of at most SegmentBytes, read back as sent.
        var events = Events(3000);
        Assert.Equal(3002, (await IngestAsync(_sidecar, events, [EventChain.SignHead(events[^1], _key)])).StoredThrough[_session]);
        AssertSame(events, await StoredAsync());
        Assert.Equal("verified", (await SessionAsync()).Verification);
        await using var db = _store!.Open();
        var segments = await db.SessionSegments.Where(s => s.SessionId == _session).OrderBy(s => s.FirstSeq).ToListAsync();
        Assert.True(segments.Count > 1);
        Assert.All(segments, s => Assert.InRange(s.Records.Length, 1, RecordingIngest.SegmentBytes));
        Assert.Equal(Enumerable.Range(1, 3002).Select(i => (long)i), segments.SelectMany(s => RecordCodec.Decode(s.Records).Records.Select(r => r.Event!.Seq)));
        Assert.All(segments, s => Assert.Equal((s.FirstSeq, s.LastSeq), (RecordCodec.Decode(s.Records).Records[0].Event!.Seq, RecordCodec.Decode(s.Records).Records[^1].Event!.Seq)));
    }

    [Fact]
    public async Task A_gap_is_acknowledged_only_up_to_the_gap()
    {
        var events = Events(10);
        var ack = await IngestAsync(_sidecar, events.Take(3).Concat(events.Skip(6)).ToList());
        Assert.Equal(3, ack.StoredThrough[_session]);
        Assert.False(ack.Refused!.ContainsKey(_session)); // not a refusal: the rest arrives with a later upload
    }

    [Fact]
    public async Task An_upload_that_does_not_start_at_a_new_sessions_first_event_is_not_stored_and_the_ack_says_why()
    {
        var events = Events(10);
        var ack = await IngestAsync(_sidecar, events.Skip(4).ToList());
        Assert.False(ack.StoredThrough.ContainsKey(_session));
        Assert.Equal($"the control plane has no events of session {_session}, and the upload does not start at its first event", ack.Refused![_session]);
        await using var db = _store!.Open();
        Assert.False(await db.Sessions.AnyAsync(s => s.Id == _session));
    }

    [Fact]
    public async Task An_event_that_does_not_follow_the_chain_is_refused_and_marks_the_break()
    {
        var events = Events(5);
        var forged = events[3] with { Payload = RecordingJson.Encode(new StatementPayload("DROP TABLE x", [], "ddl", "allow", null, 1, 0, null)) };
        var ack = await IngestAsync(_sidecar, events.Take(3).Append(forged).Concat(events.Skip(4)).ToList());
        Assert.Equal(3, ack.StoredThrough[_session]);
        Assert.Equal("chain broken at event 4: its content does not match its hash", ack.Refused![_session]);
        var session = await SessionAsync();
        Assert.Equal(("broken", 4L), (session.Verification, session.BrokenAt));
    }

    [Fact]
    public async Task Another_sidecar_cannot_write_into_the_session()
    {
        var events = Events(5);
        await IngestAsync(_sidecar, events.Take(3).ToList());
        var ack = await IngestAsync(_otherSidecar, events.Skip(3).ToList());
        Assert.False(ack.StoredThrough.ContainsKey(_session));
        Assert.Equal($"session {_session} was recorded by another sidecar", ack.Refused![_session]);
        Assert.Equal(3, (await SessionAsync()).LastSeq);
    }

    [Fact]
    public async Task A_head_signed_by_a_key_other_than_the_enrolled_one_marks_the_session_broken()
    {
        using var other = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var events = Events(2);
        var ack = await IngestAsync(_sidecar, events, [EventChain.SignHead(events[^1], other)]);
        Assert.Equal("signed head at event 4 does not verify with the sidecar's key", ack.Refused![_session]);
        var session = await SessionAsync();
        Assert.Equal("broken", session.Verification);
        Assert.Contains("does not verify", session.VerificationDetail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_large_payload_is_stored_in_a_segment_of_its_own_read_back_whole_verified_and_a_tampered_byte_is_detected()
    {
        // A result chunk of 3 MiB: one row of its own, read back byte for byte.
        var rows = Enumerable.Range(0, 30_000).Select(i => (IReadOnlyList<string?>)[new string((char)('a' + i % 26), 100)]).ToList();
        var large = RecordingJson.Encode(new ResultChunkPayload(1, ["filler"], rows, false));
        Assert.True(large.Length > 3_000_000);
        var list = new List<RecordingEvent>();
        RecordingEvent? last = null;
        void Add(string type, byte[] payload) => list.Add(last = EventChain.Next(last, _session, DateTimeOffset.UtcNow, type, payload));
        Add(RecordingEventTypes.SessionStart, RecordingJson.Encode(new SessionStartPayload("ci", "deployer", "orders", "edge-1", "127.0.0.1:1", false)));
        Add(RecordingEventTypes.Statement, RecordingJson.Encode(new StatementPayload("SELECT filler FROM big", [], "read", "allow", null, 1, 30_000, null)));
        Add(RecordingEventTypes.ResultChunk, large);
        Add(RecordingEventTypes.SessionEnd, RecordingJson.Encode(new SessionEndPayload("client")));
        Assert.Equal(4, (await IngestAsync(_sidecar, list, [EventChain.SignHead(list[^1], _key)])).StoredThrough[_session]);
        Assert.Equal("verified", (await SessionAsync()).Verification);

        await using (var db = _store!.Open())
        {
            Assert.Equal([(1L, 2L), (3L, 3L), (4L, 4L)], (await db.SessionSegments.Where(s => s.SessionId == _session).OrderBy(s => s.FirstSeq).ToListAsync()).Select(s => (s.FirstSeq, s.LastSeq)));
            var queries = new SessionQueries(db);
            var bundle = await queries.ExportAsync(_session, TimeProvider.System, default);
            Assert.Equal(large, bundle!.Events[2].Payload);
            Assert.True((await queries.VerifyAsync(_session, default))!.Verifies);
            var events = await queries.EventsAsync(_session, 2, 1, default);
            Assert.Equal(30_000, events[0].Payload.GetProperty("rows").GetArrayLength());
        }

        // Someone edits one byte of the stored payload: the event no longer matches its hash.
        await using (var db = _store!.Open())
        {
            var segment = await db.SessionSegments.SingleAsync(s => s.SessionId == _session && s.FirstSeq == 3);
            var edited = segment.Records.ToArray();
            edited[^2] = (byte)'Z';
            segment.Records = edited;
            await db.SaveChangesAsync();
            var verdict = await new SessionQueries(db).VerifyAsync(_session, default);
            Assert.Equal(3, verdict!.BrokenAt);
            Assert.Contains("does not match its hash", verdict.Reason, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_damaged_record_stops_the_session_there_and_marks_the_break()
    {
        // A byte flipped in transit or by a faulty sidecar: the checksum catches it before anything is stored.
        var events = Events(5);
        var records = events.SelectMany(RecordCodec.Encode).ToArray();
        var third = RecordCodec.Encode(events[0]).Length + RecordCodec.Encode(events[1]).Length;
        records[third + 40] ^= 0xFF;
        var ack = await IngestAsync(_sidecar, [new RecordingSegment(_session, records)]);
        Assert.Equal(2, ack.StoredThrough[_session]);
        var session = await SessionAsync();
        Assert.Equal(("broken", 3L), (session.Verification, session.BrokenAt));
        Assert.Contains("damaged", session.VerificationDetail, StringComparison.Ordinal);
        Assert.Equal(2, (await StoredAsync()).Count);
    }

    [Fact]
    public async Task Records_of_another_session_inside_a_segment_are_refused()
    {
        var events = Events(3);
        var foreign = EventChain.Next(events[1], Guid.NewGuid(), DateTimeOffset.UtcNow, RecordingEventTypes.Notice, RecordingJson.Encode(new NoticePayload("NOTICE", "x")));
        var ack = await IngestAsync(_sidecar, [new RecordingSegment(_session, [.. events.Take(2).Append(foreign).SelectMany(RecordCodec.Encode)])]);
        Assert.Equal(2, ack.StoredThrough[_session]);
        Assert.Contains("names session", (await SessionAsync()).VerificationDetail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Events_stored_in_the_first_layout_move_into_segments_unchanged_and_still_verify()
    {
        // Rows as the first layout stored them: one per event, a large payload in parts.
        var events = Events(7);
        var large = new byte[700_000];
        Random.Shared.NextBytes(large);
        events.Insert(events.Count - 1, EventChain.Next(events[^2], _session, DateTimeOffset.UtcNow, RecordingEventTypes.ResultChunk, large));
        events[^1] = EventChain.Next(events[^2], _session, events[^1].Time, events[^1].Type, events[^1].Payload);
        await using (var db = _store!.Open())
        {
            db.Sessions.Add(new RecordedSession { Id = _session, SidecarId = _sidecar, StartedAt = events[0].Time, LastSeq = events[^1].Seq, LastHash = events[^1].Hash, EventCount = events.Count });
            foreach (var e in events)
            {
                var parts = e.Payload.Length > 256 * 1024 ? e.Payload.Chunk(256 * 1024).ToList() : [];
                db.SessionEvents.Add(new SessionEvent { SessionId = _session, Seq = e.Seq, Time = e.Time, Type = e.Type, Payload = parts.Count > 0 ? [] : e.Payload, PayloadChunks = parts.Count, PrevHash = e.PrevHash, Hash = e.Hash });
                for (var i = 0; i < parts.Count; i++)
                    db.SessionEventChunks.Add(new SessionEventChunk { SessionId = _session, Seq = e.Seq, Index = i, Data = parts[i] });
            }
            db.SessionHeads.Add(new SessionHead { SessionId = _session, Seq = events[^1].Seq, Hash = events[^1].Hash, Signature = EventChain.SignHead(events[^1], _key).Signature });
            await db.SaveChangesAsync();
        }

        await using (var db = _store!.Open())
        {
            Assert.Equal(events.Count, await LegacyEventUpgrade.RunAsync(db, NullLogger.Instance, default));
            Assert.Equal(0, await LegacyEventUpgrade.RunAsync(db, NullLogger.Instance, default));
            Assert.False(await db.SessionEvents.AnyAsync());
            Assert.False(await db.SessionEventChunks.AnyAsync());
            var verdict = await new SessionQueries(db).VerifyAsync(_session, default);
            Assert.True(verdict!.Verifies, verdict.Reason);
            Assert.Equal(events.Count, verdict.SignedThrough);
        }
        AssertSame(events, await StoredAsync());
    }

    [Fact]
    public async Task A_payload_over_the_limit_is_refused_and_marks_the_break()
    {
        var list = new List<RecordingEvent>();
        RecordingEvent? last = null;
        void Add(string type, byte[] payload) => list.Add(last = EventChain.Next(last, _session, DateTimeOffset.UtcNow, type, payload));
        Add(RecordingEventTypes.SessionStart, RecordingJson.Encode(new SessionStartPayload("ci", "deployer", "orders", "edge-1", "127.0.0.1:1", false)));
        Add(RecordingEventTypes.Notice, new byte[RecordingIngest.MaxPayloadBytes + 1]);
        Assert.Equal(1, (await IngestAsync(_sidecar, list)).StoredThrough[_session]);
        var session = await SessionAsync();
        Assert.Equal(("broken", 2L), (session.Verification, session.BrokenAt));
    }

    /// <summary>Like a response body: synchronous writes are not allowed.</summary>
    private sealed class AsyncOnlyStream : MemoryStream
    {
        private bool _inAsyncWrite;

        public override void Write(byte[] buffer, int offset, int count)
        {
            if (!_inAsyncWrite)
                throw new InvalidOperationException("synchronous write");
            base.Write(buffer, offset, count);
        }

        public override void Write(ReadOnlySpan<byte> buffer) => Write(buffer.ToArray(), 0, buffer.Length);

        public override void Flush() => throw new InvalidOperationException("synchronous flush");

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            _inAsyncWrite = true;
            Write(buffer.ToArray(), 0, buffer.Length);
            _inAsyncWrite = false;
            return ValueTask.CompletedTask;
        }
    }
}
