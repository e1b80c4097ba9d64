using System.Text.Json;
using Airlock.ControlPlane.Data;
using Airlock.ControlPlane.Identity;
using Airlock.ControlPlane.Sessions;
using Airlock.Contracts.Recording;
using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Components.Authorization;

namespace Airlock.ControlPlane.Components.Pages.Sessions;

/// <summary>
/// Replay of one session: its events in order with decisions, results and timings, a page of
/// <see cref="PageSize"/> at a time (a session can hold millions), the chain's verification and
/// where it breaks. The last page of a live session grows as its events arrive; an Admin can
/// terminate it (the sidecar closes it and the agent gets a FATAL naming the reason).
/// </summary>
public partial class SessionDetail : ComponentBase, IDisposable
{
    [Parameter] public Guid Id { get; set; }
    [Inject] private IServiceScopeFactory Scopes { get; set; } = default!;
    [Inject] private SessionNotifier Notifier { get; set; } = default!;
    [Inject] private ConsoleActor Actor { get; set; } = default!;

    public const int PageSize = 200;

    private RecordedSession? _session;
    private IReadOnlyList<EventView> _events = [];
    /// <summary>The page shows the events after this sequence number.</summary>
    private long _after;
    private bool _loaded;
    private string? _message;
    private readonly SemaphoreSlim _loading = new(1, 1);
    private readonly CancellationTokenSource _disposed = new();

    protected override async Task OnInitializedAsync()
    {
        Notifier.Changed += OnChanged;
        await LoadAsync();
    }

    /// <summary>Loads the session and the current page of its events.</summary>
    private async Task LoadAsync()
    {
        await _loading.WaitAsync(_disposed.Token);
        try
        {
            using var scope = Scopes.CreateScope();
            var queries = scope.ServiceProvider.GetRequiredService<SessionQueries>();
            _session = await queries.GetAsync(Id, _disposed.Token);
            if (_session is not null)
                _events = await queries.EventsAsync(Id, _after, PageSize, _disposed.Token);
            _loaded = true;
        }
        finally
        {
            _loading.Release();
        }
    }

    private bool HasEarlier => _after > 0;
    private bool HasLater => _session is not null && (_events.Count == 0 ? _after : _events[^1].Seq) < _session.LastSeq;

    private Task PageAsync(long after)
    {
        _after = Math.Max(0, after);
        return LoadAsync();
    }

    private Task FirstPageAsync() => PageAsync(0);
    private Task PreviousPageAsync() => PageAsync(_after - PageSize);
    private Task NextPageAsync() => PageAsync(_events.Count == 0 ? _after : _events[^1].Seq);
    private Task LastPageAsync() => PageAsync((_session?.LastSeq ?? 0) - PageSize);

    private void OnChanged(IReadOnlyCollection<Guid> changed)
    {
        // New events show by themselves only on a page that still has room (the live tail).
        if (!changed.Contains(Id) || _events.Count >= PageSize)
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
        // Verifying stores the verdict: checked against the account as it is now, like every change.
        if (await Actor.AuthorizeAsync(ConsoleRoles.All) is null)
        {
            _message = ConsoleActor.Refusal;
            return;
        }
        using (var scope = Scopes.CreateScope())
        {
            var verdict = await scope.ServiceProvider.GetRequiredService<SessionQueries>().VerifyAsync(Id, _disposed.Token);
            _message = verdict is null ? null : verdict.Status switch
            {
                SessionVerification.Verified => $"The chain of {verdict.Events} events verifies, and the sidecar's signature covers the session's end.",
                SessionVerification.Incomplete => $"The chain of {verdict.Events} events verifies so far (signed through event {verdict.SignedThrough}), but the session's signed end is missing: the recording is incomplete.",
                _ => verdict.Reason,
            };
        }
        await LoadAsync();
    }

    private bool _confirmingTerminate;
    private string? _terminateReason;

    /// <summary>Ends the live session, once confirmed with a reason.</summary>
    private async Task TerminateAsync()
    {
        if (string.IsNullOrWhiteSpace(_terminateReason))
            return;
        if (await Actor.AuthorizeAsync([ConsoleRoles.Admin]) is not { } actor)
        {
            _message = ConsoleActor.Refusal;
            return;
        }
        var reason = _terminateReason.Trim();
        using var scope = Scopes.CreateScope();
        var sent = await scope.ServiceProvider.GetRequiredService<SessionControl>().TerminateAsync(Id, reason.Length <= 200 ? reason : reason[..200], actor, _disposed.Token);
        _message = sent ? "Termination sent to the sidecar." : "The session's sidecar is not connected; it cannot be terminated now.";
        _confirmingTerminate = false;
        _terminateReason = null;
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
