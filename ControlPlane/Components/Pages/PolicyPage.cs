using Airlock.ControlPlane.Components.Shared;
using Airlock.ControlPlane.Identity;
using Airlock.ControlPlane.Policies;
using Microsoft.AspNetCore.Components;
using MudBlazor;

namespace Airlock.ControlPlane.Components.Pages;

/// <summary>
/// What the pages that edit policy objects share. They read the document and each object's
/// version, and write through <see cref="PolicyStore.EditAsync"/> — the REST API's code path —
/// based on the version they showed, so another admin's change in between is refused with their
/// name, never overwritten.
/// </summary>
public abstract class PolicyPage : ComponentBase
{
    [Inject] protected IServiceScopeFactory Scopes { get; set; } = default!;
    [Inject] protected ConsoleActor Actor { get; set; } = default!;
    [Inject] protected ISnackbar Snackbar { get; set; } = default!;

    /// <summary>The kind of object the page edits.</summary>
    protected abstract PolicyObjectKind Kind { get; }

    /// <summary>The paths of the form's fields (see <see cref="FieldErrors"/>).</summary>
    protected virtual IReadOnlyCollection<string> FormFields => [];

    protected PolicyDocument? Document { get; private set; }
    protected IReadOnlyDictionary<string, long> Versions { get; private set; } = new Dictionary<string, long>();
    protected FieldErrors Errors { get; set; } = FieldErrors.None;

    /// <summary>A refusal of the whole change: a conflict, a refusal, lost access.</summary>
    protected string? Problem { get; set; }

    protected bool IsConflict { get; private set; }

    protected override Task OnInitializedAsync() => ReloadAsync();

    protected virtual async Task ReloadAsync()
    {
        using var scope = Scopes.CreateScope();
        var store = scope.ServiceProvider.GetRequiredService<PolicyStore>();
        // Versions before the document: a change between the two reads makes a save a conflict, never an overwrite.
        Versions = await store.VersionsAsync(Kind, CancellationToken.None);
        Document = await store.ExportAsync(CancellationToken.None);
        await OnReloadedAsync(scope.ServiceProvider);
    }

    /// <summary>Loads whatever else the page shows, in the same scope.</summary>
    protected virtual Task OnReloadedAsync(IServiceProvider services) => Task.CompletedTask;

    protected long VersionOf(string name) => Versions.TryGetValue(name, out var version) ? version : 0;

    protected void ClearProblems()
    {
        Errors = FieldErrors.None;
        Problem = null;
        IsConflict = false;
    }

    /// <summary>
    /// Creates (<paramref name="existing"/> false) or replaces one object of the page's kind, based on
    /// <paramref name="basedOn"/> when replacing; refused when a new one's name is taken or the one
    /// being edited was deleted meanwhile.
    /// </summary>
    protected Task<bool> SaveObjectAsync<TSpec>(Func<PolicyDocument, List<TSpec>> list, Func<TSpec, string?> nameOf, TSpec spec, string name, bool existing, long basedOn) =>
        EditAsync(name, existing ? basedOn : null, doc =>
        {
            var items = list(doc);
            var index = items.FindIndex(s => nameOf(s) == name);
            if (!existing && index >= 0)
                return new EditRefusal(EditRefusalKind.AlreadyExists, $"{Kind.Noun()} '{name}' already exists");
            if (existing && index < 0)
                return new EditRefusal(EditRefusalKind.NotFound, $"{Kind.Noun()} '{name}' was deleted meanwhile");
            if (index >= 0)
                items[index] = spec;
            else
                items.Add(spec);
            return null;
        }, $"{Capitalized(Kind.Noun())} {name} {(existing ? "saved" : "created")}");

    /// <summary>Deletes one object of the page's kind, based on the version shown.</summary>
    protected Task<bool> DeleteObjectAsync<TSpec>(Func<PolicyDocument, List<TSpec>> list, Func<TSpec, string?> nameOf, string name) =>
        EditAsync(name, VersionOf(name), doc =>
            list(doc).RemoveAll(s => nameOf(s) == name) == 0 ? new EditRefusal(EditRefusalKind.NotFound, $"{Kind.Noun()} '{name}' does not exist") : null,
            $"{Capitalized(Kind.Noun())} {name} deleted");

    private static string Capitalized(string noun) => char.ToUpperInvariant(noun[0]) + noun[1..];

    /// <summary>
    /// Applies one edit as the signed-in Admin (checked now, not when the page opened). True when
    /// it applied; otherwise <see cref="Errors"/> or <see cref="Problem"/> say why.
    /// </summary>
    protected async Task<bool> EditAsync(string name, long? basedOn, Func<PolicyDocument, EditRefusal?> change, string done)
    {
        ClearProblems();
        if (await Actor.AuthorizeAsync([ConsoleRoles.Admin]) is not { } actor)
        {
            Problem = ConsoleActor.Refusal;
            return false;
        }
        EditResult result;
        using (var scope = Scopes.CreateScope())
            result = await scope.ServiceProvider.GetRequiredService<PolicyStore>()
                .EditAsync(new PolicyEdit(Kind, name, basedOn, change), actor, CancellationToken.None);
        switch (result.Status)
        {
            case EditStatus.Applied:
                Snackbar.Add(done, Severity.Success);
                await ReloadAsync();
                return true;
            case EditStatus.Conflict:
                IsConflict = true;
                Problem = $"{Kind.Noun()} '{name}' changed while you were editing it: {result.Version.Describe()}. "
                    + "Your change was not saved. Reload to see the current version, then make your change again.";
                return false;
            case EditStatus.Refused:
                Problem = result.Refusal!.Detail;
                return false;
            default:
                Errors = new FieldErrors(result.Errors, FormFields);
                return false;
        }
    }
}
