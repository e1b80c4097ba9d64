namespace Airlock.Sidecar.Protocols;

/// <summary>The wire protocols a target can speak. Only <see cref="Postgres"/> has a gateway so far.</summary>
public static class TargetKind
{
    public const string Postgres = "postgres";
    public const string Ssh = "ssh";
    public const string Kubernetes = "kubernetes";
    public const string MySql = "mysql";
    public const string Http = "http";

    public static IReadOnlyList<string> All { get; } = [Postgres, Ssh, Kubernetes, MySql, Http];

    public static bool IsKnown(string kind) => All.Contains(kind, StringComparer.Ordinal);
}
