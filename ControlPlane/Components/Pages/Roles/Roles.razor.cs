using Airlock.ControlPlane.Policies;
using Airlock.Sidecar.Policy;
using Microsoft.AspNetCore.Components;
using MudBlazor;

namespace Airlock.ControlPlane.Components.Pages.Roles;

/// <summary>
/// Roles edited in forms — grants, rules, the baseline — with the validator's messages at the
/// fields, the YAML the form amounts to, and the saved rules tried against SQL beside them.
/// Writes go through <see cref="PolicyStore.EditAsync"/>, based on the version the form opened on.
/// </summary>
public partial class Roles : PolicyPage
{
    [Inject] private IDialogService Dialogs { get; set; } = default!;

    protected override PolicyObjectKind Kind => PolicyObjectKind.Role;

    protected override IReadOnlyCollection<string> FormFields => ["name", "description", "baseline", "grants", "rules"];

    /// <summary>The rule fields that show their own message; any other message of a rule is listed under it.</summary>
    private static readonly string[] RuleFieldPaths =
    [
        "name", "targets", "message", "match.classes", "match.commands", "match.tables", "match.pattern", "match.functions", "match.flags",
        "mask.columns", "mask.detectors", "mask.keepLast", "approval.approvals", "approval.timeoutSeconds", "approval.windowMinutes",
    ];

    private RoleForm? _form;
    private long _basedOn;
    private string? _simTarget;
    private string? _simSql;
    private SimulateResponse? _simResult;
    private string? _simProblem;

    private void StartNew()
    {
        ClearProblems();
        _form = RoleForm.New();
        _basedOn = 0;
        _simResult = null;
        _simTarget ??= Document?.Targets?.FirstOrDefault()?.Name;
    }

    private void StartEdit(string name)
    {
        ClearProblems();
        if (Document!.Roles!.FirstOrDefault(r => r.Name == name) is not { } spec)
            return;
        _form = RoleForm.From(spec);
        _basedOn = VersionOf(name);
        _simResult = null;
        _simTarget ??= Document.Targets!.FirstOrDefault()?.Name;
    }

    private async Task ReloadEditingAsync()
    {
        var name = _form?.Name;
        await ReloadAsync();
        ClearProblems();
        if (name is not null && Document!.Roles!.Any(r => r.Name == name))
            StartEdit(name);
        else
            _form = null;
    }

    private void Cancel()
    {
        _form = null;
        ClearProblems();
    }

    private void AddRule() => _form!.Rules.Add(new RuleRow { Name = $"rule-{_form.Rules.Count + 1}", Action = RuleActions.Block });

    private string PreviewYaml()
    {
        var (spec, errors) = _form!.ToSpec();
        return spec is null ? string.Join("\n", errors.Select(e => $"# {e.Path}: {e.Message}")) : PolicyFormat.Write(spec, yaml: true);
    }

    private async Task SaveAsync()
    {
        var (spec, formErrors) = _form!.ToSpec();
        if (spec is null)
        {
            Errors = new Shared.FieldErrors(formErrors, FormFields);
            return;
        }
        var name = spec.Name ?? "";
        var saved = await SaveObjectAsync(d => d.Roles!, r => r.Name, spec, name, _form.Existing, _basedOn);
        if (saved)
            StartEdit(name); // stay on it, now based on the saved version, to try it in the simulator
    }

    private async Task DeleteAsync(string name)
    {
        if (await Dialogs.ShowMessageBoxAsync("Delete role", $"Delete role '{name}'? A role an agent still has cannot be deleted.",
                yesText: "Delete", cancelText: "Keep it") != true)
            return;
        if (await DeleteObjectAsync(d => d.Roles!, r => r.Name, name) && _form?.Name == name)
            _form = null;
        if (Errors.Any)
        {
            // A deletion the validator refuses (agents still have the role) has no form to show it in.
            Problem = string.Join("; ", Errors.All.Select(e => $"{e.Path}: {e.Message}"));
            Errors = Shared.FieldErrors.None;
        }
    }

    /// <summary>Judges the SQL with the form as it stands (saved or not), once it is a valid role.</summary>
    private async Task SimulateAsync()
    {
        _simProblem = null;
        _simResult = null;
        var (spec, formErrors) = _form!.ToSpec();
        if (spec is null)
        {
            _simProblem = string.Join("; ", formErrors.Select(e => $"{e.Path}: {e.Message}"));
            return;
        }
        var name = spec.Name ?? "";
        using var scope = Scopes.CreateScope();
        var (doc, errors) = await scope.ServiceProvider.GetRequiredService<PolicyStore>().PreviewAsync(new PolicyEdit(Kind, name, null, d =>
        {
            var index = d.Roles!.FindIndex(r => r.Name == name);
            if (index >= 0)
                d.Roles[index] = spec;
            else
                d.Roles.Add(spec);
            return null;
        }), CancellationToken.None);
        if (doc is null)
        {
            _simProblem = "fix the form first: " + string.Join("; ", errors.Select(e => $"{e.Path}: {e.Message}"));
            return;
        }
        try
        {
            _simResult = await scope.ServiceProvider.GetRequiredService<Policies.Simulator>()
                .SimulateDraftAsync(doc.Roles!.Single(r => r.Name == name), _simTarget, _simSql, CancellationToken.None);
        }
        catch (SimulationException e)
        {
            _simProblem = e.Message;
        }
    }
}
