using Airlock.ControlPlane.Data;
using Airlock.ControlPlane.Sessions;
using Airlock.Testing;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Airlock.ControlPlane.Tests;

public sealed class RetentionTests : IAsyncLifetime
{
    private TestStore? _store;
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 25, 0, 0, 0, TimeSpan.Zero));

    public async Task InitializeAsync() => _store = await TestStore.CreateAsync(StoreProvider.Sqlite);

    public async Task DisposeAsync()
    {
        if (_store is not null)
            await _store.DisposeAsync();
    }

    private async Task<Guid> AddSessionAsync(DateTimeOffset? endedAt)
    {
        await using var db = _store!.Open();
        var id = Guid.NewGuid();
        db.Sessions.Add(new RecordedSession { Id = id, SidecarId = Guid.NewGuid(), StartedAt = _time.GetUtcNow().AddDays(-200), EndedAt = endedAt, Status = endedAt is null ? "live" : "ended", EventCount = 1 });
        db.SessionSegments.Add(new SessionSegment { SessionId = id, FirstSeq = 1, LastSeq = 1, Records = [1, 2, 3] });
        db.SessionHeads.Add(new SessionHead { SessionId = id, Seq = 1, Hash = "1", Signature = [1] });
        await db.SaveChangesAsync();
        return id;
    }

    [Fact]
    public async Task Sessions_that_ended_before_the_retention_period_are_purged_and_the_purge_is_audited()
    {
        var old = await AddSessionAsync(_time.GetUtcNow().AddDays(-91));
        var recent = await AddSessionAsync(_time.GetUtcNow().AddDays(-89));
        var live = await AddSessionAsync(null);
        using var services = new ServiceCollection().AddControlPlaneCore(_store!, _time).BuildServiceProvider();
        var purger = new RetentionPurger(services.GetRequiredService<IServiceScopeFactory>(), Options.Create(new RecordingOptions { RetentionDays = 90 }), _time, NullLogger<RetentionPurger>.Instance);

        Assert.Equal(1, await purger.PurgeAsync(default));
        await using var db = _store!.Open();
        Assert.Equal(new[] { live, recent }.Order(), (await db.Sessions.Select(s => s.Id).ToListAsync()).Order());
        Assert.False(await db.SessionSegments.AnyAsync(e => e.SessionId == old));
        Assert.False(await db.SessionHeads.AnyAsync(e => e.SessionId == old));
        Assert.Equal(2, await db.SessionSegments.CountAsync());
        var audit = await db.AuditLog.SingleAsync(a => a.Action == "purge");
        Assert.Equal("retention", audit.Actor);
        Assert.Contains("\"sessions\":1", audit.After, StringComparison.Ordinal);
        Assert.Equal(0, await purger.PurgeAsync(default));
    }
}
