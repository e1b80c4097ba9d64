namespace Airlock.ControlPlane.Identity;

/// <summary>The three console roles. Admins manage everything; Approvers decide approval requests; Auditors read.</summary>
public static class ConsoleRoles
{
    public const string Admin = "Admin";
    public const string Approver = "Approver";
    public const string Auditor = "Auditor";

    public static IReadOnlyList<string> All { get; } = [Admin, Approver, Auditor];

    public static bool IsKnown(string role) => All.Contains(role, StringComparer.Ordinal);
}

/// <summary>Authorization policy names; every endpoint and page names one.</summary>
public static class AccessPolicies
{
    /// <summary>Admin only: every change.</summary>
    public const string Admin = "airlock:admin";

    /// <summary>Any console role: read-only views.</summary>
    public const string Viewer = "airlock:viewer";

    /// <summary>Admin or Approver.</summary>
    public const string Approver = "airlock:approver";

    /// <summary>An enrolled, unrevoked sidecar.</summary>
    public const string Sidecar = "airlock:sidecar";
}

/// <summary>Approver group names: what a rule's <c>approval.group</c> and a user's groups hold.</summary>
public static partial class ConsoleGroupName
{
    public const string Rule = "1–64 letters, digits, '.', '_' or '-'";

    [System.Text.RegularExpressions.GeneratedRegex("^[A-Za-z0-9._-]{1,64}$")]
    private static partial System.Text.RegularExpressions.Regex Pattern();

    public static bool IsValid(string name) => Pattern().IsMatch(name);
}
