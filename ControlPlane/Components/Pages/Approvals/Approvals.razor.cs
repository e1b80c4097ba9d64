using Airlock.ControlPlane.Approvals;
using Airlock.ControlPlane.Identity;
using Microsoft.AspNetCore.Components;
using MudBlazor;

namespace Airlock.ControlPlane.Components.Pages.Approvals;

/// <summary>
/// Pending requests as cards (readable on a phone), with Approve and Deny; recent decisions below.
/// New requests, votes and decisions appear without a reload (<see cref="ApprovalBroadcaster"/>).
/// </summary>
public partial class Approvals : ComponentBase, IDisposable
{
    [Parameter] public long? Id { get; set; }

    [Inject] private IServiceScopeFactory Scopes { get; set; } = default!;
    [Inject] private ApprovalBroadcaster Broadcaster { get; set; } = default!;
    [Inject] private ConsoleActor Actor { get; set; } = default!;
    [Inject] private ISnackbar Snackbar { get; set; } = default!;

    private IReadOnlyList<ApprovalView>? _approvals;
    private readonly Dictionary<long, string?> _comments = [];
    private string? _error;
    private bool _busy;
    private readonly CancellationTokenSource _disposed = new();
    private IReadOnlyList<ApprovalView> _grants = [];
    private string? _grantAgent, _grantTarget, _grantRole, _grantReason;
    private int _grantMinutes = 30;

    protected override async Task OnInitializedAsync()
    {
        Broadcaster.ApprovalChanged += OnChanged;
        await LoadAsync();
    }

    protected override Task OnParametersSetAsync() => _approvals is null ? Task.CompletedTask : LoadAsync();

    private async Task LoadAsync()
    {
        using var scope = Scopes.CreateScope();
        var service = scope.ServiceProvider.GetRequiredService<ApprovalService>();
        var list = (await service.ListAsync(null, 200, _disposed.Token)).ToList();
        if (Id is { } id && list.All(a => a.Id != id) && await service.GetAsync(id, _disposed.Token) is { } one)
            list.Insert(0, one);
        foreach (var a in list)
            _comments.TryAdd(a.Id, null);
        _approvals = list;
        _grants = await service.GrantsAsync(activeOnly: false, _disposed.Token);
    }

    private async Task VoteAsync(long id, bool approve)
    {
        _busy = true;
        try
        {
            var actor = await Actor.AuthorizeAsync([ConsoleRoles.Admin, ConsoleRoles.Approver]);
            if (actor is null)
            {
                _error = ConsoleActor.Refusal + " (Voting needs the Approver or Admin role.)";
                return;
            }
            using var scope = Scopes.CreateScope();
            var change = await scope.ServiceProvider.GetRequiredService<ApprovalService>()
                .VoteAsync(id, actor, approve, _comments.GetValueOrDefault(id), _disposed.Token);
            if (change.Problem is not null)
                _error = $"#{id}: {change.Problem}";
            else
            {
                _error = null;
                Snackbar.Add($"#{id}: your {(approve ? "approval" : "denial")} is recorded ({change.Approval!.Status})", approve ? Severity.Success : Severity.Info);
            }
            await LoadAsync();
        }
        finally
        {
            _busy = false;
        }
    }

    private async Task RequestGrantAsync()
    {
        _busy = true;
        try
        {
            var actor = await Actor.AuthorizeAsync(ConsoleRoles.All);
            if (actor is null)
            {
                _error = ConsoleActor.Refusal;
                return;
            }
            using var scope = Scopes.CreateScope();
            var change = await scope.ServiceProvider.GetRequiredService<ApprovalService>()
                .RequestGrantAsync(actor, Trimmed(_grantAgent), Trimmed(_grantTarget), Trimmed(_grantRole), _grantMinutes, _grantReason, _disposed.Token);
            _error = change.Problem;
            if (change.Approval is { } asked)
                Snackbar.Add($"Grant #{asked.Id} asked for; someone else approves it", Severity.Info);
            await LoadAsync();
        }
        finally
        {
            _busy = false;
        }
    }

    private async Task RevokeAsync(long id)
    {
        var actor = await Actor.AuthorizeAsync([ConsoleRoles.Admin]);
        if (actor is null)
        {
            _error = ConsoleActor.Refusal;
            return;
        }
        using var scope = Scopes.CreateScope();
        var change = await scope.ServiceProvider.GetRequiredService<ApprovalService>().RevokeGrantAsync(id, actor, _disposed.Token);
        _error = change.Problem;
        if (change.Problem is null)
            Snackbar.Add($"Grant #{id} revoked; sidecars drop it with the next snapshot", Severity.Success);
        await LoadAsync();
    }

    private static string? Trimmed(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();

    private static bool IsInForce(ApprovalView grant) => grant.Status == "approved" && grant.ValidUntil > DateTimeOffset.UtcNow;

    private static string GrantStatus(ApprovalView grant) =>
        grant.Status == "approved" && !IsInForce(grant) ? "lapsed" : grant.Status == "approved" ? "in force" : grant.Status;

    private void OnChanged(long id) => _ = InvokeAsync(async () =>
    {
        try
        {
            await LoadAsync();
            StateHasChanged();
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
            // page closed
        }
    });

    private static Color StatusColor(string status) => status switch
    {
        "pending" => Color.Warning,
        "approved" or "executed" => Color.Success,
        "denied" => Color.Error,
        _ => Color.Default,
    };

    private static string RunStyle(string kind) => kind switch
    {
        // Theme colours, so the highlighting reads in dark mode too.
        SqlHighlight.Keyword => "color: var(--mud-palette-primary); font-weight: 600",
        SqlHighlight.Literal => "color: var(--mud-palette-success-darken)",
        SqlHighlight.Number or SqlHighlight.Parameter => "color: var(--mud-palette-secondary)",
        SqlHighlight.Comment => "color: var(--mud-palette-text-secondary); font-style: italic",
        _ => "",
    };

    public void Dispose()
    {
        Broadcaster.ApprovalChanged -= OnChanged;
        _disposed.Cancel();
        _disposed.Dispose();
        GC.SuppressFinalize(this);
    }
}
