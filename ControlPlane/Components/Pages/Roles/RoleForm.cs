using Airlock.ControlPlane.Policies;
using Airlock.Sidecar.Policy;
using Airlock.Sidecar.Policy.Guardrails;

namespace Airlock.ControlPlane.Components.Pages.Roles;

/// <summary>One grant in the form: a target by name, or a label selector written <c>key=value, …</c>.</summary>
public sealed class GrantRow
{
    public bool BySelector { get; set; }
    public string? Target { get; set; }
    public string Selector { get; set; } = "";
}

/// <summary>One rule in the form. Lists are edited as comma-separated text.</summary>
public sealed class RuleRow
{
    public string? Name { get; set; }
    public string Action { get; set; } = RuleActions.Block;
    public string Targets { get; set; } = "";
    public IReadOnlyCollection<string> Classes { get; set; } = [];
    public string Commands { get; set; } = "";
    public string Tables { get; set; } = "";
    public string Functions { get; set; } = "";
    public string Flags { get; set; } = "";
    public string? Pattern { get; set; }
    public string? Message { get; set; }
    public string MaskColumns { get; set; } = "";
    public string MaskDetectors { get; set; } = "";
    public string MaskStrategy { get; set; } = "redact";
    public int? MaskKeepLast { get; set; }
    public string? MaskMode { get; set; }
    public string ApprovalMode { get; set; } = ApprovalModes.Hold;
    public int? Approvals { get; set; } = 1;
    public string? ApprovalGroup { get; set; }
    public int? TimeoutSeconds { get; set; } = 900;
    public int? WindowMinutes { get; set; }
}

/// <summary>
/// The role form's fields, to and from a <see cref="RoleSpec"/>. Pure: the validator judges what
/// <see cref="ToSpec"/> makes, and its paths (<c>rules[2].match.pattern</c>) index these rows.
/// </summary>
public sealed class RoleForm
{
    public string? Name { get; set; }
    public string? Description { get; set; }
    public bool AgentSafeBaseline { get; set; } = true;
    public List<GrantRow> Grants { get; set; } = [];
    public List<RuleRow> Rules { get; set; } = [];
    public bool Existing { get; private set; }

    /// <summary>A new role starts from the agent-safe baseline: reads only, no escape hatches.</summary>
    public static RoleForm New() => new() { AgentSafeBaseline = true, Grants = [new GrantRow()] };

    public static RoleForm From(RoleSpec spec) => new()
    {
        Existing = true,
        Name = spec.Name,
        Description = spec.Description,
        AgentSafeBaseline = spec.Baseline == Baselines.AgentSafe,
        Grants = (spec.Grants ?? []).Select(g => new GrantRow
        {
            BySelector = g.Selector is not null,
            Target = g.Target,
            Selector = string.Join(", ", (g.Selector ?? []).Select(l => $"{l.Key}={l.Value}")),
        }).ToList(),
        Rules = (spec.Rules ?? []).Select(r => new RuleRow
        {
            Name = r.Name,
            Action = r.Action ?? RuleActions.Block,
            Targets = Join(r.Targets),
            Classes = [.. r.Match?.Classes ?? []],
            Commands = Join(r.Match?.Commands),
            Tables = Join(r.Match?.Tables),
            Functions = Join(r.Match?.Functions),
            Flags = Join(r.Match?.Flags),
            Pattern = r.Match?.Pattern,
            Message = r.Message,
            MaskColumns = Join(r.Mask?.Columns),
            MaskDetectors = Join(r.Mask?.Detectors),
            MaskStrategy = r.Mask?.Strategy ?? "redact",
            MaskKeepLast = r.Mask?.KeepLast,
            MaskMode = r.Mask?.Mode,
            ApprovalMode = r.Approval?.Mode ?? ApprovalModes.Hold,
            Approvals = r.Approval?.Approvals ?? 1,
            ApprovalGroup = r.Approval?.Group,
            TimeoutSeconds = r.Approval?.TimeoutSeconds ?? 900,
            WindowMinutes = r.Approval?.WindowMinutes,
        }).ToList(),
    };

    /// <summary>The spec, or the form's own errors (a selector that is not <c>key=value</c>).</summary>
    public (RoleSpec? Spec, IReadOnlyList<PolicyError> Errors) ToSpec()
    {
        var errors = new List<PolicyError>();
        var grants = new List<GrantSpec>();
        for (var i = 0; i < Grants.Count; i++)
        {
            var g = Grants[i];
            if (!g.BySelector)
            {
                grants.Add(new GrantSpec { Target = Blank(g.Target) });
                continue;
            }
            var selector = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var pair in Split(g.Selector))
            {
                var eq = pair.IndexOf('=', StringComparison.Ordinal);
                if (eq <= 0)
                    errors.Add(new PolicyError($"grants[{i}].selector", $"'{pair}' is not key=value"));
                else
                    selector[pair[..eq].Trim()] = pair[(eq + 1)..].Trim();
            }
            grants.Add(new GrantSpec { Selector = selector });
        }
        if (errors.Count > 0)
            return (null, errors);
        return (new RoleSpec
        {
            Name = Blank(Name),
            Description = Description?.Trim() ?? "",
            Baseline = AgentSafeBaseline ? Baselines.AgentSafe : null,
            Grants = grants,
            Rules = Rules.Select(ToRule).ToList(),
        }, []);
    }

    private static RuleSpec ToRule(RuleRow r) => new()
    {
        Name = Blank(r.Name),
        Action = r.Action,
        Targets = Split(r.Targets),
        Match = new MatchSpec
        {
            Classes = [.. r.Classes],
            Commands = Split(r.Commands),
            Tables = Split(r.Tables),
            Functions = Split(r.Functions),
            Flags = Split(r.Flags),
            Pattern = Blank(r.Pattern),
        },
        Message = Blank(r.Message),
        Mask = r.Action == RuleActions.Mask
            ? new MaskSpecDoc { Columns = Split(r.MaskColumns), Detectors = Split(r.MaskDetectors), Strategy = r.MaskStrategy, KeepLast = r.MaskKeepLast, Mode = Blank(r.MaskMode) }
            : null,
        Approval = r.Action == RuleActions.RequireApproval
            ? new ApprovalSpecDoc { Mode = r.ApprovalMode, Approvals = r.Approvals, Group = Blank(r.ApprovalGroup), TimeoutSeconds = r.TimeoutSeconds, WindowMinutes = r.WindowMinutes }
            : null,
    };

    public void MoveRule(int index, int by)
    {
        var to = index + by;
        if (index < 0 || index >= Rules.Count || to < 0 || to >= Rules.Count)
            return;
        (Rules[index], Rules[to]) = (Rules[to], Rules[index]);
    }

    private static List<string> Split(string? text) =>
        (text ?? "").Split([',', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();

    private static string Join(IEnumerable<string>? items) => string.Join(", ", items ?? []);

    private static string? Blank(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();
}
