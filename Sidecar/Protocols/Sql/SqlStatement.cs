namespace Airlock.Sidecar.Protocols.Sql;

/// <summary>What a statement does, in rising order of risk: a statement doing several things has the highest.</summary>
public enum StatementClass
{
    Read,
    Write,
    Ddl,
    Dcl,
    Admin,
    /// <summary>Not fully understood (dynamic SQL, procedural code, a syntax the classifier does not know): blocked unless a rule allows it by name.</summary>
    Unknown,
}

/// <summary>Facts about a statement that rules can match on (snake_case names in the policy document).</summary>
[Flags]
public enum StatementFlags : long
{
    None = 0,
    /// <summary><c>UPDATE</c>/<c>DELETE</c> without <c>WHERE</c>, or with a condition that is trivially true (<c>WHERE true</c>, <c>1=1</c>, <c>id = id</c>, <c>… OR true</c>).</summary>
    UnfilteredWrite = 1L << 0,
    DataModifyingCte = 1L << 1,
    /// <summary><c>EXPLAIN ANALYZE</c>: the statement runs.</summary>
    ExplainAnalyze = 1L << 2,
    SelectInto = 1L << 3,
    CreateTableAs = 1L << 4,
    Merge = 1L << 5,
    /// <summary><c>COPY … PROGRAM</c>: a shell command on the database server.</summary>
    CopyProgram = 1L << 6,
    /// <summary><c>COPY</c> to or from a file on the database server.</summary>
    CopyServerFile = 1L << 7,
    CopyFrom = 1L << 8,
    CopyTo = 1L << 9,
    /// <summary>SQL-level <c>PREPARE</c> (judged as the statement it prepares).</summary>
    Prepare = 1L << 10,
    /// <summary>SQL-level <c>EXECUTE</c> (judged as the statement prepared under that name in this session).</summary>
    Execute = 1L << 11,
    /// <summary><c>DO</c>, <c>CALL</c>, and functions that run SQL given as text.</summary>
    DynamicSql = 1L << 12,
    /// <summary><c>SET ROLE</c>, <c>RESET ROLE</c>.</summary>
    RoleChange = 1L << 13,
    SessionAuthorization = 1L << 14,
    SearchPathChange = 1L << 15,
    /// <summary>A <c>SET</c> of a setting not on the harmless list, or <c>set_config</c>.</summary>
    SettingChange = 1L << 16,
    Reset = 1L << 17,
    /// <summary><c>BEGIN</c>/<c>SET TRANSACTION</c>/<c>SET SESSION CHARACTERISTICS</c> with modes.</summary>
    TransactionMode = 1L << 18,
    /// <summary>Anything that would turn a read-only session writable (<c>READ WRITE</c>, <c>transaction_read_only</c>, <c>default_transaction_read_only</c>).</summary>
    ReadWriteTransaction = 1L << 19,
    AlterSystem = 1L << 20,
    Load = 1L << 21,
    CreateExtension = 1L << 22,
    /// <summary><c>CREATE FUNCTION</c>/<c>PROCEDURE</c> (procedural bodies), <c>CREATE LANGUAGE</c>.</summary>
    CreateRoutine = 1L << 23,
    CreateTrigger = 1L << 24,
    CreateRule = 1L << 25,
    CreateEventTrigger = 1L << 26,
    /// <summary><c>LOCK TABLE</c>.</summary>
    Lock = 1L << 27,
    /// <summary><c>SELECT … FOR UPDATE/SHARE</c>.</summary>
    RowLock = 1L << 28,
    Listen = 1L << 29,
    Notify = 1L << 30,
    /// <summary><c>CREATE/ALTER/DROP ROLE|USER|GROUP</c>.</summary>
    RoleStatement = 1L << 31,
    /// <summary><c>GRANT</c>, <c>REVOKE</c>, <c>ALTER DEFAULT PRIVILEGES</c>, <c>REASSIGN/DROP OWNED</c>.</summary>
    Grant = 1L << 32,
    Cursor = 1L << 33,
    /// <summary>Server files: <c>pg_read_file</c>, <c>pg_ls_dir</c>, <c>pg_stat_file</c>, adminpack …</summary>
    FileAccess = 1L << 34,
    /// <summary>Network access from the server: <c>dblink*</c>, <c>postgres_fdw</c> connections.</summary>
    NetworkAccess = 1L << 35,
    /// <summary>Large objects from or to server files: <c>lo_import</c>, <c>lo_export</c>.</summary>
    LargeObjectFile = 1L << 36,
    /// <summary><c>pg_terminate_backend</c>, <c>pg_cancel_backend</c>, <c>pg_reload_conf</c> …</summary>
    BackendSignal = 1L << 37,
    AdvisoryLock = 1L << 38,
    /// <summary>Replication slots, WAL, backups, restore points, statistics resets.</summary>
    ReplicationOrWal = 1L << 39,
    /// <summary>A function the classifier does not know (judged by the target's catalog when the sidecar can read it).</summary>
    UnknownFunction = 1L << 40,
    /// <summary>A function the target's catalog says is volatile and that is not on the safe list.</summary>
    VolatileFunction = 1L << 41,
    /// <summary>A change to how the server reads SQL text (<c>standard_conforming_strings</c>, <c>client_encoding</c> …).</summary>
    LexerSetting = 1L << 42,
    /// <summary>The text contains a password literal (redacted in recordings).</summary>
    PasswordLiteral = 1L << 43,
    /// <summary>A large object written or created (<c>lo_create</c>, <c>lowrite</c>, <c>lo_unlink</c> …).</summary>
    LargeObjectWrite = 1L << 44,
    Truncate = 1L << 45,
    Vacuum = 1L << 46,
}

/// <summary>One statement as the classifier understood it.</summary>
/// <param name="Command">The command tag as the server would report it, upper case (<c>SELECT</c>, <c>DROP TABLE</c>, <c>CREATE FUNCTION</c>…), or <c>UNKNOWN</c>.</param>
/// <param name="Start">Offset of its first character in the message text.</param>
/// <param name="Length">Up to (not including) its terminating semicolon.</param>
/// <param name="Functions">Functions called, lower case, without a <c>pg_catalog.</c> prefix (other schemas kept).</param>
/// <param name="PreparedName">For <c>PREPARE</c>: the name; for <c>DEALLOCATE</c>: the name, or <c>*</c> for ALL.</param>
/// <param name="ExecuteName">For <c>EXECUTE</c>: the name of the prepared statement it runs.</param>
/// <param name="Reason">Why the class is what it is, when that is not obvious from the command (for the recording and errors).</param>
/// <param name="Fields">Names selected with a dot (<c>x.name</c>): columns, or calls in attribute notation (<c>x.f</c> is <c>f(x)</c>), which only the target's catalog can tell apart.</param>
public sealed record SqlStatement(
    string Command,
    StatementClass Class,
    StatementFlags Flags,
    IReadOnlyList<string> TablesRead,
    IReadOnlyList<string> TablesWritten,
    IReadOnlyList<string> Functions,
    int Start,
    int Length,
    string? PreparedName = null,
    string? ExecuteName = null,
    string? Reason = null,
    IReadOnlyList<string>? Fields = null)
{
    public bool Has(StatementFlags flag) => (Flags & flag) != 0;
}

/// <summary>Names of classes and flags as the policy document spells them.</summary>
public static class StatementNames
{
    public static string Of(StatementClass c) => c switch
    {
        StatementClass.Read => "read",
        StatementClass.Write => "write",
        StatementClass.Ddl => "ddl",
        StatementClass.Dcl => "dcl",
        StatementClass.Admin => "admin",
        _ => "unknown",
    };

    public static bool TryParseClass(string name, out StatementClass value)
    {
        foreach (var c in Enum.GetValues<StatementClass>())
            if (Of(c) == name)
            {
                value = c;
                return true;
            }
        value = StatementClass.Unknown;
        return false;
    }

    /// <summary><c>UnfilteredWrite</c> → <c>unfiltered_write</c>.</summary>
    public static string Of(StatementFlags flag)
    {
        var name = flag.ToString();
        var snake = new System.Text.StringBuilder(name.Length + 4);
        for (var i = 0; i < name.Length; i++)
        {
            if (char.IsUpper(name[i]) && i > 0)
                snake.Append('_');
            snake.Append(char.ToLowerInvariant(name[i]));
        }
        return snake.ToString();
    }

    public static IReadOnlyList<string> AllFlags { get; } =
        Enum.GetValues<StatementFlags>().Where(f => f != StatementFlags.None).Select(Of).ToArray();

    public static bool TryParseFlag(string name, out StatementFlags flag)
    {
        foreach (var f in Enum.GetValues<StatementFlags>())
            if (f != StatementFlags.None && Of(f) == name)
            {
                flag = f;
                return true;
            }
        flag = StatementFlags.None;
        return false;
    }

    /// <summary>The set flags by name, in declaration order.</summary>
    public static IReadOnlyList<string> Names(StatementFlags flags) =>
        flags == StatementFlags.None ? [] : Enum.GetValues<StatementFlags>().Where(f => f != StatementFlags.None && (flags & f) != 0).Select(Of).ToArray();
}
