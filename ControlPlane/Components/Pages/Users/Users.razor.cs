using Airlock.ControlPlane.Identity;
using Airlock.ControlPlane.Policies;
using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Components.Authorization;

namespace Airlock.ControlPlane.Components.Pages.Users;

/// <summary>Admins add users, change roles and disable accounts through <see cref="UserAdministration"/>, as the API does.</summary>
public partial class Users : ComponentBase
{
    [Inject] private IServiceScopeFactory Scopes { get; set; } = default!;
    [Inject] private ConsoleActor Actor { get; set; } = default!;

    private IReadOnlyList<UserView>? _users;
    private IReadOnlyList<PolicyError> _errors = [];
    private string? _newName;
    private string? _newPassword;
    private string _newRole = ConsoleRoles.Auditor;

    protected override Task OnInitializedAsync() => LoadAsync();

    private async Task LoadAsync()
    {
        using var scope = Scopes.CreateScope();
        _users = await scope.ServiceProvider.GetRequiredService<UserAdministration>().ListAsync(CancellationToken.None);
    }

    /// <summary>The admin making a change, checked now (not when the page opened); null after telling them why not.</summary>
    private async Task<string?> AdminNowAsync()
    {
        var actor = await Actor.AuthorizeAsync([ConsoleRoles.Admin]);
        if (actor is null)
            _errors = [new PolicyError("access", ConsoleActor.Refusal)];
        return actor;
    }

    private async Task CreateAsync()
    {
        if (await AdminNowAsync() is not { } actor)
            return;
        using (var scope = Scopes.CreateScope())
        {
            var change = await scope.ServiceProvider.GetRequiredService<UserAdministration>()
                .CreateAsync(_newName, _newPassword, _newRole, disabled: false, actor, CancellationToken.None);
            _errors = change.Errors;
            if (change.Errors.Count == 0)
            {
                _newName = null;
                _newPassword = null;
            }
        }
        await LoadAsync();
    }

    private async Task UpdateAsync(string userName, string? role, bool? disabled)
    {
        if (await AdminNowAsync() is not { } actor)
            return;
        using (var scope = Scopes.CreateScope())
            _errors = (await scope.ServiceProvider.GetRequiredService<UserAdministration>()
                .UpdateAsync(userName, password: null, role, disabled, actor, CancellationToken.None)).Errors;
        await LoadAsync();
    }
}
