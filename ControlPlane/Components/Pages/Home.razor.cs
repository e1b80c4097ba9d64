using Airlock.ControlPlane.Sessions;
using Airlock.ControlPlane.Sidecars;
using Microsoft.AspNetCore.Components;
using MudBlazor;

namespace Airlock.ControlPlane.Components.Pages;

/// <summary>
/// The dashboard. It reloads when a sidecar's presence changes, when a recording is stored (new
/// statements, sessions opening and closing) and every 5 s besides (approvals, audit); bursts are
/// coalesced into one reload at most every 500 ms.
/// </summary>
public partial class Home : ComponentBase, IDisposable
{
    private static readonly TimeSpan Coalesce = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan Period = TimeSpan.FromSeconds(5);

    [Inject] private IServiceScopeFactory Scopes { get; set; } = default!;
    [Inject] private SidecarPresence Presence { get; set; } = default!;
    [Inject] private SessionNotifier Sessions { get; set; } = default!;

    private Dashboard? _dashboard;

    /// <summary>allowed, masked, blocked, held: readable on light and dark.</summary>
    private readonly ChartOptions _chartOptions = new() { ChartPalette = ["#43a047", "#1e88e5", "#e53935", "#fb8c00"] };
    private int _reloadPending;
    private readonly CancellationTokenSource _disposed = new();

    protected override async Task OnInitializedAsync()
    {
        Presence.Changed += OnChanged;
        Sessions.Changed += OnSessionsChanged;
        await LoadAsync();
        _ = RefreshPeriodicallyAsync();
    }

    private async Task LoadAsync()
    {
        using var scope = Scopes.CreateScope();
        _dashboard = await scope.ServiceProvider.GetRequiredService<DashboardQueries>().LoadAsync(_disposed.Token);
    }

    private async Task RefreshPeriodicallyAsync()
    {
        using var timer = new PeriodicTimer(Period);
        try
        {
            while (await timer.WaitForNextTickAsync(_disposed.Token))
                OnChanged();
        }
        catch (OperationCanceledException)
        {
            // page closed
        }
    }

    private void OnSessionsChanged(IReadOnlyCollection<Guid> _) => OnChanged();

    private void OnChanged()
    {
        if (_disposed.IsCancellationRequested || Interlocked.Exchange(ref _reloadPending, 1) == 1)
            return;
        _ = InvokeAsync(async () =>
        {
            try
            {
                await Task.Delay(Coalesce, _disposed.Token);
                Interlocked.Exchange(ref _reloadPending, 0);
                await LoadAsync();
                StateHasChanged();
            }
            catch (OperationCanceledException)
            {
                // page closed
            }
        });
    }

    private static List<ChartSeries<double>> Series(Dashboard d) =>
    [
        new() { Name = "allowed", Data = d.Last24Hours.Select(h => (double)h.Allowed).ToArray() },
        new() { Name = "masked", Data = d.Last24Hours.Select(h => (double)h.Masked).ToArray() },
        new() { Name = "blocked", Data = d.Last24Hours.Select(h => (double)h.Blocked).ToArray() },
        new() { Name = "held", Data = d.Last24Hours.Select(h => (double)h.Held).ToArray() },
    ];

    private static string[] Labels(Dashboard d) =>
        d.Last24Hours.Select((h, i) => i % 3 == 0 ? h.Hour.UtcDateTime.ToString("HH:00") : "").ToArray();

    public void Dispose()
    {
        Presence.Changed -= OnChanged;
        Sessions.Changed -= OnSessionsChanged;
        _disposed.Cancel();
        _disposed.Dispose();
        GC.SuppressFinalize(this);
    }
}
