using Airlock.ControlPlane.Policies;
using Airlock.ControlPlane.Sidecars;
using Microsoft.AspNetCore.Components;
using MudBlazor;

namespace Airlock.ControlPlane.Components.Pages.Targets;

/// <summary>Targets listed, created, edited and deleted through <see cref="PolicyStore.EditAsync"/>, each edit based on the version shown.</summary>
public partial class Targets : PolicyPage
{
    [Inject] private IDialogService Dialogs { get; set; } = default!;

    protected override PolicyObjectKind Kind => PolicyObjectKind.Target;

    protected override IReadOnlyCollection<string> FormFields =>
        ["name", "sidecar", "listenPort", "labels", "upstream.host", "upstream.port", "upstream.database", "upstream.username", "upstream.tls", "upstream.password", "upstream.credential"];

    private TargetForm? _form;
    private string? _testing;
    private TargetTestOutcome? _tested;
    private long _basedOn;
    private IReadOnlyList<string> _sidecars = [];

    protected override async Task OnReloadedAsync(IServiceProvider services) =>
        _sidecars = (await services.GetRequiredService<SidecarService>().ListAsync(CancellationToken.None))
            .Where(s => s.Status != "revoked").Select(s => s.Name).ToList();

    private void StartNew()
    {
        ClearProblems();
        _form = TargetForm.New(_sidecars.Count == 1 ? _sidecars[0] : null);
        _basedOn = 0;
    }

    private void StartEdit(TargetSpec spec)
    {
        ClearProblems();
        _form = TargetForm.From(spec);
        _basedOn = VersionOf(spec.Name!);
    }

    private void Cancel()
    {
        _form = null;
        ClearProblems();
    }

    /// <summary>After a conflict: the form shows the stored target again, based on its new version.</summary>
    private async Task ReloadEditingAsync()
    {
        var name = _form?.Name;
        await ReloadAsync();
        ClearProblems();
        if (name is not null && Document!.Targets!.FirstOrDefault(t => t.Name == name) is { } current)
            StartEdit(current);
        else
            _form = null;
    }

    private async Task SaveAsync()
    {
        var (spec, formErrors) = _form!.ToSpec();
        if (spec is null)
        {
            Errors = new Shared.FieldErrors(formErrors, FormFields);
            return;
        }
        var saved = await SaveObjectAsync(d => d.Targets!, t => t.Name, spec, spec.Name ?? "", _form.Existing, _basedOn);
        if (saved)
            _form = null;
    }

    /// <summary>Asks the target's sidecar to connect and log in; the answer (or why there is none) shows above the list.</summary>
    private async Task TestAsync(string name)
    {
        ClearProblems();
        _tested = null;
        if (await Actor.AuthorizeAsync([Identity.ConsoleRoles.Admin]) is not { } actor)
        {
            Problem = Identity.ConsoleActor.Refusal;
            return;
        }
        _testing = name;
        StateHasChanged();
        try
        {
            using var scope = Scopes.CreateScope();
            _tested = await scope.ServiceProvider.GetRequiredService<TargetTests>().TestAsync(name, actor, CancellationToken.None)
                ?? new TargetTestOutcome(name, "", false, $"target '{name}' no longer exists", null);
        }
        finally
        {
            _testing = null;
        }
    }

    private async Task DeleteAsync(string name)
    {
        var confirmed = await Dialogs.ShowMessageBoxAsync("Delete target",
            $"Delete target '{name}'? Agents lose access to it at once; its recordings stay.", yesText: "Delete", cancelText: "Keep it");
        if (confirmed != true)
            return;
        await DeleteObjectAsync(d => d.Targets!, t => t.Name, name);
    }
}
