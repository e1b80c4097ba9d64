using System.Collections.Concurrent;
using Airlock.Sidecar.ControlPlane;
using Airlock.Sidecar.Policy;
using Airlock.Sidecar.Policy.Masking;
using Airlock.Sidecar.Protocols.Postgres;
using Airlock.Sidecar.Protocols.Sql;

namespace Airlock.Sidecar.Postgres;

/// <summary>
/// Masking for one session: its role's masking rules on its target, resolved against the target's
/// catalog (for the guard), and what the relay needs to mask what the target sends — a plan per result
/// (kept per RowDescription), a COPY masker, and the withheld text of errors and notices. The rules are
/// read per statement (a new snapshot applies at once).
/// </summary>
internal sealed class SessionMasking(MaskCatalog catalog, TargetPolicy target, Func<MaskRules> rules, ValueMasker masker) : PostgresStatementGuard.IMasking
{
    public async ValueTask<MaskedTarget?> CurrentAsync()
    {
        var current = rules();
        Last = current.IsEmpty ? null : await catalog.GetAsync(target, current);
        return Last;
    }

    public MaskedTarget? Last { get; private set; }

    /// <summary>Whether anything the target sends may need masking (the relay skips all of this otherwise).</summary>
    public bool Active => Last is not null;

    private IReadOnlyList<ResultColumn>? _planColumns;
    private MaskedTarget? _planTarget;
    private bool _planTouched;
    private ResultMaskPlan? _plan;

    /// <summary>
    /// The plan for the rows of a result with <paramref name="columns"/>; null when nothing in it is
    /// masked (rows are forwarded as they came). Columns no RowDescription announced get a blind plan:
    /// every value NULL (fail closed).
    /// </summary>
    public ResultMaskPlan? PlanFor(IReadOnlyList<ResultColumn>? columns, StatementVerdict? verdict)
    {
        var masked = Last;
        if (masked is null)
            return null;
        var touched = verdict?.Masked ?? true;
        if (ReferenceEquals(columns, _planColumns) && ReferenceEquals(masked, _planTarget) && touched == _planTouched && columns is not null)
            return _plan;
        _planColumns = columns;
        _planTarget = masked;
        _planTouched = touched;
        _plan = columns is null ? ((touched && masked.HasColumns) || masked.Rules.Detectors.Count > 0 ? ResultMaskPlan.Blind(masker) : null) : Build(columns, masked, touched);
        return _plan;
    }

    private ResultMaskPlan? Build(IReadOnlyList<ResultColumn> columns, MaskedTarget masked, bool touched)
    {
        var plans = new ColumnPlan?[columns.Count];
        var any = false;
        for (var i = 0; i < columns.Count; i++)
        {
            var c = columns[i];
            ColumnPlan? plan = null;
            if (masked.Find(c.TableOid, c.ColumnNumber, c.Name, out var stale) is { } found)
            {
                plan = new ColumnPlan(found.Label, c.TypeOid, c.Format, found.Mask);
                if (stale)
                    catalog.Forget(target.Name); // the table changed since the catalog was read: read it again for the next statement
            }
            else if (c.TableOid == 0 && touched && masked.Schema.Columns.TryGetValue(c.Name, out var byName))
            {
                // Defence in depth: an output the server did not attribute, named like a masked column, of a
                // statement that reads a masked table (the statement check should have refused any way there).
                var rule = masked.Rules.Columns.First(n => n.Mask.Rule == byName.Rule).Mask;
                plan = new ColumnPlan(c.Name, c.TypeOid, c.Format, rule);
            }
            else if (c.TableOid == 0 && masked.Rules.Detectors.Count > 0)
                plan = new ColumnPlan(c.Name, c.TypeOid, c.Format, null, masked.Rules.Detectors);
            plans[i] = plan;
            any |= plan is not null;
        }
        return any ? new ResultMaskPlan(plans, masker) : null;
    }

    /// <summary>A masker for the rows of a COPY of a masked table, or null when its columns cannot be worked out (the caller refuses to stream it).</summary>
    public CopyMasker? StartCopy(CopyOut copy)
    {
        if (Last?.CopyMasks(copy.Relation, copy.Columns) is not { } columns)
            return null;
        try
        {
            return new CopyMasker(copy, columns, masker);
        }
        catch (ArgumentException)
        {
            return null;
        }
    }

    /// <summary>What the agent hears instead of the server's error or notice for a statement that touches masked columns: the severity and SQLSTATE, not the text (the server quotes values in messages).</summary>
    public static PgError Withheld(PgError original) => new(original.Severity, original.SqlState,
        $"the server's message is withheld because the statement touches masked columns (SQLSTATE {original.SqlState})");

    /// <summary>The hash key of each target, opened once per sealed value.</summary>
    public static byte[]? OpenKey(TargetPolicy target, SidecarIdentity identity)
    {
        if (target.SealedMaskingKey is not { } sealedKey)
            return null;
        return Keys.GetOrAdd(sealedKey, value =>
        {
            using var key = identity.OpenSealingKey();
            return CredentialSeal.Open(value, identity.SidecarId, key) is { } opened ? Convert.FromBase64String(opened) : null;
        });
    }

    private static readonly ConcurrentDictionary<string, byte[]?> Keys = new(StringComparer.Ordinal);
}
