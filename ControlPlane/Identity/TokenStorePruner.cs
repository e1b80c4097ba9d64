using OpenIddict.Abstractions;

namespace Airlock.ControlPlane.Identity;

/// <summary>
/// OpenIddict keeps an entry for every token it issues (agent tokens, the authorization codes of people
/// lending agents, the authorizations behind them). Tokens live at most an hour and codes five minutes,
/// so what is a day old and expired, used or revoked is only weight: removed every hour, on every replica
/// (deleting twice is harmless).
/// </summary>
internal sealed class TokenStorePruner(IServiceScopeFactory scopes, TimeProvider time, ILogger<TokenStorePruner> logger) : BackgroundService
{
    public static readonly TimeSpan Every = TimeSpan.FromHours(1);
    public static readonly TimeSpan KeepFor = TimeSpan.FromDays(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Delay(TimeSpan.FromMinutes(1), time, stoppingToken);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var (tokens, authorizations) = await PruneOnceAsync(stoppingToken);
                if (tokens + authorizations > 0)
                    logger.LogInformation("Removed {Tokens} expired or used token entries and {Authorizations} authorizations from the store", tokens, authorizations);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning("Pruning the token store failed (tried again in an hour): {Error}", e.Message);
            }
            await Task.Delay(Every, time, stoppingToken);
        }
    }

    public async Task<(long Tokens, long Authorizations)> PruneOnceAsync(CancellationToken ct)
    {
        using var scope = scopes.CreateScope();
        var threshold = time.GetUtcNow() - KeepFor;
        var tokens = await scope.ServiceProvider.GetRequiredService<IOpenIddictTokenManager>().PruneAsync(threshold, ct);
        var authorizations = await scope.ServiceProvider.GetRequiredService<IOpenIddictAuthorizationManager>().PruneAsync(threshold, ct);
        return (tokens, authorizations);
    }
}
