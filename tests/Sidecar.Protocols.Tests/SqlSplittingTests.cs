using System.Diagnostics;
using Airlock.Sidecar.Protocols.Sql;

namespace Airlock.Sidecar.Protocols.Tests;

/// <summary>Where statements end, as the server's scanner and grammar decide; and that no input crashes or takes more than linear time.</summary>
public class SqlSplittingTests
{
    public static TheoryData<string, bool, int> SplitCases() => new()
    {
        { "SELECT 1; SELECT 2", true, 2 },
        { "SELECT 1;", true, 1 },
        { ";;; SELECT 1 ;; ", true, 1 },
        { "", true, 0 },
        { "-- only a comment", true, 0 },
        { "SELECT E'\\'; DROP TABLE z; --'", true, 1 },
        { "SELECT 'a\\'; DROP TABLE z; --'", true, 2 },
        { "SELECT 'a\\'; DROP TABLE z; --'", false, 1 },
        { "SELECT/* /* */ ; DROP TABLE q */ 1", true, 1 },
        { "SELECT a$b$c FROM t; DROP TABLE x", true, 2 },
        { "SELECT $1$a; DROP TABLE x", true, 2 },
        { "SELECT $a$ ; $a$; SELECT 2", true, 2 },
        { "SELECT $a$ $b$ ; $a$", true, 1 },
        { "SELECT \"a;b\"; SELECT 2", true, 2 },
        { "SELECT U&\"a;\"; SELECT 2", true, 2 },
        { "SELECT U&'\\0041;' UESCAPE '\\'; SELECT 2", true, 2 },
        { "SELECT 1 +--; DROP\n; SELECT 2", true, 2 },
        { "SELECT 1 */* ; */; SELECT 2", true, 2 },
        { "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); DELETE FROM b); SELECT 1", true, 2 },
        { "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END; SELECT 3", true, 2 },
        { "CREATE OR REPLACE PROCEDURE p() BEGIN ATOMIC INSERT INTO t VALUES (1); END; DROP TABLE t", true, 2 },
        { "SELECT 'a'\n'b; DROP'", true, 1 },
        { "SELECT E'a'\n'\\'; DROP TABLE t; --'", true, 1 },
        { "SELECT 'a' 'b'; DROP TABLE t", true, 2 },
        { "SELECT B'0101'; SELECT X'ff'", true, 2 },
        { "BEGIN; SELECT 1; COMMIT", true, 3 },
        { "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1 AS end; SELECT 2; END; SELECT 3", true, 2 },
    };

    [Theory]
    [MemberData(nameof(SplitCases))]
    public void SplitsLikeTheServer(string sql, bool standardConformingStrings, int statements)
    {
        var spans = SqlSplitter.Split(sql, SqlLexer.Tokenize(sql, standardConformingStrings));
        Assert.Equal(statements, spans.Count);
    }

    [Theory]
    [InlineData("SELECT 'unterminated")]
    [InlineData("SELECT \"unterminated")]
    [InlineData("SELECT /* unterminated /* */")]
    [InlineData("SELECT $$ unterminated")]
    [InlineData("SELECT \"\"")]
    [InlineData("SELECT E'\\")]
    public void UnreadableTextIsOneUnknownStatement(string sql)
    {
        var analysis = SqlClassifier.Analyze(sql);
        Assert.NotNull(analysis.Problem);
        Assert.Equal(StatementClass.Unknown, Assert.Single(analysis.Statements).Class);
    }

    [Fact]
    public void ABackslashWhoseMeaningDependsOnTheSettingIsUnknown()
    {
        // With standard_conforming_strings on this is two statements, off one: a SET in flight could change
        // which the server sees, so the gateway does not guess.
        var analysis = SqlClassifier.Analyze("SELECT 'a\\'; DROP TABLE z; --'");
        Assert.Equal(StatementClass.Unknown, Assert.Single(analysis.Statements).Class);
        var safe = SqlClassifier.Analyze("SELECT E'a\\'b'");
        Assert.Equal(StatementClass.Read, Assert.Single(safe.Statements).Class);
    }

    public static TheoryData<string> LongStatements() =>
    [
        "WITH d AS (DELETE FROM t WHERE id = 1 RETURNING *), u AS (UPDATE s SET a = E'x\\'y' WHERE b IN (SELECT c FROM \"q\"\"r\" WHERE $1 > 0)) SELECT pg_read_file('/etc/passwd'), $x$ ; $x$ /* a /* b */ */ FROM d -- end",
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN U&'\\0041' UESCAPE '\\' = 'A' THEN 1 END; END; COPY (SELECT 1) TO PROGRAM 'x'",
        "EXPLAIN (ANALYZE, BUFFERS) MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE; PREPARE p(int) AS SELECT set_config('a', 'b', false) FROM ONLY t",
    ];

    [Theory]
    [MemberData(nameof(LongStatements))]
    public void EveryTruncatedPrefixIsClassifiedWithoutCrashing(string sql)
    {
        for (var length = 0; length <= sql.Length; length++)
        {
            var prefix = sql[..length];
            var analysis = SqlClassifier.Analyze(prefix);
            Assert.All(analysis.Statements, s => Assert.InRange(s.Start + s.Length, 0, prefix.Length));
            var other = SqlClassifier.Analyze(prefix, standardConformingStrings: false);
            Assert.NotNull(other);
        }
    }

    [Fact]
    public void SeededRandomTextNeverCrashes()
    {
        var random = new Random(1234);
        const string alphabet = "SELECT FROM WHERE ( ) ; ' \" $ $a$ E' U&' \\ -- /* */ + - * / = , . :: [ ] 1 x é DELETE WITH AS BEGIN ATOMIC CASE END";
        var pieces = alphabet.Split(' ');
        for (var n = 0; n < 3000; n++)
        {
            var text = string.Join(random.Next(3) == 0 ? "" : " ", Enumerable.Range(0, random.Next(1, 30)).Select(_ => pieces[random.Next(pieces.Length)]));
            var analysis = SqlClassifier.Analyze(text, random.Next(2) == 0);
            // Statements lie inside the text, in order, without overlapping; text that cannot be read is one unknown statement.
            var end = 0;
            foreach (var s in analysis.Statements)
            {
                Assert.InRange(s.Start, end, text.Length);
                Assert.InRange(s.Start + s.Length, s.Start, text.Length);
                end = s.Start + s.Length;
            }
            if (analysis.Problem is not null)
                Assert.Equal(StatementClass.Unknown, Assert.Single(analysis.Statements).Class);
        }
    }

    [Theory]
    [InlineData("deep parentheses")]
    [InlineData("deep comments")]
    [InlineData("long string")]
    [InlineData("many statements")]
    [InlineData("many subqueries")]
    public void ClassifyingTakesLinearTime(string shape)
    {
        string Make(int n) => shape switch
        {
            "deep parentheses" => "SELECT " + new string('(', n) + "1" + new string(')', n),
            "deep comments" => "SELECT 1 " + string.Concat(Enumerable.Repeat("/*", n)) + string.Concat(Enumerable.Repeat("*/", n)),
            "long string" => "SELECT '" + new string('x', n * 20) + "'",
            "many statements" => string.Concat(Enumerable.Repeat("SELECT 1;", n)),
            _ => string.Concat(Enumerable.Repeat("SELECT * FROM t WHERE a IN (", n)) + "SELECT 1" + new string(')', n),
        };
        SqlClassifier.Analyze(Make(1000)); // warm up
        var small = Time(() => SqlClassifier.Analyze(Make(5_000)));
        var large = Time(() => SqlClassifier.Analyze(Make(50_000)));
        // Ten times the input may take at most about ten times as long (generous: the machine is shared).
        Assert.True(large < small * 30 + 50, $"{shape}: 5k took {small} ms, 50k took {large} ms");
    }

    private static double Time(Action action)
    {
        var best = double.MaxValue;
        for (var i = 0; i < 3; i++)
        {
            var watch = Stopwatch.StartNew();
            action();
            best = Math.Min(best, watch.Elapsed.TotalMilliseconds);
        }
        return best;
    }
}
