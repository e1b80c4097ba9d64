using Airlock.Sidecar.Policy.Guardrails;
using Airlock.Sidecar.Protocols.Sql;

namespace Airlock.Sidecar.Policy.Masking;

/// <summary>What masking makes of a message the rules allowed.</summary>
/// <param name="Refusal">Set when masking refuses it (a 42501 naming the rule).</param>
/// <param name="Touches">Its error and notice texts are withheld (it names a masked relation, or runs a prepared statement or cursor that may).</param>
/// <param name="Copy">A COPY of a masked table to the client: how to mask its rows.</param>
public sealed record MaskVerdict(Decision? Refusal, bool Touches, CopyOut? Copy)
{
    public static readonly MaskVerdict Untouched = new(null, false, null);
}

/// <summary>
/// The masking side of a decision, after the rules allowed a message: a statement that could carry a
/// masked value out other than as a plain output column is refused (<see cref="SqlMaskRoutes"/>), and so
/// is anything the gateway cannot follow while masking is in force — statements the classifier does
/// not understand, SQL built at run time, server files, network access, COPY to or from the server, and
/// any statement at all while the target's catalog cannot be read. Pure.
/// </summary>
public static class MaskingJudge
{
    /// <summary>Flags of statements whose data flow the gateway cannot follow.</summary>
    public const StatementFlags Unfollowable = StatementFlags.DynamicSql | StatementFlags.FileAccess | StatementFlags.LargeObjectFile
        | StatementFlags.NetworkAccess | StatementFlags.CopyProgram | StatementFlags.CopyServerFile;

    /// <summary>Statements that run what an earlier one prepared or declared, or report errors of earlier ones (deferred constraints at commit).</summary>
    private static bool RunsEarlierStatement(SqlStatement s) =>
        s.Has(StatementFlags.Execute) || s.Command is "FETCH" or "MOVE" or "EXECUTE" or "CALL" or "COMMIT" or "END" or "COMMIT PREPARED"
            or "PREPARE TRANSACTION" or "RELEASE" or "RELEASE SAVEPOINT" or "SET CONSTRAINTS";

    public static MaskVerdict Judge(MaskedTarget target, string role, string text, IReadOnlyList<SqlStatement> statements, bool standardConformingStrings = true)
    {
        if (target.Problem is { } problem)
            return Refuse("masking", role, $"masking rules are in force on this target and its catalog cannot be read right now ({problem}); try again shortly");
        if (target.Schema.IsEmpty && target.Rules.Detectors.Count == 0)
            return MaskVerdict.Untouched;
        foreach (var s in statements)
        {
            if (s.Class == StatementClass.Unknown)
                return Refuse(FirstRule(target), role, $"masking rules are in force and the statement is not fully understood ({s.Reason ?? s.Command})");
            if ((s.Flags & Unfollowable) != 0)
                return Refuse(FirstRule(target), role, $"masking rules are in force and {s.Command} ({string.Join(", ", StatementNames.Names(s.Flags & Unfollowable))}) could move masked values where the gateway cannot mask them");
        }
        var route = SqlMaskRoutes.Check(text, statements, target.Schema, standardConformingStrings);
        if (route.Refused)
            return Refuse(route.Rule!, role, route.Reason!);
        var touches = route.Touches || statements.Any(RunsEarlierStatement);
        return touches ? new MaskVerdict(null, true, route.Copy) : MaskVerdict.Untouched;
    }

    private static string FirstRule(MaskedTarget target) => target.Rules.FirstRule;

    private static MaskVerdict Refuse(string rule, string role, string reason) =>
        new(new Decision(DecisionAction.Block, rule, $"blocked by masking rule \"{rule}\" of role \"{role}\": {reason}"), true, null);
}
