using Airlock.ControlPlane.Sidecars;
using Microsoft.AspNetCore.Components;
using MudBlazor;

namespace Airlock.ControlPlane.Components.Pages.Sidecars;

/// <summary>
/// Live sidecar status. Presence changes (connect, heartbeat, acknowledgement) arrive as events
/// from <see cref="SidecarPresence"/>; bursts are coalesced into one reload at most every 250 ms.
/// </summary>
public partial class Sidecars : ComponentBase, IDisposable
{
    private static readonly TimeSpan _coalesce = TimeSpan.FromMilliseconds(250);

    [Inject] private SidecarPresence Presence { get; set; } = default!;
    [Inject] private IServiceScopeFactory Scopes { get; set; } = default!;

    private IReadOnlyList<SidecarView>? _items;
    private int _reloadPending;
    private readonly CancellationTokenSource _disposed = new();

    protected override async Task OnInitializedAsync()
    {
        Presence.Changed += OnPresenceChanged;
        await LoadAsync();
    }

    private async Task LoadAsync()
    {
        // A scope per load: a DbContext must not live as long as a circuit.
        using var scope = Scopes.CreateScope();
        _items = await scope.ServiceProvider.GetRequiredService<SidecarService>().ListAsync(_disposed.Token);
    }

    private void OnPresenceChanged()
    {
        if (Interlocked.Exchange(ref _reloadPending, 1) == 1)
            return;
        _ = InvokeAsync(async () =>
        {
            try
            {
                await Task.Delay(_coalesce, _disposed.Token);
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

    private static Color StateColor(SidecarView s) => s.Status switch
    {
        "revoked" => Color.Error,
        "pending" => Color.Default,
        _ => s.Online ? Color.Success : Color.Warning,
    };

    private static string StateText(SidecarView s) => s.Status switch
    {
        "revoked" => "revoked",
        "pending" => "not enrolled",
        _ => s.Online ? "online" : "offline",
    };

    public void Dispose()
    {
        Presence.Changed -= OnPresenceChanged;
        _disposed.Cancel();
        _disposed.Dispose();
        GC.SuppressFinalize(this);
    }
}
