namespace Airlock.Sidecar.Protocols.Postgres;

/// <summary>The fastpath FunctionCall ('F') calls a function by OID; the gateway allows it only for these.</summary>
public static class PgFastpath
{
    /// <summary>
    /// The large-object functions by their fixed OIDs in pg_catalog (the same in every PostgreSQL
    /// release; a test checks them against the server): what libpq's and Npgsql's large-object APIs call
    /// by fastpath. Reads are read, the rest write large objects.
    /// </summary>
    public static readonly IReadOnlyDictionary<int, (string Name, bool Writes)> LargeObjectFunctions = new Dictionary<int, (string, bool)>
    {
        [952] = ("lo_open", false), [953] = ("lo_close", false), [954] = ("loread", false), [955] = ("lowrite", true),
        [956] = ("lo_lseek", false), [957] = ("lo_creat", true), [958] = ("lo_tell", false), [964] = ("lo_unlink", true),
        [715] = ("lo_create", true), [1004] = ("lo_truncate", true), [3170] = ("lo_lseek64", false), [3171] = ("lo_tell64", false),
        [3172] = ("lo_truncate64", true),
    };
}
