using Airlock.ControlPlane.Identity;
using Airlock.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Airlock.ControlPlane.Tests;

/// <summary>The token store does not grow for ever: day-old expired or used entries go, current ones stay.</summary>
public abstract class TokenStorePrunerTests(StoreProvider provider) : StoreTestBase(provider)
{
    [Fact]
    public async Task Day_old_expired_or_redeemed_tokens_are_removed_and_current_ones_kept()
    {
        var now = DateTimeOffset.UtcNow;
        async Task<string> CreateAsync(DateTimeOffset created, TimeSpan lifetime, string status, string type) => await WithScope(async sp =>
        {
            var tokens = sp.GetRequiredService<IOpenIddictTokenManager>();
            var token = await tokens.CreateAsync(new OpenIddictTokenDescriptor
            {
                CreationDate = created, ExpirationDate = created + lifetime, Status = status, Type = type, Subject = "agent-1",
            });
            return (await tokens.GetIdAsync(token))!;
        });
        var oldExpired = await CreateAsync(now.AddDays(-2), TimeSpan.FromMinutes(15), Statuses.Valid, TokenTypeIdentifiers.AccessToken);
        var oldRedeemedCode = await CreateAsync(now.AddDays(-3), TimeSpan.FromMinutes(5), Statuses.Redeemed, TokenTypeIdentifiers.Private.AuthorizationCode);
        var current = await CreateAsync(now.AddMinutes(-5), TimeSpan.FromMinutes(15), Statuses.Valid, TokenTypeIdentifiers.AccessToken);

        var pruner = new TokenStorePruner(Services.GetRequiredService<IServiceScopeFactory>(), new FakeTimeProvider(now), NullLogger<TokenStorePruner>.Instance);
        var (removed, _) = await pruner.PruneOnceAsync(default);

        Assert.Equal(2, removed);
        var left = await WithScope(async sp =>
        {
            var tokens = sp.GetRequiredService<IOpenIddictTokenManager>();
            return new[] { oldExpired, oldRedeemedCode, current }.Select(id => tokens.FindByIdAsync(id).AsTask().Result is not null).ToList();
        });
        Assert.Equal([false, false, true], left);
    }
}

public sealed class TokenStorePrunerOnSqliteTests() : TokenStorePrunerTests(StoreProvider.Sqlite);

public sealed class TokenStorePrunerOnPostgresTests() : TokenStorePrunerTests(StoreProvider.Postgres);
