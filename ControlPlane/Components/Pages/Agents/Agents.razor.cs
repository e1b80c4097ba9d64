using Airlock.ControlPlane.Identity;
using Airlock.ControlPlane.Policies;
using Microsoft.AspNetCore.Components;
using MudBlazor;

namespace Airlock.ControlPlane.Components.Pages.Agents;

/// <summary>
/// Agents: a list paged and searched in the database; create and edit through
/// <see cref="PolicyStore.EditAsync"/>; the selected agent's credentials through
/// <see cref="AgentCredentials"/> (the API's service); and a token tester.
/// </summary>
public partial class Agents : PolicyPage
{
    [Parameter] public string? Selected { get; set; }
    [Inject] private IDialogService Dialogs { get; set; } = default!;

    protected override PolicyObjectKind Kind => PolicyObjectKind.Agent;

    protected override IReadOnlyCollection<string> FormFields => ["name", "role", "owner", "description", "enabled"];

    private MudTable<AgentRow>? _table;
    private string? _search;
    private AgentSpec? _form;
    private bool _existing;
    private long _basedOn;
    private IReadOnlyList<string> _users = [];
    private AgentCredentialView? _credentials;
    private string? _newSecret;
    private string? _jwks;
    private IReadOnlyList<PolicyError> _credentialErrors = [];
    private string? _token;
    private TokenTest? _tokenTest;

    protected override async Task OnReloadedAsync(IServiceProvider services) =>
        _users = (await services.GetRequiredService<UserAdministration>().ListAsync(CancellationToken.None))
            .Where(u => !u.Disabled).Select(u => u.UserName).ToList();

    protected override async Task OnParametersSetAsync()
    {
        _newSecret = null;
        _credentialErrors = [];
        await LoadCredentialsAsync();
    }

    private async Task LoadCredentialsAsync()
    {
        if (Selected is null)
            return;
        using var scope = Scopes.CreateScope();
        _credentials = await scope.ServiceProvider.GetRequiredService<AgentCredentials>().GetAsync(Selected, CancellationToken.None);
    }

    private async Task<TableData<AgentRow>> LoadPageAsync(TableState state, CancellationToken ct)
    {
        using var scope = Scopes.CreateScope();
        var (rows, total) = await scope.ServiceProvider.GetRequiredService<PolicyStore>()
            .SearchAgentsAsync(_search, state.Page * state.PageSize, state.PageSize, ct);
        return new TableData<AgentRow> { Items = rows, TotalItems = total };
    }

    private async Task SearchAsync(string? term)
    {
        _search = term;
        if (_table is not null)
            await _table.ReloadServerData();
    }

    private void StartNew()
    {
        ClearProblems();
        _form = new AgentSpec { Enabled = true, Description = "", Role = Document?.Roles?.FirstOrDefault()?.Name };
        _existing = false;
        _basedOn = 0;
    }

    /// <summary>Opens the form on the agent as stored now, based on its version now.</summary>
    private async Task StartEditAsync(string name)
    {
        ClearProblems();
        await ReloadAsync();
        if (Document!.Agents!.FirstOrDefault(a => a.Name == name) is not { } spec)
        {
            Problem = $"agent '{name}' no longer exists";
            return;
        }
        _form = new AgentSpec { Name = spec.Name, Description = spec.Description, Owner = spec.Owner, Role = spec.Role, Enabled = spec.Enabled };
        _existing = true;
        _basedOn = VersionOf(name);
    }

    private async Task ReloadEditingAsync()
    {
        if (_form?.Name is { } name && _existing)
            await StartEditAsync(name);
        else
            ClearProblems();
    }

    private void Cancel()
    {
        _form = null;
        ClearProblems();
    }

    private async Task SaveAsync()
    {
        var spec = _form!;
        var name = spec.Name?.Trim() ?? "";
        spec.Name = name.Length == 0 ? null : name;
        var saved = await SaveObjectAsync(d => d.Agents!, a => a.Name, spec, name, _existing, _basedOn);
        if (!saved)
            return;
        _form = null;
        if (_table is not null)
            await _table.ReloadServerData();
    }

    private async Task DeleteAsync(string name)
    {
        if (await Dialogs.ShowMessageBoxAsync("Delete agent", $"Delete agent '{name}'? Its credentials go with it and its live sessions end.",
                yesText: "Delete", cancelText: "Keep it") != true)
            return;
        await ReloadAsync();
        if (await DeleteObjectAsync(d => d.Agents!, a => a.Name, name) && _table is not null)
            await _table.ReloadServerData();
    }

    /// <summary>The Admin acting now, or null after saying why not.</summary>
    private async Task<string?> AdminNowAsync()
    {
        var actor = await Actor.AuthorizeAsync([ConsoleRoles.Admin]);
        if (actor is null)
            _credentialErrors = [new PolicyError("access", ConsoleActor.Refusal)];
        return actor;
    }

    private async Task RotateSecretAsync()
    {
        _credentialErrors = [];
        if (await AdminNowAsync() is not { } actor)
            return;
        if (_credentials!.HasSecret && await Dialogs.ShowMessageBoxAsync("Rotate the secret",
                $"The current secret of '{Selected}' stops working at once. Rotate it?", yesText: "Rotate", cancelText: "Keep it") != true)
            return;
        using (var scope = Scopes.CreateScope())
            _newSecret = await scope.ServiceProvider.GetRequiredService<AgentCredentials>().RotateSecretAsync(Selected!, actor, CancellationToken.None);
        await LoadCredentialsAsync();
    }

    private async Task SetKeysAsync()
    {
        _credentialErrors = [];
        _newSecret = null;
        if (await AdminNowAsync() is not { } actor)
            return;
        using (var scope = Scopes.CreateScope())
            _credentialErrors = await scope.ServiceProvider.GetRequiredService<AgentCredentials>()
                .SetPublicKeysAsync(Selected!, _jwks ?? "", actor, CancellationToken.None) ?? [new PolicyError("agent", $"'{Selected}' does not exist")];
        if (_credentialErrors.Count == 0)
        {
            _jwks = null;
            Snackbar.Add("Public keys registered", Severity.Success);
        }
        await LoadCredentialsAsync();
    }

    private async Task RemoveCredentialsAsync()
    {
        _credentialErrors = [];
        _newSecret = null;
        if (await AdminNowAsync() is not { } actor)
            return;
        if (await Dialogs.ShowMessageBoxAsync("Remove credentials", $"Remove the secret and keys of '{Selected}'? It cannot get new tokens until it has new ones.",
                yesText: "Remove", cancelText: "Keep them") != true)
            return;
        using (var scope = Scopes.CreateScope())
            await scope.ServiceProvider.GetRequiredService<AgentCredentials>().RevokeAsync(Selected!, actor, CancellationToken.None);
        await LoadCredentialsAsync();
    }

    private async Task TestTokenAsync()
    {
        if (string.IsNullOrWhiteSpace(_token))
            return;
        using var scope = Scopes.CreateScope();
        _tokenTest = await scope.ServiceProvider.GetRequiredService<TokenTester>().TestAsync(_token, CancellationToken.None);
    }
}
