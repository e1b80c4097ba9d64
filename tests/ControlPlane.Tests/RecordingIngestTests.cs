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

    private async Task<RecordingAck> IngestAsync(Guid sidecar, IReadOnlyList<RecordingEvent> events, IReadOnlyList<ChainHeadSignature>? heads = null)
    {
        await using var db = _store!.Open();
        return await new RecordingIngest(db, new SessionNotifier(), NullLogger<RecordingIngest>.Instance)
            .IngestAsync(sidecar, new RecordingBatch(events, heads ?? []), default);
    }

    private async Task<RecordedSession> SessionAsync()
    {
        await using var db = _store!.Open();
        return await db.Sessions.SingleAsync(s => s.Id == _session);
    }

    [Fact]
    public async Task Batches_in_any_split_and_duplicates_store_each_event_once()
    {
        var events = Events(10);
        Assert.Equal(5, (await IngestAsync(_sidecar, events.Take(5).ToList())).StoredThrough[_session]);
        Assert.Equal(5, (await IngestAsync(_sidecar, events.Take(5).ToList())).StoredThrough[_session]);
        Assert.Equal(12, (await IngestAsync(_sidecar, events.Skip(3).ToList(), [EventChain.SignHead(events[^1], _key)])).StoredThrough[_session]);
        var session = await SessionAsync();
        Assert.Equal((12L, 10L, "ended", "verified"), (session.EventCount, session.StatementCount, session.Status, session.Verification));
        await using var db = _store!.Open();
        Assert.Equal(12, await db.SessionEvents.CountAsync(e => e.SessionId == _session));
        // Rows are written outside EF's change tracker (COPY / prepared INSERT): EF must read them back as they were.
        var stored = await db.SessionEvents.Where(e => e.SessionId == _session && e.Time >= events[0].Time).OrderBy(e => e.Seq).ToListAsync();
        Assert.Equal(events.Select(e => (e.Seq, e.Time, e.Type, e.PrevHash, e.Hash)), stored.Select(e => (e.Seq, e.Time, e.Type, e.PrevHash, e.Hash)));
        Assert.Equal(events.Select(e => Convert.ToHexString(e.Payload)), stored.Select(e => Convert.ToHexString(e.Payload)));
    }

    [Fact]
    public async Task A_batch_of_many_events_is_stored_whole_and_read_back_as_sent()
    {
        // 102 events in one upload: every row stored (COPY on PostgreSQL, the prepared INSERT on SQLite) and read back through EF.
        var events = Events(100);
        Assert.Equal(102, (await IngestAsync(_sidecar, events, [EventChain.SignHead(events[^1], _key)])).StoredThrough[_session]);
        await using var db = _store!.Open();
        var stored = await db.SessionEvents.Where(e => e.SessionId == _session).OrderBy(e => e.Seq).ToListAsync();
        Assert.Equal(events.Select(e => (e.Seq, e.Time, e.Type, e.PrevHash, e.Hash)), stored.Select(e => (e.Seq, e.Time, e.Type, e.PrevHash, e.Hash)));
        Assert.Equal(events.Select(e => Convert.ToHexString(e.Payload)), stored.Select(e => Convert.ToHexString(e.Payload)));
        Assert.Equal("verified", (await SessionAsync()).Verification);
    }

    [Fact]
    public async Task A_gap_is_acknowledged_only_up_to_the_gap()
    {
        var events = Events(10);
        Assert.Equal(3, (await IngestAsync(_sidecar, events.Take(3).Concat(events.Skip(6)).ToList())).StoredThrough[_session]);
    }

    [Fact]
    public async Task An_event_that_does_not_follow_the_chain_is_refused_and_marks_the_break()
    {
        var events = Events(5);
        var forged = events[3] with { Payload = RecordingJson.Encode(new StatementPayload("DROP TABLE x", [], "ddl", "allow", null, 1, 0, null)) };
        var ack = await IngestAsync(_sidecar, events.Take(3).Append(forged).Concat(events.Skip(4)).ToList());
        Assert.Equal(3, ack.StoredThrough[_session]);
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
        Assert.Equal(3, (await SessionAsync()).LastSeq);
    }

    [Fact]
    public async Task A_head_signed_by_a_key_other_than_the_enrolled_one_marks_the_session_broken()
    {
        using var other = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var events = Events(2);
        await IngestAsync(_sidecar, events, [EventChain.SignHead(events[^1], other)]);
        var session = await SessionAsync();
        Assert.Equal("broken", session.Verification);
        Assert.Contains("does not verify", session.VerificationDetail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_large_payload_is_stored_in_chunks_read_back_whole_verified_and_a_tampered_chunk_is_detected()
    {
        // A result chunk of 3 MiB: stored in 256 KiB parts, read back byte for byte.
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
            Assert.Equal((large.Length + RecordingIngest.ChunkBytes - 1) / RecordingIngest.ChunkBytes, await db.SessionEventChunks.CountAsync(c => c.SessionId == _session && c.Seq == 3));
            Assert.Empty((await db.SessionEvents.SingleAsync(e => e.SessionId == _session && e.Seq == 3)).Payload);
            var queries = new SessionQueries(db);
            var bundle = await queries.ExportAsync(_session, TimeProvider.System, default);
            Assert.Equal(large, bundle!.Events[2].Payload);
            Assert.True((await queries.VerifyAsync(_session, default))!.Verifies);
            var events = await queries.EventsAsync(_session, 2, 1, default);
            Assert.Equal(30_000, events[0].Payload.GetProperty("rows").GetArrayLength());
        }

        // Someone edits one part in the database: the event no longer matches its hash.
        await using (var db = _store!.Open())
        {
            var part = await db.SessionEventChunks.SingleAsync(c => c.SessionId == _session && c.Seq == 3 && c.Index == 5);
            part.Data = [.. part.Data.Take(part.Data.Length - 1), (byte)'Z'];
            await db.SaveChangesAsync();
            var verdict = await new SessionQueries(db).VerifyAsync(_session, default);
            Assert.Equal(3, verdict!.BrokenAt);
        }
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
}
