using Airlock.Sidecar.Policy;
using Airlock.Sidecar.Policy.Guardrails;
using Airlock.Sidecar.Protocols.Sql;

namespace Airlock.Sidecar.Policy.Tests;

/// <summary>
/// The evaluator, table-driven: a rule set (by name below), a statement, the decision and the deciding
/// rule. Then the session judge: PREPARE/EXECUTE by name, the read-only guard, the client encoding, and
/// functions judged by the catalog.
/// </summary>
public class EvaluatorTests
{
    private static RulePolicy Rule(string name, string action, string[]? classes = null, string[]? commands = null, string[]? tables = null,
        string? pattern = null, string[]? functions = null, string[]? flags = null, string[]? targets = null, string? message = null) =>
        new(name, action, targets ?? [], new RuleMatch(classes ?? [], commands ?? [], tables ?? [], pattern, functions, flags), message, null,
            action == RuleActions.RequireApproval ? new ApprovalSpec("hold", 1, null, 900) : null);

    private static readonly Dictionary<string, RulePolicy[]> Sets = new()
    {
        ["none"] = [],
        ["safe"] = [.. Baselines.AgentSafeRules],
        ["safe+writes"] = [.. Baselines.AgentSafeRules, Rule("writes", "allow", classes: ["write"])],
        ["safe+ddl"] = [.. Baselines.AgentSafeRules, Rule("ddl", "allow", classes: ["ddl"])],
        ["everything"] = [Rule("all", "allow", classes: ["read", "write", "ddl", "dcl", "admin", "unknown"])],
        ["match-all-allow"] = [Rule("any", "allow")],
        ["match-all-block"] = [Rule("any", "allow"), Rule("nothing", "block")],
        ["tables"] = [Rule("reads", "allow", classes: ["read"]), Rule("writes", "allow", classes: ["write"]),
            Rule("keep-customers", "block", tables: ["customers"], classes: ["write"], message: "customers are kept"),
            Rule("approve-sales", "require_approval", tables: ["sales.orders"])],
        ["commands"] = [Rule("reads", "allow", classes: ["read", "write", "ddl"]), Rule("no-drop", "block", commands: ["DROP"]),
            Rule("no-truncate", "block", commands: ["truncate table"])],
        ["functions"] = [Rule("reads", "allow", classes: ["read"]), Rule("no-sleep", "block", functions: ["pg_catalog.pg_sleep"])],
        ["pattern"] = [Rule("reads", "allow", classes: ["read"]), Rule("no-secrets", "block", pattern: @"\bSECRET_\w+")],
        ["flags"] = [Rule("all", "allow", classes: ["read", "write"]), Rule("no-locks", "block", flags: ["row_lock", "lock"])],
        ["approval-vs-block"] = [Rule("all", "allow", classes: ["write"]), Rule("approve", "require_approval", classes: ["write"]), Rule("block-deletes", "block", commands: ["DELETE"])],
        ["unknown-allowed"] = [Rule("reads", "allow", classes: ["read"]), Rule("dynamic", "allow", classes: ["unknown"])],
        ["other-target"] = [Rule("reads", "allow", classes: ["read"]), Rule("elsewhere", "block", classes: ["read"], targets: ["other"])],
        ["future"] = [Rule("reads", "allow", classes: ["read", "quantum"]), Rule("odd-block", "block", flags: ["from_the_future"], commands: ["SELECT"])],
    };

    private const string Table = """
        none               SELECT 1                                            block  default-deny
        safe               SELECT 1                                            allow  agent-safe/reads
        safe               select * from t where a = 1                         allow  agent-safe/reads
        safe               INSERT INTO t VALUES (1)                            block  default-deny
        safe               UPDATE t SET a = 1                                  block  agent-safe/filtered-writes
        safe               TRUNCATE t                                          block  agent-safe/filtered-writes
        safe               DROP TABLE t                                        block  default-deny
        safe               GRANT ALL ON t TO PUBLIC                            block  agent-safe/no-administration
        safe               SET ROLE postgres                                   block  agent-safe/no-administration
        safe               SET search_path = x                                 block  agent-safe/no-administration
        safe               SELECT pg_read_file('x')                            block  agent-safe/no-administration
        safe               SELECT lo_import('x')                               block  agent-safe/no-administration
        safe               COPY t TO PROGRAM 'x'                               block  agent-safe/no-administration
        safe               DO $$ BEGIN END $$                                  block  agent-safe/no-escape-hatches
        safe               LOCK TABLE t                                        block  agent-safe/no-escape-hatches
        safe               CREATE FUNCTION f() RETURNS int AS 'select 1' LANGUAGE sql  block  agent-safe/no-escape-hatches
        safe               SELECT * FROM t FOR UPDATE                          block  default-deny
        safe               SET statement_timeout = 5                           allow  agent-safe/reads
        safe               BEGIN READ WRITE                                    allow  agent-safe/reads
        safe               SELECT my_function(1)                               block  default-deny
        safe               SELECT query_to_xml('select 1', true, true, '')     block  agent-safe/no-escape-hatches
        safe               EXECUTE p                                           block  default-deny
        safe+writes        INSERT INTO t VALUES (1)                            allow  writes
        safe+writes        DELETE FROM t WHERE id = 5                          allow  writes
        safe+writes        DELETE FROM t WHERE 1 = 1                           block  agent-safe/filtered-writes
        safe+writes        DELETE FROM t                                       block  agent-safe/filtered-writes
        safe+writes        WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d  block  agent-safe/filtered-writes
        safe+writes        SELECT my_function(1)                               allow  writes
        safe+writes        SELECT * FROM t FOR UPDATE                          allow  writes
        safe+writes        SELECT pg_advisory_lock(1)                          block  agent-safe/no-administration
        safe+writes        DROP TABLE t                                        block  default-deny
        safe+ddl           CREATE TEMP TABLE x (a int)                         allow  ddl
        safe+ddl           CREATE EXTENSION dblink                             block  agent-safe/no-escape-hatches
        safe+ddl           CREATE TRIGGER t AFTER INSERT ON x FOR EACH ROW EXECUTE FUNCTION f()  block  agent-safe/no-escape-hatches
        everything         DROP TABLE t                                        allow  all
        everything         DO $$ BEGIN END $$                                  allow  all
        match-all-allow    DROP TABLE t                                        allow  any
        match-all-allow    SET ROLE x                                          allow  any
        match-all-allow    DO $$ BEGIN END $$                                  block  default-deny
        match-all-block    SELECT 1                                            block  nothing
        match-all-block    DO $$ BEGIN END $$                                  block  nothing
        tables             UPDATE customers SET a = 1 WHERE id = 1             block  keep-customers
        tables             UPDATE public.Customers SET a = 1 WHERE id = 1      block  keep-customers
        tables             UPDATE "customers" SET a = 1 WHERE id = 1           block  keep-customers
        tables             SELECT * FROM customers                             allow  reads
        tables             UPDATE other SET a = 1 WHERE id = 1                 allow  writes
        tables             SELECT * FROM sales.orders                          require_approval  approve-sales
        tables             SELECT * FROM orders                                allow  reads
        commands           DROP TABLE t                                        block  no-drop
        commands           drop index i                                        block  no-drop
        commands           TRUNCATE t                                          block  no-truncate
        commands           CREATE TABLE x (a int)                              allow  reads
        functions          SELECT pg_sleep(1)                                  block  no-sleep
        functions          SELECT PG_CATALOG.PG_SLEEP(1)                       block  no-sleep
        functions          SELECT now()                                        allow  reads
        pattern            SELECT secret_token FROM t                          block  no-secrets
        pattern            SELECT /* c */ Secret_Key FROM t                    block  no-secrets
        pattern            SELECT token FROM t                                 allow  reads
        flags              SELECT * FROM t FOR SHARE                           block  no-locks
        flags              LOCK t                                              block  no-locks
        flags              UPDATE t SET a = 1 WHERE id = 2                     allow  all
        approval-vs-block  UPDATE t SET a = 1 WHERE id = 2                     require_approval  approve
        approval-vs-block  DELETE FROM t WHERE id = 2                          block  block-deletes
        unknown-allowed    DO $$ BEGIN END $$                                  allow  dynamic
        unknown-allowed    SELECT 1                                            allow  reads
        other-target       SELECT 1                                            allow  reads
        future             SELECT 1                                            block  odd-block
        future             INSERT INTO t VALUES (1)                            block  odd-block
        """;

    public static TheoryData<string, string, string, string> Rows()
    {
        var rows = new TheoryData<string, string, string, string>();
        foreach (var line in Table.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var m = System.Text.RegularExpressions.Regex.Match(line, @"^(\S+)\s+(.+?)\s{2,}(\S+)\s{2,}(\S+)$");
            rows.Add(m.Groups[1].Value, m.Groups[2].Value, m.Groups[3].Value, m.Groups[4].Value);
        }
        return rows;
    }

    [Theory]
    [MemberData(nameof(Rows))]
    public void Decides(string set, string sql, string action, string rule)
    {
        var rules = RuleSet.Compile("role", Sets[set].Where(r => r.Targets.Count == 0 || r.Targets.Contains("db")));
        var judgement = new SqlSessionJudge(readOnlySession: false).Judge(rules, sql);
        Assert.True(Decision.Name(judgement.Decision.Action) == action && judgement.Decision.DecidedBy == rule,
            $"{set}: {sql}\n  expected {action} by {rule}, got {Decision.Name(judgement.Decision.Action)} by {judgement.Decision.DecidedBy}: {judgement.Decision.Reason}");
    }

    [Fact]
    public void A_refusal_names_the_rule_and_its_message()
    {
        var rules = RuleSet.Compile("ops", Sets["tables"]);
        var decision = new SqlSessionJudge(false).Judge(rules, "DELETE FROM customers WHERE id = 1").Decision;
        Assert.Equal("blocked by rule \"keep-customers\" of role \"ops\": customers are kept", decision.Reason);
    }

    [Fact]
    public void Writes_are_allowed_only_when_a_rule_could_let_one_through()
    {
        Assert.False(RuleSet.Compile("r", Sets["safe"]).AllowsWrites);
        Assert.False(RuleSet.Compile("r", Sets["none"]).AllowsWrites);
        Assert.True(RuleSet.Compile("r", Sets["safe+writes"]).AllowsWrites);
        Assert.True(RuleSet.Compile("r", Sets["match-all-allow"]).AllowsWrites);
        Assert.True(RuleSet.Compile("r", [Rule("x", "require_approval", classes: ["ddl"])]).AllowsWrites);
        Assert.False(RuleSet.Compile("r", [Rule("x", "block", classes: ["write"]), Rule("y", "allow", classes: ["read"])]).AllowsWrites);
    }

    [Theory]
    [InlineData("SET default_transaction_read_only = off")]
    [InlineData("SET transaction_read_only = false")]
    [InlineData("BEGIN READ WRITE")]
    [InlineData("START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ WRITE")]
    [InlineData("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE")]
    [InlineData("SET TRANSACTION READ WRITE")]
    [InlineData("SELECT 1; SET default_transaction_read_only TO DEFAULT")]
    public void A_read_only_session_cannot_be_made_writable_even_by_a_rule_that_allows_everything(string sql)
    {
        var judge = new SqlSessionJudge(readOnlySession: true);
        var decision = judge.Judge(RuleSet.Compile("r", Sets["everything"]), sql).Decision;
        Assert.Equal(DecisionAction.Block, decision.Action);
        Assert.Equal(SqlSessionJudge.ReadOnlyGuard, decision.DecidedBy);
        Assert.Equal(DecisionAction.Allow, new SqlSessionJudge(readOnlySession: false).Judge(RuleSet.Compile("r", Sets["everything"]), sql).Decision.Action);
    }

    [Fact]
    public void Execute_is_judged_as_what_was_prepared_under_its_name()
    {
        var rules = RuleSet.Compile("r", Sets["safe+writes"]);
        var judge = new SqlSessionJudge(false);
        Assert.Equal(DecisionAction.Allow, judge.Judge(rules, "PREPARE q(int) AS SELECT * FROM t WHERE id = $1").Decision.Action);
        Assert.Equal(DecisionAction.Allow, judge.Judge(rules, "EXECUTE q(1)").Decision.Action);
        // A refused PREPARE defines nothing: EXECUTE of that name stays unknown.
        Assert.Equal("agent-safe/filtered-writes", judge.Judge(rules, "PREPARE d AS DELETE FROM t").Decision.DecidedBy);
        var execute = judge.Judge(rules, "EXECUTE d");
        Assert.Equal(DecisionAction.Block, execute.Decision.Action);
        Assert.Equal(StatementClass.Unknown, execute.Class);
        // The same name prepared again is refused by the server: the first statement stays what EXECUTE runs.
        Assert.Equal(DecisionAction.Allow, judge.Judge(rules, "PREPARE w AS INSERT INTO t VALUES (1)").Decision.Action);
        judge.Judge(rules, "PREPARE w AS SELECT 1");
        Assert.Equal(StatementClass.Write, judge.Judge(rules, "EXECUTE w").Class);
        // Arguments count too.
        Assert.Equal("agent-safe/no-administration", judge.Judge(rules, "EXECUTE q(length(pg_read_file('/etc/passwd')))").Decision.DecidedBy);
        // DEALLOCATE forgets; in one message, a PREPARE is visible to the EXECUTE after it.
        judge.Judge(rules, "DEALLOCATE q");
        Assert.Equal(DecisionAction.Block, judge.Judge(rules, "EXECUTE q(1)").Decision.Action);
        Assert.Equal(DecisionAction.Allow, judge.Judge(rules, "PREPARE z AS SELECT 1; EXECUTE z").Decision.Action);
        judge.Judge(rules, "DEALLOCATE ALL");
        Assert.Equal(DecisionAction.Block, judge.Judge(rules, "EXECUTE z").Decision.Action);
    }

    [Fact]
    public void A_reader_cannot_prepare_what_it_may_not_run()
    {
        var rules = RuleSet.Compile("r", Sets["safe"]);
        var judge = new SqlSessionJudge(false);
        Assert.Equal(DecisionAction.Block, judge.Judge(rules, "PREPARE d AS DELETE FROM t WHERE id = $1").Decision.Action);
        Assert.Equal(DecisionAction.Block, judge.Judge(rules, "PREPARE d AS DELETE FROM t WHERE id = $1; EXECUTE d(1)").Decision.Action);
    }

    [Theory]
    [InlineData("SJIS")]
    [InlineData("BIG5")]
    [InlineData("GBK")]
    [InlineData("GB18030")]
    [InlineData("UHC")]
    [InlineData("JOHAB")]
    public void Text_in_an_encoding_with_ascii_bytes_inside_characters_is_not_read(string encoding)
    {
        var judge = new SqlSessionJudge(false) { ClientEncoding = encoding };
        var decision = judge.Judge(RuleSet.Compile("r", Sets["everything"]), "SELECT 1").Decision;
        Assert.Equal(SqlSessionJudge.EncodingGuard, decision.DecidedBy);
        Assert.True(SqlSessionJudge.IsSafeEncoding("UTF8"));
        Assert.True(SqlSessionJudge.IsSafeEncoding("LATIN1"));
        Assert.True(SqlSessionJudge.IsSafeEncoding("EUC_JP"));
    }

    [Fact]
    public void Standard_conforming_strings_off_changes_the_reading()
    {
        var rules = RuleSet.Compile("r", Sets["safe"]);
        var judge = new SqlSessionJudge(false);
        // Either way it is refused: with the setting on it is two statements (a DROP), off one, but the
        // reading depends on a setting a session can change in flight, so it is unknown.
        Assert.Equal(DecisionAction.Block, judge.Judge(rules, "SELECT 'a\\'; DROP TABLE t; --'").Decision.Action);
        judge.StandardConformingStrings = false;
        Assert.Equal(DecisionAction.Block, judge.Judge(rules, "SELECT 'a\\'; DROP TABLE t; --'").Decision.Action);
        Assert.Equal(DecisionAction.Allow, judge.Judge(rules, "SELECT E'a\\'b'").Decision.Action);
    }

    [Theory]
    [InlineData(FunctionVolatility.Immutable, "allow")]
    [InlineData(FunctionVolatility.Stable, "allow")]
    [InlineData(FunctionVolatility.Missing, "allow")]
    [InlineData(FunctionVolatility.Volatile, "block")]
    [InlineData(FunctionVolatility.Unavailable, "block")]
    public void A_function_the_classifier_does_not_know_is_judged_by_the_catalog(FunctionVolatility volatility, string expected)
    {
        var judge = new SqlSessionJudge(false, catalog: name => name == "report_total" ? volatility : FunctionVolatility.Missing);
        var judgement = judge.Judge(RuleSet.Compile("r", Sets["safe"]), "SELECT report_total(id) FROM t");
        Assert.Equal(expected, Decision.Name(judgement.Decision.Action));
        if (expected == "block")
            Assert.True(judgement.Statements[0].Statement.Has(StatementFlags.VolatileFunction));
    }

    [Fact]
    public void A_field_is_judged_by_the_catalog_as_it_is_now_not_as_it_was()
    {
        // x.g may be g(x): a decision that read the catalog is not cached, since the catalog changes.
        var volatility = FunctionVolatility.Missing;
        var judge = new SqlSessionJudge(false, catalog: name => name == "g" ? volatility : FunctionVolatility.Missing);
        var rules = RuleSet.Compile("r", Sets["safe"]);
        var text = $"SELECT t.g FROM t /* {Guid.NewGuid()} */";
        for (var i = 0; i < 3; i++)
            Assert.Equal(DecisionAction.Allow, judge.Judge(rules, text).Decision.Action);
        volatility = FunctionVolatility.Volatile; // CREATE FUNCTION g(t) … VOLATILE, by someone else
        Assert.Equal(DecisionAction.Block, judge.Judge(rules, text).Decision.Action);
    }

    [Fact]
    public void An_operator_vouched_function_is_a_read()
    {
        var judge = new SqlSessionJudge(false, operatorSafeFunctions: new HashSet<string> { "report_total" });
        Assert.Equal(DecisionAction.Allow, judge.Judge(RuleSet.Compile("r", Sets["safe"]), "SELECT report_total(id) FROM t").Decision.Action);
        // Never a dangerous one: the dangerous list is matched first.
        var vouched = new SqlSessionJudge(false, operatorSafeFunctions: new HashSet<string> { "pg_read_file" });
        Assert.Equal(DecisionAction.Block, vouched.Judge(RuleSet.Compile("r", Sets["safe"]), "SELECT pg_read_file('x')").Decision.Action);
    }

    [Fact]
    public void Reads_that_differ_only_in_literals_share_a_classification_where_values_cannot_matter()
    {
        var rules = RuleSet.Compile("r", Sets["safe+writes"]);
        var judge = new SqlSessionJudge(false, byShape: true);
        var table = "t" + Guid.NewGuid().ToString("N");
        var first = judge.Read(rules, $"SELECT abalance FROM {table} WHERE aid = 1 AND b = 'x'");
        Assert.Same(first, judge.Read(rules, $"SELECT abalance FROM {table} WHERE aid = 48213 AND b = 'y'"));
        // Not where a value is read: an UPDATE's filter (id + 1 = id + 1 is trivially true, id + 1 = id + 2 is not).
        var filtered = judge.Judge(rules, $"UPDATE {table} SET a = 1 WHERE id + 1 = id + 2");
        var unfiltered = judge.Judge(rules, $"UPDATE {table} SET a = 1 WHERE id + 1 = id + 1");
        Assert.Equal(DecisionAction.Allow, filtered.Decision.Action);
        Assert.Equal("agent-safe/filtered-writes", unfiltered.Decision.DecidedBy);
        // Nor without byShape (the simulator), nor for rules with patterns.
        Assert.NotSame(first, new SqlSessionJudge(false).Read(rules, $"SELECT abalance FROM {table} WHERE aid = 7 AND b = 'z'"));
        var patterned = RuleSet.Compile("r", [.. Sets["safe"], Rule("no-42", "block", pattern: "= 42")]);
        Assert.Equal("no-42", judge.Judge(patterned, $"SELECT abalance FROM {table} WHERE aid = 42 AND b = 'x'").Decision.DecidedBy);
    }

    [Fact]
    public void Repeated_statements_reuse_the_classification_and_the_decision()
    {
        var rules = RuleSet.Compile("r", Sets["safe"]);
        var judge = new SqlSessionJudge(false);
        // A text is cached the second time it is seen (one-off texts are not kept), then reused whole.
        var text = $"SELECT * FROM t WHERE id = $1 /* {Guid.NewGuid()} */";
        var first = judge.Judge(rules, text);
        var second = judge.Judge(rules, text);
        var third = judge.Judge(rules, text);
        Assert.NotSame(first, second);
        Assert.Same(second, third);
        Assert.Same(second.Statements[0].Statement, third.Statements[0].Statement);
        // Another rule set judges the same cached classification anew.
        var other = judge.Judge(RuleSet.Compile("r", Sets["safe+writes"]), text);
        Assert.Same(third.Statements[0].Statement, other.Statements[0].Statement);
        Assert.Equal("agent-safe/reads", other.Decision.DecidedBy);
    }
}
