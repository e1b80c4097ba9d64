using Airlock.ControlPlane.Data;
using Airlock.ControlPlane.Identity;
using Airlock.ControlPlane.Policies;
using Airlock.ControlPlane.Sidecars;
using Airlock.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Airlock.ControlPlane.Tests;

/// <summary>A fresh migrated store per test, on the provider the test names, with the real services over it.</summary>
public abstract class StoreTestBase : IAsyncLifetime
{
    private TestStore? _store;
    private ServiceProvider? _services;
    private readonly StoreProvider _provider;

    protected StoreTestBase(StoreProvider provider) => _provider = provider;

    protected TestStore Store => _store!;
    protected IServiceProvider Services => _services!;

    public async Task InitializeAsync()
    {
        _store = await TestStore.CreateAsync(_provider);
        _services = ControlPlaneServices.Build(_store);
        await using var db = _store.Open();
        db.Users.Add(new ConsoleUser { Id = Guid.NewGuid(), UserName = "alice", PasswordHash = "x", Role = ConsoleRoles.Admin, CreatedAt = DateTimeOffset.UtcNow });
        await db.SaveChangesAsync();
        using var scope = Services.CreateScope();
        await scope.ServiceProvider.GetRequiredService<SnapshotSigningKeys>().EnsureKeyAsync(default);
    }

    public async Task DisposeAsync()
    {
        if (_services is not null)
            await _services.DisposeAsync();
        if (_store is not null)
            await _store.DisposeAsync();
    }

    protected async Task<T> WithScope<T>(Func<IServiceProvider, Task<T>> action)
    {
        using var scope = Services.CreateScope();
        return await action(scope.ServiceProvider);
    }

    protected Task<ApplyResult> ApplyYamlAsync(string yaml, bool dryRun = false) => WithScope(sp =>
    {
        var (doc, error) = PolicyFormat.Parse<PolicyDocument>(yaml, yaml: true);
        Assert.Null(error);
        return sp.GetRequiredService<PolicyStore>().ApplyAsync(doc!, "test", dryRun, default);
    });

    protected Task<PolicyDocument> ExportAsync() => WithScope(sp => sp.GetRequiredService<PolicyStore>().ExportAsync(default));

    protected Task<SidecarView> CreateSidecarAsync(string name) =>
        WithScope(sp => sp.GetRequiredService<SidecarService>().CreateAsync(name, null, "test", default));

    protected async Task<T> WithDb<T>(Func<AirlockDbContext, Task<T>> action)
    {
        await using var db = Store.Open();
        return await action(db);
    }
}
