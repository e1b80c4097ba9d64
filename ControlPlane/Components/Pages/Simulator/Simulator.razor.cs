using Airlock.ControlPlane.Data;
using Airlock.ControlPlane.Policies;
using Microsoft.AspNetCore.Components;
using Microsoft.EntityFrameworkCore;

namespace Airlock.ControlPlane.Components.Pages.Simulator;

/// <summary>
/// The policy simulator in the browser: agent, target and SQL in, per statement the classification,
/// decision and deciding rule out — <see cref="Policies.Simulator"/>, the same as <c>POST /api/v1/simulate</c>.
/// Typing is debounced (250 ms) and a newer answer replaces an older one.
/// </summary>
public partial class Simulator : ComponentBase, IDisposable
{
    private static readonly TimeSpan Debounce = TimeSpan.FromMilliseconds(250);

    [Inject] private IServiceScopeFactory Scopes { get; set; } = default!;

    private List<string> _agents = [];
    private List<string> _targets = [];
    private string? _agent, _target;
    private string _sql = "";
    private SimulateResponse? _result;
    private string? _problem;
    private CancellationTokenSource? _pending;
    private readonly CancellationTokenSource _disposed = new();

    protected override async Task OnInitializedAsync()
    {
        using var scope = Scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<AirlockDbContext>();
        _agents = await db.Agents.AsNoTracking().OrderBy(a => a.Name).Select(a => a.Name).ToListAsync(_disposed.Token);
        _targets = await db.Targets.AsNoTracking().OrderBy(t => t.Name).Select(t => t.Name).ToListAsync(_disposed.Token);
        _agent = _agents.FirstOrDefault();
        _target = _targets.FirstOrDefault();
    }

    private Task AgentChanged(string value) => Changed(() => _agent = value);
    private Task TargetChanged(string value) => Changed(() => _target = value);
    private Task SqlChanged(string value) => Changed(() => _sql = value ?? "");

    private async Task Changed(Action apply)
    {
        apply();
        _pending?.Cancel();
        var pending = _pending = CancellationTokenSource.CreateLinkedTokenSource(_disposed.Token);
        try
        {
            await Task.Delay(Debounce, pending.Token);
            await SimulateAsync(pending.Token);
        }
        catch (OperationCanceledException)
        {
            // a newer keystroke, or the page closed
        }
    }

    private async Task SimulateAsync(CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(_sql) || _agent is null || _target is null)
        {
            (_result, _problem) = (null, _agent is null || _target is null ? "Create an agent and a target first." : null);
            return;
        }
        using var scope = Scopes.CreateScope();
        try
        {
            var result = await scope.ServiceProvider.GetRequiredService<Policies.Simulator>().SimulateAsync(new SimulateRequest(_agent, null, _target, _sql), ct);
            ct.ThrowIfCancellationRequested();
            (_result, _problem) = (result, null);
        }
        catch (SimulationException e)
        {
            (_result, _problem) = (null, e.Message);
        }
        StateHasChanged();
    }

    private static string Shorten(string text) => text.Length <= 160 ? text : text[..157] + "…";

    public void Dispose()
    {
        _disposed.Cancel();
        _disposed.Dispose();
    }
}
