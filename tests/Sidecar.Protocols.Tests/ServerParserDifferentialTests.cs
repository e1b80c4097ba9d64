using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Airlock.Sidecar.Protocols.Sql;
using Xunit.Abstractions;

namespace Airlock.Sidecar.Protocols.Tests;

/// <summary>
/// The splitter and classifier against PostgreSQL's real parser: the npm package <c>libpg-query</c> (the
/// server's grammar, version 15 like the test server, compiled to WASM) runs under Node
/// (<c>tests/node/parse.cjs</c>). For every text the server's parser accepts, the statements must end
/// where the server's end, and each statement's command must be the kind the server parsed. The corpus
/// is the classifier's table, the splitting cases, and variations of each: upper, lower and mixed case;
/// comments and line breaks in every gap between tokens; table names quoted.
/// </summary>
public class ServerParserDifferentialTests(ITestOutputHelper output)
{
    [Fact]
    public async Task StatementBoundariesAndKindsAgreeWithPostgresParser()
    {
        var corpus = Corpus();
        var oracle = await ParseWithServerParserAsync(corpus);
        var compared = 0;
        var statements = 0;
        var rejected = 0;
        var failClosed = 0;
        var disagreements = new List<string>();
        for (var n = 0; n < corpus.Count; n++)
        {
            var sql = corpus[n];
            var answer = oracle[n];
            if (answer.TryGetProperty("error", out _))
            {
                rejected++; // the server runs none of it either
                continue;
            }
            compared++;
            var server = answer.GetProperty("statements").EnumerateArray().ToList();
            // Boundaries: the splitter with the server's setting (standard_conforming_strings on, as libpg-query).
            var spans = SqlSplitter.Split(sql, SqlLexer.Tokenize(sql));
            if (spans.Count != server.Count)
            {
                disagreements.Add($"{sql}\n    ours: {spans.Count} statements; server: {server.Count} ({string.Join(" | ", server.Select(s => s.GetProperty("kind").GetString()))})");
                continue;
            }
            // Kinds: the classifier. It declines (unknown, on purpose) a text whose statements would differ
            // with standard_conforming_strings off, since a session can change that in flight.
            var ours = SqlClassifier.Analyze(sql);
            if (ours.Problem is not null)
            {
                if (ours.Problem.Contains("standard_conforming_strings", StringComparison.Ordinal))
                    failClosed++;
                else
                    disagreements.Add($"{sql}\n    ours: unreadable ({ours.Problem}); server: {server.Count} statements");
            }
            for (var i = 0; i < server.Count; i++)
            {
                statements++;
                var end = server[i].GetProperty("end").GetInt32();
                var kind = server[i].GetProperty("kind").GetString()!;
                if (spans[i].End != end)
                    disagreements.Add($"{sql}\n    statement {i + 1}: ours ends at {spans[i].End}, the server's at {end}");
                else if (ours.Problem is null && !KindsAgree(ours.Statements[i].Command, kind))
                    disagreements.Add($"{sql}\n    statement {i + 1}: ours is {ours.Statements[i].Command} ({StatementNames.Of(ours.Statements[i].Class)}), the server's {kind}");
            }
        }
        output.WriteLine($"{corpus.Count} texts, {compared} accepted by the server's parser ({statements} statements compared), {rejected} rejected by it; {failClosed} declined as unknown because they read differently with standard_conforming_strings off");
        Assert.True(statements >= 1000, $"only {statements} statements compared");
        Assert.True(disagreements.Count == 0, $"{disagreements.Count} disagreements with PostgreSQL's parser:\n" + string.Join("\n", disagreements.Take(40)));
    }

    /// <summary>Our command tag against the parse node the server made of the statement.</summary>
    private static bool KindsAgree(string command, string kind)
    {
        string[] expected = command switch
        {
            "SELECT" or "VALUES" => ["SelectStmt"],
            "INSERT" => ["InsertStmt"],
            "UPDATE" => ["UpdateStmt"],
            "DELETE" => ["DeleteStmt"],
            "MERGE" => ["MergeStmt"],
            "TRUNCATE TABLE" => ["TruncateStmt"],
            "COPY" => ["CopyStmt"],
            "EXPLAIN" => ["ExplainStmt"],
            "CREATE TABLE" => ["CreateStmt"],
            "CREATE TABLE AS" or "CREATE MATERIALIZED VIEW" => ["CreateTableAsStmt"],
            "CREATE VIEW" => ["ViewStmt"],
            "CREATE INDEX" => ["IndexStmt"],
            "CREATE FUNCTION" or "CREATE PROCEDURE" => ["CreateFunctionStmt"],
            "CREATE TRIGGER" => ["CreateTrigStmt"],
            "CREATE EVENT TRIGGER" => ["CreateEventTrigStmt"],
            "CREATE RULE" => ["RuleStmt"],
            "CREATE EXTENSION" => ["CreateExtensionStmt"],
            "CREATE SCHEMA" => ["CreateSchemaStmt"],
            "CREATE SEQUENCE" => ["CreateSeqStmt"],
            "CREATE DATABASE" => ["CreatedbStmt"],
            "CREATE LANGUAGE" => ["CreatePLangStmt", "CreateExtensionStmt"],
            "SECURITY LABEL" => ["SecLabelStmt"],
            "CREATE SERVER" => ["CreateForeignServerStmt"],
            "CREATE USER MAPPING" => ["CreateUserMappingStmt"],
            "CREATE ROLE" or "CREATE USER" or "CREATE GROUP" => ["CreateRoleStmt"],
            "ALTER ROLE" or "ALTER USER" or "ALTER GROUP" => ["AlterRoleStmt", "AlterRoleSetStmt"],
            "DROP ROLE" or "DROP USER" or "DROP GROUP" => ["DropRoleStmt"],
            "DROP OWNED" => ["DropOwnedStmt"],
            "REASSIGN OWNED" => ["ReassignOwnedStmt"],
            "DROP DATABASE" => ["DropdbStmt"],
            "ALTER DATABASE" => ["AlterDatabaseStmt", "AlterDatabaseSetStmt"],
            "ALTER SYSTEM" => ["AlterSystemStmt"],
            "ALTER TABLE" => ["AlterTableStmt", "RenameStmt", "AlterObjectSchemaStmt"],
            "ALTER DEFAULT PRIVILEGES" => ["AlterDefaultPrivilegesStmt"],
            "GRANT" or "REVOKE" => ["GrantStmt", "GrantRoleStmt"],
            "COMMENT" => ["CommentStmt"],
            "SET" or "RESET" => ["VariableSetStmt", "ConstraintsSetStmt"],
            "SHOW" => ["VariableShowStmt"],
            "BEGIN" or "START TRANSACTION" or "COMMIT" or "ROLLBACK" or "SAVEPOINT" or "RELEASE" or "PREPARE TRANSACTION"
                or "COMMIT PREPARED" or "ROLLBACK PREPARED" => ["TransactionStmt"],
            "PREPARE" => ["PrepareStmt"],
            "EXECUTE" => ["ExecuteStmt"],
            "DEALLOCATE" => ["DeallocateStmt"],
            "DECLARE CURSOR" => ["DeclareCursorStmt"],
            "FETCH" or "MOVE" => ["FetchStmt"],
            "CLOSE" => ["ClosePortalStmt"],
            "LISTEN" => ["ListenStmt"],
            "UNLISTEN" => ["UnlistenStmt"],
            "NOTIFY" => ["NotifyStmt"],
            "LOCK TABLE" => ["LockStmt"],
            "DO" => ["DoStmt"],
            "CALL" => ["CallStmt"],
            "VACUUM" or "ANALYZE" => ["VacuumStmt"],
            "CHECKPOINT" => ["CheckPointStmt"],
            "REINDEX" => ["ReindexStmt"],
            "CLUSTER" => ["ClusterStmt"],
            "LOAD" => ["LoadStmt"],
            "REFRESH MATERIALIZED VIEW" => ["RefreshMatViewStmt"],
            _ when command.StartsWith("DISCARD", StringComparison.Ordinal) => ["DiscardStmt"],
            _ when command.StartsWith("DROP ", StringComparison.Ordinal) => ["DropStmt"],
            _ when command.StartsWith("CREATE ", StringComparison.Ordinal) => [kind.StartsWith("Create", StringComparison.Ordinal) || kind.StartsWith("Define", StringComparison.Ordinal) ? kind : "Create…"],
            _ when command.StartsWith("ALTER ", StringComparison.Ordinal) => [kind.StartsWith("Alter", StringComparison.Ordinal) || kind == "RenameStmt" ? kind : "Alter…"],
            _ => [],
        };
        return expected.Contains(kind);
    }

    // ---- the corpus -----------------------------------------------------------------------------

    private static List<string> Corpus()
    {
        var bases = new List<string>();
        foreach (var row in SqlClassifierTests.Rows())
            bases.Add((string)row[3]);
        foreach (var row in SqlSplittingTests.SplitCases())
            if ((bool)row[1])
                bases.Add((string)row[0]);
        bases.AddRange(MoreStatements);
        // Several statements in one text, as a simple Query carries them.
        for (var i = 0; i + 3 < bases.Count; i += 7)
            bases.Add($"{bases[i]}; {bases[i + 1]};\n{bases[i + 2]} ; {bases[i + 3]};");

        var random = new Random(20261204);
        var corpus = new List<string>();
        foreach (var sql in bases.Distinct())
        {
            corpus.Add(sql);
            corpus.Add(Recase(sql, c => char.ToUpperInvariant(c)));
            corpus.Add(Recase(sql, c => char.ToLowerInvariant(c)));
            corpus.Add(Recase(sql, c => random.Next(2) == 0 ? char.ToUpperInvariant(c) : char.ToLowerInvariant(c)));
            corpus.Add(Regap(sql, random));
            corpus.Add(QuoteTables(sql));
        }
        return corpus.Distinct().ToList();
    }

    private static readonly string[] MoreStatements =
    [
        "SELECT a, b FROM public.customers c WHERE c.id = $1 AND c.email LIKE '%@x.com'",
        "SELECT \"Id\" FROM \"Public\".\"Customers\"",
        "SELECT * FROM ONLY customers",
        "SELECT * FROM a NATURAL JOIN b LEFT OUTER JOIN c USING (id) FULL JOIN d ON true",
        "SELECT x FROM t GROUP BY GROUPING SETS ((a), (b)) HAVING count(*) > 1 WINDOW w AS (PARTITION BY a)",
        "SELECT ARRAY(SELECT id FROM t), ROW(1, 2), (1, 2)",
        "SELECT CASE WHEN a THEN 1 ELSE 2 END FROM t",
        "SELECT 1::int8, '{1,2}'::int[], interval '1 day', DATE '2026-01-01'",
        "SELECT a -> 'b' ->> 'c', a #> '{x}', a @> '{}' FROM t",
        "SELECT * FROM t TABLESAMPLE SYSTEM (10)",
        "SELECT * FROM t WHERE a = ANY($1) AND b BETWEEN 1 AND 2 AND c IS DISTINCT FROM d",
        "SELECT * FROM json_to_recordset('[{\"a\":1}]') AS x(a int)",
        "SELECT * FROM t FETCH FIRST 5 ROWS ONLY",
        "SELECT 1 UNION ALL SELECT 2 EXCEPT SELECT 3 INTERSECT SELECT 4",
        "INSERT INTO t DEFAULT VALUES RETURNING id",
        "INSERT INTO t (a) SELECT a FROM u ON CONFLICT DO NOTHING",
        "UPDATE ONLY t AS x SET (a, b) = (1, 2) WHERE x.id = 1 RETURNING *",
        "DELETE FROM ONLY t WHERE id IN (SELECT id FROM u WHERE u.gone)",
        "WITH a AS MATERIALIZED (SELECT 1), b AS NOT MATERIALIZED (SELECT 2) SELECT * FROM a, b",
        "WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3) SEARCH DEPTH FIRST BY n SET ord SELECT * FROM r",
        "WITH u AS (INSERT INTO t VALUES (1) RETURNING *) UPDATE t SET a = 2 WHERE id IN (SELECT id FROM u)",
        "CREATE TABLE t2 (LIKE t INCLUDING ALL)",
        "CREATE TABLE p (id int, at date) PARTITION BY RANGE (at)",
        "ALTER TABLE t RENAME TO t3",
        "ALTER TABLE IF EXISTS ONLY t DROP COLUMN c",
        "DROP INDEX CONCURRENTLY IF EXISTS i",
        "DROP VIEW v",
        "DROP FUNCTION IF EXISTS f(int)",
        "CREATE TYPE mood AS ENUM ('sad', 'ok')",
        "CREATE DOMAIN posint AS int CHECK (VALUE > 0)",
        "GRANT USAGE ON SCHEMA s TO PUBLIC",
        "REVOKE admin FROM agent",
        "SET LOCAL statement_timeout TO DEFAULT",
        "SET work_mem = '64MB'",
        "RESET statement_timeout",
        "BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY DEFERRABLE",
        "COMMIT AND CHAIN",
        "ROLLBACK AND NO CHAIN",
        "DECLARE c SCROLL CURSOR FOR SELECT * FROM t",
        "FETCH BACKWARD 2 IN c",
        "CLOSE ALL",
        "PREPARE ins (int, text) AS INSERT INTO t VALUES ($1, $2)",
        "EXECUTE ins(1, 'a')",
        "EXPLAIN (FORMAT JSON) SELECT 1",
        "EXPLAIN VERBOSE SELECT 1",
        "COPY t (a, b) TO STDOUT (FORMAT binary)",
        "COPY t FROM STDIN WITH CSV HEADER",
        "NOTIFY ch",
        "LISTEN \"Ch\"",
        "VACUUM (VERBOSE, ANALYZE) t",
        "SELECT pg_sleep(0.1)",
        "SELECT 'a' -- comment with ; and '\n || 'b'",
        "SELECT 'multi'\n  'line'\n\t'string'",
        "SELECT 1 /* a */ + /* b */ 2 -- c",
        "SELECT $a$x$a$ || $$y$$ || $_$z$_$",
        "SELECT a$ FROM t",
        "SELECT é, \"ü\" FROM ñ",
        "SELECT U&\"\\0441\\043B\\043E\\043D\" FROM t",
        "SELECT 0x1F, 1_000, .5, 1e10, 1.5e-3",
        "SELECT * FROM t WHERE a !~ 'x' AND b ~* 'y' AND c !~~ 'z'",
        "SELECT 2 ^ 3, 5 % 2, |/ 16, @ -5, 7 & 3, 7 | 8, 1 << 2, ~1",
        "CREATE FUNCTION g(a int) RETURNS int LANGUAGE sql IMMUTABLE RETURN a + 1",
        "CREATE FUNCTION h() RETURNS TABLE (x int) LANGUAGE sql BEGIN ATOMIC SELECT 1; END",
        "CREATE TRIGGER t1 AFTER INSERT OR UPDATE ON t FOR EACH STATEMENT EXECUTE PROCEDURE f()",
        "SECURITY LABEL FOR selinux ON TABLE t IS 'x'",
    ];

    private static string Recase(string sql, Func<char, char> change)
    {
        var tokens = SqlLexer.Tokenize(sql);
        var chars = sql.ToCharArray();
        foreach (var t in tokens)
            if (t.Kind == SqlTokenKind.Word)
                for (var i = t.Start; i < t.End; i++)
                    chars[i] = change(chars[i]);
        return new string(chars);
    }

    private static readonly string[] Gaps = [" ", "\n", "\t", " /* c */ ", " /* a /* nested ; */ b */ ", " -- c ; d\n", "\r\n  ", " /**/ "];

    /// <summary>Every gap between two tokens (whitespace or none) replaced by a random gap: space, line breaks, comments.</summary>
    private static string Regap(string sql, Random random)
    {
        var tokens = SqlLexer.Tokenize(sql);
        var text = new StringBuilder();
        var at = 0;
        foreach (var t in tokens)
        {
            var gap = sql[at..t.Start];
            if (at > 0 && gap.Trim().Length == 0)
                text.Append(Gaps[random.Next(Gaps.Length)]);
            else
                text.Append(gap);
            text.Append(sql, t.Start, t.Length);
            at = t.End;
        }
        text.Append(sql[at..]);
        return text.ToString();
    }

    /// <summary>Every unquoted word that the classifier found to be a table, quoted (meaning unchanged: a quoted lower-case name is the same name).</summary>
    private static string QuoteTables(string sql)
    {
        var analysis = SqlClassifier.Analyze(sql);
        var tables = analysis.Statements.SelectMany(s => s.TablesRead.Concat(s.TablesWritten)).SelectMany(n => n.Split('.'))
            .Where(n => n.All(c => c is (>= 'a' and <= 'z') or '_' or (>= '0' and <= '9'))).ToHashSet();
        var tokens = SqlLexer.Tokenize(sql);
        var text = new StringBuilder(sql);
        foreach (var t in tokens.AsEnumerable().Reverse())
            if (t.Kind == SqlTokenKind.Word && tables.Contains(sql.Substring(t.Start, t.Length)))
            {
                text.Insert(t.End, '"');
                text.Insert(t.Start, '"');
            }
        return text.ToString();
    }

    private static async Task<List<JsonElement>> ParseWithServerParserAsync(List<string> corpus)
    {
        var root = RepositoryRoot();
        var script = Path.Combine(root, "tests", "node", "parse.cjs");
        Assert.True(Directory.Exists(Path.Combine(root, "tests", "node", "node_modules", "libpg-query")),
            "libpg-query is not installed: scripts/test.sh runs 'npm install' in tests/node");
        var start = new ProcessStartInfo("node", [script])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var node = Process.Start(start)!;
        var stdout = node.StandardOutput.ReadToEndAsync();
        var stderr = node.StandardError.ReadToEndAsync();
        await node.StandardInput.WriteAsync(JsonSerializer.Serialize(corpus));
        node.StandardInput.Close();
        await node.WaitForExitAsync();
        Assert.True(node.ExitCode == 0, $"node parse.cjs failed: {await stderr}");
        return JsonDocument.Parse(await stdout).RootElement.EnumerateArray().ToList();
    }

    private static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "ControlPlane.sln")))
            dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("repository root not found");
    }
}
