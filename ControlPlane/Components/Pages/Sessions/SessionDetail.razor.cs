using System.Text.Json;
using Airlock.ControlPlane.Data;
using Airlock.ControlPlane.Sessions;
using Airlock.Contracts.Recording;
using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Components.Authorization;

namespace Airlock.ControlPlane.Components.Pages.Sessions;

/// <summary>
/// Replay of one session: every event in order with decisions, results and timings, the chain's
/// verification and where it breaks. A live session grows as its events arrive; an Admin can
/// terminate it (the sidecar closes it and the agent gets a FATAL naming the reason).
/// </summary>
public partial class SessionDetail : ComponentBase, IDisposable
{
    [Parameter] public Guid Id { get; set; }
    [Inject] private IServiceScopeFactory Scopes { get; set; } = default!;
    [Inject] private SessionNotifier Notifier { get; set; } = default!;
    [CascadingParameter] private Task<AuthenticationState>? AuthenticationState { get; set; }

    private RecordedSession? _session;
    private readonly List<EventView> _events = [];
    private bool _loaded;
    private string? _message;
    private readonly SemaphoreSlim _loading = new(1, 1);
    private readonly CancellationTokenSource _disposed = new();

    protected override async Task OnInitializedAsync()
    {
        Notifier.Changed += OnChanged;
        await LoadAsync();
    }

    /// <summary>Loads the session and only the events after the last one shown.</summary>
    private async Task LoadAsync()
    {
        await _loading.WaitAsync(_disposed.Token);
        try
        {
            using var scope = Scopes.CreateScope();
            var queries = scope.ServiceProvider.GetRequiredService<SessionQueries>();
            _session = await queries.GetAsync(Id, _disposed.Token);
            if (_session is not null)
                _events.AddRange(await queries.EventsAsync(Id, _events.Count == 0 ? 0 : _events[^1].Seq, 5000, _disposed.Token));
            _loaded = true;
        }
        finally
        {
            _loading.Release();
        }
    }

    private void OnChanged(IReadOnlyCollection<Guid> changed)
    {
        if (!changed.Contains(Id))
            return;
        _ = InvokeAsync(async () =>
        {
            try
            {
                await LoadAsync();
                StateHasChanged();
            }
            catch (OperationCanceledException)
            {
                // page closed
            }
        });
    }

    private async Task VerifyAsync()
    {
        using (var scope = Scopes.CreateScope())
        {
            var verdict = await scope.ServiceProvider.GetRequiredService<SessionQueries>().VerifyAsync(Id, _disposed.Token);
            _message = verdict is null ? null : verdict.Verifies
                ? $"The chain of {verdict.Events} events verifies; signed through event {verdict.SignedThrough}."
                : verdict.Reason;
        }
        _events.Clear();
        await LoadAsync();
    }

    private async Task TerminateAsync()
    {
        var actor = AuthenticationState is null ? "console" : (await AuthenticationState).User.Identity?.Name ?? "console";
        using var scope = Scopes.CreateScope();
        var sent = await scope.ServiceProvider.GetRequiredService<SessionControl>().TerminateAsync(Id, "terminated by an administrator", actor, _disposed.Token);
        _message = sent ? "Termination sent to the sidecar." : "The session's sidecar is not connected; it cannot be terminated now.";
    }

    private static T? Decode<T>(JsonElement payload) where T : class
    {
        try
        {
            return payload.Deserialize<T>(RecordingJson.Options);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    public void Dispose()
    {
        Notifier.Changed -= OnChanged;
        _disposed.Cancel();
        _disposed.Dispose();
        GC.SuppressFinalize(this);
    }
}
