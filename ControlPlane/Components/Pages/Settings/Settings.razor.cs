using Airlock.ControlPlane.Identity;
using Airlock.ControlPlane.Policies;
using Airlock.ControlPlane.Sessions;
using Microsoft.AspNetCore.Components;
using Microsoft.Extensions.Options;
using MudBlazor;

namespace Airlock.ControlPlane.Components.Pages.Settings;

/// <summary>
/// Trusted issuers (status, and edited as YAML through <see cref="PolicyStore.EditAsync"/>), signing
/// keys (rotated through <see cref="KeysAndIssuers"/>, as the API does), retention and webhooks.
/// </summary>
public partial class Settings : PolicyPage
{
    [Inject] private IDialogService Dialogs { get; set; } = default!;
    [Inject] private IOptions<RecordingOptions> Recording { get; set; } = default!;

    protected override PolicyObjectKind Kind => PolicyObjectKind.TrustedIssuer;

    private IReadOnlyList<TrustedIssuerStatus> _issuers = [];
    private IReadOnlyList<SigningKeyView> _keys = [];
    private string? _editing;
    private bool _editingExisting;
    private long _basedOn;
    private string? _yaml;
    private int _retentionDays;
    private int _purgeMinutes;

    private const string IssuerTemplate = """
        name: github
        issuer: https://token.actions.githubusercontent.com
        audiences: [https://github.com/your-org]
        bindings:
        - name: deploy
          agent: ci-deploy
          claims:
          - {claim: repository, exact: your-org/your-repo}
          - {claim: ref, glob: refs/heads/main}
        """;

    protected override async Task OnReloadedAsync(IServiceProvider services)
    {
        var keys = services.GetRequiredService<KeysAndIssuers>();
        _issuers = await keys.IssuerStatusAsync(CancellationToken.None);
        _keys = await keys.SigningKeysAsync(CancellationToken.None);
        _retentionDays = Recording.Value.RetentionDays;
        _purgeMinutes = Recording.Value.PurgeIntervalMinutes;
    }

    private void StartNewIssuer()
    {
        ClearProblems();
        _editing = "";
        _editingExisting = false;
        _basedOn = 0;
        _yaml = IssuerTemplate;
    }

    private void StartEditIssuer(string name)
    {
        ClearProblems();
        if (Document!.TrustedIssuers!.FirstOrDefault(t => t.Name == name) is not { } spec)
            return;
        _editing = name;
        _editingExisting = true;
        _basedOn = VersionOf(name);
        _yaml = PolicyFormat.Write(spec, yaml: true);
    }

    private async Task ReloadEditingAsync()
    {
        var name = _editing;
        await ReloadAsync();
        ClearProblems();
        if (_editingExisting && name is not null)
            StartEditIssuer(name);
    }

    private async Task SaveIssuerAsync()
    {
        ClearProblems();
        var (spec, error) = PolicyFormat.Parse<TrustedIssuerSpec>(_yaml ?? "", yaml: true);
        if (spec is null)
        {
            Errors = new Shared.FieldErrors([error!], []);
            return;
        }
        var existing = _editingExisting;
        var name = existing ? _editing! : spec.Name ?? "";
        if (existing && spec.Name != name)
        {
            Errors = new Shared.FieldErrors([new PolicyError("name", $"stays '{name}'; to rename, create a new issuer and delete this one")], []);
            return;
        }
        if (await SaveObjectAsync(d => d.TrustedIssuers!, t => t.Name, spec, name, existing, _basedOn))
            _editing = null;
    }

    private async Task DeleteIssuerAsync(string name)
    {
        if (await Dialogs.ShowMessageBoxAsync("Delete trusted issuer", $"Delete '{name}'? Tokens it issues stop standing for agents.", yesText: "Delete", cancelText: "Keep it") != true)
            return;
        await DeleteObjectAsync(d => d.TrustedIssuers!, t => t.Name, name);
    }

    private async Task RotateAsync(string purpose)
    {
        ClearProblems();
        if (await Dialogs.ShowMessageBoxAsync("Rotate", $"Create a new {purpose} signing key? It signs after a 24 h overlap; the old one stays valid until then.",
                yesText: "Rotate", cancelText: "Cancel") != true)
            return;
        if (await Actor.AuthorizeAsync([ConsoleRoles.Admin]) is not { } actor)
        {
            Problem = ConsoleActor.Refusal;
            return;
        }
        using (var scope = Scopes.CreateScope())
        {
            var (key, errors) = await scope.ServiceProvider.GetRequiredService<KeysAndIssuers>().RotateAsync(purpose, null, null, actor, CancellationToken.None);
            if (key is null)
                Problem = string.Join("; ", errors.Select(e => $"{e.Path}: {e.Message}"));
            else
                Snackbar.Add($"New {purpose} key {key.Id} signs from {key.ActivatesAt:u}", Severity.Success);
        }
        await ReloadAsync();
    }
}
