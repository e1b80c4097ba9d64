using Airlock.ControlPlane.Data;
using Airlock.ControlPlane.Sessions;
using Microsoft.AspNetCore.Components;

namespace Airlock.ControlPlane.Components.Pages.Sessions;

/// <summary>Recorded sessions with filters; live sessions update as their events arrive (coalesced, 500 ms).</summary>
public partial class Sessions : ComponentBase, IDisposable
{
    [Inject] private IServiceScopeFactory Scopes { get; set; } = default!;
    [Inject] private SessionNotifier Notifier { get; set; } = default!;

    private IReadOnlyList<RecordedSession>? _sessions;
    private string? _agent;
    private string? _target;
    private string? _status;
    private DateTime? _from;
    private int _reloadPending;
    private readonly CancellationTokenSource _disposed = new();

    protected override async Task OnInitializedAsync()
    {
        Notifier.Changed += OnChanged;
        await LoadAsync();
    }

    private async Task LoadAsync()
    {
        using var scope = Scopes.CreateScope();
        var filter = new SessionFilter(Empty(_agent), Empty(_target), _status, _from is { } f ? new DateTimeOffset(DateTime.SpecifyKind(f, DateTimeKind.Utc)) : null, null, 200);
        _sessions = await scope.ServiceProvider.GetRequiredService<SessionQueries>().ListAsync(filter, _disposed.Token);
    }

    private static string? Empty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();

    private void OnChanged(IReadOnlyCollection<Guid> changed)
    {
        if (Interlocked.Exchange(ref _reloadPending, 1) == 1)
            return;
        _ = InvokeAsync(async () =>
        {
            try
            {
                await Task.Delay(500, _disposed.Token);
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

    public void Dispose()
    {
        Notifier.Changed -= OnChanged;
        _disposed.Cancel();
        _disposed.Dispose();
        GC.SuppressFinalize(this);
    }
}
