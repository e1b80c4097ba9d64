using System.Runtime.CompilerServices;
using Airlock.Sidecar.Protocols.Sql;

namespace Airlock.Sidecar.Policy.Masking;

public enum MaskStrategy
{
    /// <summary>A placeholder that is a valid value of the column's type (<c>****</c>, 0, a zero UUID), or NULL where no such placeholder is harmless.</summary>
    Redact,
    /// <summary>All but the last N characters hidden, keeping an email's domain and a card number's separators.</summary>
    Partial,
    /// <summary>A keyed HMAC of the value (the target's key): equal values give equal masks, so joins and grouping still work.</summary>
    Hash,
    Null,
}

/// <summary>How one masked column is masked, and by which rule.</summary>
public sealed record ColumnMask(string Rule, MaskStrategy Strategy, int KeepLast, MaskUse Use)
{
    public const int DefaultKeepLast = 4;
}

/// <summary>A rule's column pattern: <c>table.column</c> (any schema) or <c>schema.table.column</c>.</summary>
public sealed record MaskedColumnName(string? Schema, string Table, string Column, ColumnMask Mask);

/// <summary>A rule's content detectors, applied to values whose column the server does not attribute to a table.</summary>
public sealed record DetectorMask(string Rule, MaskStrategy Strategy, int KeepLast, IReadOnlyList<ContentDetector> Detectors);

/// <summary>
/// The masking rules of a role as they apply on one target, compiled once per snapshot: column names
/// (matched without case, the first rule in order naming a column wins) and content detectors.
/// </summary>
public sealed class MaskRules
{
    private MaskRules(IReadOnlyList<MaskedColumnName> columns, IReadOnlyList<DetectorMask> detectors)
    {
        Columns = columns;
        Detectors = detectors;
        Fingerprint = string.Join("|", columns.Select(c => $"{c.Schema}.{c.Table}.{c.Column}:{c.Mask}"))
                      + "#" + string.Join("|", detectors.Select(d => $"{d.Rule}:{d.Strategy}:{d.KeepLast}:{string.Join(",", d.Detectors)}"));
    }

    /// <summary>The rule named when masking as a whole refuses something (the first masking rule).</summary>
    public string FirstRule => Columns.FirstOrDefault()?.Mask.Rule ?? Detectors.FirstOrDefault()?.Rule ?? "masking";

    /// <summary>Equal for equal rules (whatever snapshot they came in): what a session compares to see whether masking changed.</summary>
    public string Fingerprint { get; }

    public IReadOnlyList<MaskedColumnName> Columns { get; }
    public IReadOnlyList<DetectorMask> Detectors { get; }
    public bool IsEmpty => Columns.Count == 0 && Detectors.Count == 0;

    public static readonly MaskRules None = new([], []);

    private static readonly ConditionalWeakTable<RolePolicy, Dictionary<string, MaskRules>> Compiled = new();

    public static MaskRules For(RolePolicy role, string target)
    {
        var byTarget = Compiled.GetValue(role, _ => new Dictionary<string, MaskRules>(StringComparer.Ordinal));
        lock (byTarget)
        {
            if (!byTarget.TryGetValue(target, out var rules))
                byTarget[target] = rules = Compile(role.Rules.Where(r => r.Targets.Count == 0 || r.Targets.Contains(target, StringComparer.Ordinal)));
            return rules;
        }
    }

    public static MaskRules Compile(IEnumerable<RulePolicy> rules)
    {
        var columns = new List<MaskedColumnName>();
        var detectors = new List<DetectorMask>();
        foreach (var rule in rules)
        {
            if (rule.Action != RuleActions.Mask || rule.Mask is not { } spec)
                continue;
            var strategy = ParseStrategy(spec.Strategy);
            var keepLast = spec.KeepLast ?? ColumnMask.DefaultKeepLast;
            var mask = new ColumnMask(rule.Name, strategy, keepLast, ParseUse(spec.Mode));
            foreach (var name in spec.Columns)
            {
                var parts = name.Trim().Split('.');
                if (parts.Length == 2)
                    columns.Add(new MaskedColumnName(null, parts[0], parts[1], mask));
                else if (parts.Length == 3)
                    columns.Add(new MaskedColumnName(parts[0], parts[1], parts[2], mask));
                else if (parts.Length == 1)
                    columns.Add(new MaskedColumnName(null, "*", parts[0], mask)); // a bare column name: in every table (stricter)
            }
            var known = spec.Detectors.Select(ContentDetectors.Parse).ToList();
            if (known.Count > 0)
                detectors.Add(new DetectorMask(rule.Name, strategy, keepLast, known));
        }
        return columns.Count == 0 && detectors.Count == 0 ? None : new MaskRules(columns, detectors);
    }

    /// <summary>An unknown strategy (a newer control plane) masks the strictest way: NULL.</summary>
    public static MaskStrategy ParseStrategy(string? name) => name switch
    {
        "redact" or null => MaskStrategy.Redact,
        "partial" => MaskStrategy.Partial,
        "hash" => MaskStrategy.Hash,
        _ => MaskStrategy.Null,
    };

    /// <summary>An unknown mode is strict.</summary>
    public static MaskUse ParseUse(string? name) => name switch
    {
        null or "" or MaskModes.Default => MaskUse.Default,
        MaskModes.OutputOnly => MaskUse.OutputOnly,
        _ => MaskUse.Strict,
    };

    /// <summary>The mask of <paramref name="schema"/>.<paramref name="table"/>.<paramref name="column"/>, or null.</summary>
    public ColumnMask? Find(string schema, string table, string column)
    {
        foreach (var c in Columns)
            if (string.Equals(c.Column, column, StringComparison.OrdinalIgnoreCase)
                && (c.Table == "*" || string.Equals(c.Table, table, StringComparison.OrdinalIgnoreCase))
                && (c.Schema is null || string.Equals(c.Schema, schema, StringComparison.OrdinalIgnoreCase)))
                return c.Mask;
        return null;
    }
}

public static class MaskModes
{
    public const string Default = "default";
    public const string Strict = "strict";
    public const string OutputOnly = "output_only";
    public static IReadOnlyList<string> All { get; } = [Default, Strict, OutputOnly];
}
