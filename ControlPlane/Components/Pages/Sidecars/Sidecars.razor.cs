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
    [Inject] private Identity.ConsoleActor Actor { get; set; } = default!;
    [Inject] private IDialogService Dialogs { get; set; } = default!;
    [Inject] private NavigationManager Navigation { get; set; } = default!;

    /// <summary>A token just created, with the command that uses it; shown once.</summary>
    private sealed record Enrollment(string Sidecar, DateTimeOffset ExpiresAt, string Command);

    private string? _newName;
    private string? _newDescription;
    private string? _problem;
    private Enrollment? _enrollment;

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

    /// <summary>
    /// Runs one sidecar change as the Admin signed in now, through <see cref="SidecarService"/> (as
    /// the API does); its refusal is shown, not thrown.
    /// </summary>
    private async Task ChangeAsync(Func<SidecarService, string, Task> change)
    {
        _problem = null;
        if (await Actor.AuthorizeAsync([Identity.ConsoleRoles.Admin]) is not { } actor)
        {
            _problem = Identity.ConsoleActor.Refusal;
            return;
        }
        try
        {
            using var scope = Scopes.CreateScope();
            await change(scope.ServiceProvider.GetRequiredService<SidecarService>(), actor);
        }
        catch (ApiProblemException e)
        {
            _problem = e.Message;
        }
        await LoadAsync();
    }

    private Task CreateAsync() => ChangeAsync(async (service, actor) =>
    {
        await service.CreateAsync(_newName?.Trim(), _newDescription, actor, CancellationToken.None);
        _newName = null;
        _newDescription = null;
    });

    private async Task EnrollAsync(string name, bool reenroll)
    {
        _enrollment = null;
        if (reenroll && await Dialogs.ShowMessageBoxAsync("Re-enroll",
                $"A re-enrollment token lets whoever uses it become '{name}': the running sidecar is locked out when it is used. Use it only to replace a lost or moved sidecar.",
                yesText: "Create the token", cancelText: "Cancel") != true)
            return;
        await ChangeAsync(async (service, actor) =>
        {
            var (token, view) = await service.CreateEnrollmentTokenAsync(name, null, actor, CancellationToken.None, reenroll);
            _enrollment = new Enrollment(name, view.ExpiresAt, EnrollmentCommand(Navigation.BaseUri, token));
        });
    }

    /// <summary>The command that enrolls a sidecar with <paramref name="token"/> against this control plane.</summary>
    public static string EnrollmentCommand(string controlPlaneUrl, string token) =>
        $"dotnet Sidecar.dll --control-plane {controlPlaneUrl.TrimEnd('/')} --enrollment-token {token} --state-dir /var/lib/airlock-sidecar";

    private async Task RevokeAsync(string name)
    {
        if (await Dialogs.ShowMessageBoxAsync("Revoke sidecar",
                $"Revoke '{name}'? Its credential stops working at once, its connections close and it deletes its cached policy. This cannot be undone.",
                yesText: "Revoke", cancelText: "Keep it") != true)
            return;
        await ChangeAsync((service, actor) => service.RevokeAsync(name, actor, CancellationToken.None));
    }

    private async Task DeleteAsync(string name)
    {
        if (await Dialogs.ShowMessageBoxAsync("Delete sidecar", $"Delete '{name}'? A sidecar that still serves targets cannot be deleted.",
                yesText: "Delete", cancelText: "Keep it") != true)
            return;
        await ChangeAsync((service, actor) => service.DeleteAsync(name, actor, CancellationToken.None));
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
