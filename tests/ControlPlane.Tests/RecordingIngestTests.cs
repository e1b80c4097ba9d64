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
}
