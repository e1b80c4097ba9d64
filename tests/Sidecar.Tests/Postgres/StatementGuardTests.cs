using System.Buffers;
using Airlock.Sidecar.Policy;
using Airlock.Sidecar.Policy.Guardrails;
using Airlock.Sidecar.Postgres;
using Airlock.Sidecar.Protocols.Postgres;

namespace Airlock.Sidecar.Tests.Postgres;

/// <summary>
/// The guard follows what the server holds under each prepared-statement name: a name changes only
/// when the server answers the Parse or Close, so a Parse the server refuses (the name exists) or skips
/// cannot make a Bind run the old statement under a ruling made for the new one.
/// </summary>
public sealed class StatementGuardTests
{
    private static readonly RuleSet Writer = RuleSet.Compile("writer", [.. Baselines.AgentSafeRules,
        new RulePolicy("writes", RuleActions.Allow, [], new RuleMatch(["write"], [], [], null), null, null, null)]);
    private static readonly RuleSet Reader = RuleSet.Compile("reader", Baselines.AgentSafeRules);

    private static byte[] Parse(string name, string sql)
    {
        var body = new System.Buffers.ArrayBufferWriter<byte>();
        PgWire.WriteCString(body, name);
        PgWire.WriteCString(body, sql);
        body.Write<byte>([0, 0]);
        return body.WrittenSpan.ToArray();
    }

    private static byte[] Bind(string name)
    {
        var body = new System.Buffers.ArrayBufferWriter<byte>();
        PgWire.WriteCString(body, "");
        PgWire.WriteCString(body, name);
        body.Write<byte>([0, 0, 0, 0, 0, 0]);
        return body.WrittenSpan.ToArray();
    }

    private static readonly RuleSet Approving = RuleSet.Compile("deployer", [.. Baselines.AgentSafeRules,
        new RulePolicy("writes", RuleActions.Allow, [], new RuleMatch(["write"], [], [], null), null, null, null),
        new RulePolicy("approve-deletes", RuleActions.RequireApproval, [], new RuleMatch([], ["DELETE"], [], null), null, null, new ApprovalSpec("hold", 1, null, 60))]);

    private static byte[] ParseTyped(string name, string sql, params int[] types)
    {
        var body = new System.Buffers.ArrayBufferWriter<byte>();
        PgWire.WriteCString(body, name);
        PgWire.WriteCString(body, sql);
        body.Write<byte>([0, (byte)types.Length]);
        foreach (var t in types)
            PgWire.WriteInt32(body, t);
        return body.WrittenSpan.ToArray();
    }

    /// <summary>A Bind of the unnamed portal to <paramref name="name"/> with text parameter values (null: NULL).</summary>
    private static byte[] BindValues(string name, params string?[] values)
    {
        var body = new System.Buffers.ArrayBufferWriter<byte>();
        PgWire.WriteCString(body, "");
        PgWire.WriteCString(body, name);
        body.Write<byte>([0, 0, 0, (byte)values.Length]);
        foreach (var v in values)
        {
            if (v is null)
            {
                PgWire.WriteInt32(body, -1);
                continue;
            }
            var bytes = System.Text.Encoding.UTF8.GetBytes(v);
            PgWire.WriteInt32(body, bytes.Length);
            body.Write(bytes);
        }
        body.Write<byte>([0, 0]);
        return body.WrittenSpan.ToArray();
    }

    [Fact]
    public async Task A_statement_needing_approval_passes_its_unnamed_parse_and_is_put_to_approvers_at_its_bind_with_its_values_and_types()
    {
        var guard = new PostgresStatementGuard(new SqlSessionJudge(false), () => Approving);
        var parse = await guard.JudgeAsync((byte)'P', ParseTyped("", "DELETE FROM t WHERE id = $1 AND note = $2", 23, 25));
        Assert.Null(parse!.Value.Refusal);
        Assert.Null(parse.Value.Approval);
        Assert.Equal("require_approval", parse.Value.Verdict!.Decision);

        var bind = await guard.JudgeAsync((byte)'B', BindValues("", "5", null));
        var need = bind!.Value.Approval!;
        Assert.NotNull(bind.Value.Refusal); // the answer if it cannot be put to approvers
        Assert.Equal(("approve-deletes", "DELETE FROM t WHERE id = $1 AND note = $2"), (need.Rule, need.Text));
        Assert.Equal([23, 25], need.ParameterTypes);
        Assert.Equal(["5", null], need.Shown);
        Assert.Equal([(short)0, (short)0], need.Parameters.Select(p => p.Format));
        Assert.Null(need.Parameters[1].Value);

        // A simple query carries its text and no values.
        var query = await guard.JudgeAsync((byte)'Q', System.Text.Encoding.UTF8.GetBytes("DELETE FROM t WHERE id = 6\0"));
        Assert.Equal(("DELETE FROM t WHERE id = 6", 0), (query!.Value.Approval!.Text, query.Value.Approval.Parameters.Count));
        // Allowed and blocked statements carry no approval.
        Assert.Null((await guard.JudgeAsync((byte)'Q', System.Text.Encoding.UTF8.GetBytes("UPDATE t SET a = 1 WHERE id = 1\0")))!.Value.Approval);
        Assert.Null((await guard.JudgeAsync((byte)'Q', System.Text.Encoding.UTF8.GetBytes("DROP TABLE t\0")))!.Value.Approval);
    }

    [Fact]
    public async Task A_statement_needing_approval_is_not_prepared_under_a_name_which_sql_execute_could_reach()
    {
        var guard = new PostgresStatementGuard(new SqlSessionJudge(false), () => Approving);
        var parse = await guard.JudgeAsync((byte)'P', ParseTyped("s1", "DELETE FROM t WHERE id = $1", 23));
        Assert.Equal(SqlStates.InsufficientPrivilege, parse!.Value.Refusal?.SqlState);
        Assert.Contains("without preparing it under a name", parse.Value.Refusal!.Hint, StringComparison.Ordinal);
        Assert.Null(parse.Value.Approval);
        // The name was never the DELETE's: a Bind of it is refused as unknown.
        Assert.NotNull((await guard.JudgeAsync((byte)'B', BindValues("s1", "5")))!.Value.Refusal);
    }

    private static byte[] Close(string name)
    {
        var body = new System.Buffers.ArrayBufferWriter<byte>();
        body.Write<byte>([(byte)'S']);
        PgWire.WriteCString(body, name);
        return body.WrittenSpan.ToArray();
    }

    [Fact]
    public async Task A_refused_parse_of_an_existing_name_leaves_the_old_statement_to_be_judged()
    {
        var rules = Writer;
        var guard = new PostgresStatementGuard(new SqlSessionJudge(false), () => rules);
        var delete = await guard.JudgeAsync((byte)'P', Parse("s", "DELETE FROM t WHERE id = $1"));
        Assert.Null(delete!.Value.Refusal);
        guard.OnSettled(delete.Value.Tag!, done: true); // ParseComplete: the server holds s = DELETE

        rules = Reader; // the policy is tightened while the session stays open
        var select = await guard.JudgeAsync((byte)'P', Parse("s", "SELECT 1"));
        Assert.Null(select!.Value.Refusal);
        // Before the server answers, a Bind of s may mean either statement: the stricter one decides.
        Assert.NotNull((await guard.JudgeAsync((byte)'B', Bind("s")))!.Value.Refusal);
        guard.OnSettled(select.Value.Tag!, done: false); // 42P05: s already exists, still the DELETE
        var bind = await guard.JudgeAsync((byte)'B', Bind("s"));
        Assert.Equal(SqlStates.InsufficientPrivilege, bind!.Value.Refusal?.SqlState);
    }

    [Fact]
    public async Task A_name_is_replaced_only_when_the_server_confirms_the_close_and_the_parse()
    {
        var rules = Writer;
        var guard = new PostgresStatementGuard(new SqlSessionJudge(false), () => rules);
        var delete = await guard.JudgeAsync((byte)'P', Parse("s", "DELETE FROM t WHERE id = $1"));
        guard.OnSettled(delete!.Value.Tag!, done: true);
        rules = Reader;
        // A Close skipped by the server (an error earlier in the pipeline) and a Parse skipped with it.
        var close = await guard.JudgeAsync((byte)'C', Close("s"));
        var select = await guard.JudgeAsync((byte)'P', Parse("s", "SELECT 1"));
        guard.OnSettled(close!.Value.Tag!, done: false);
        guard.OnSettled(select!.Value.Tag!, done: false);
        Assert.NotNull((await guard.JudgeAsync((byte)'B', Bind("s")))!.Value.Refusal);

        // Confirmed this time: s is the SELECT, and binding it is allowed.
        close = await guard.JudgeAsync((byte)'C', Close("s"));
        select = await guard.JudgeAsync((byte)'P', Parse("s", "SELECT 1"));
        guard.OnSettled(close!.Value.Tag!, done: true);
        guard.OnSettled(select!.Value.Tag!, done: true);
        Assert.Null((await guard.JudgeAsync((byte)'B', Bind("s")))!.Value.Refusal);
    }

    [Fact]
    public async Task The_unnamed_statement_is_always_the_latest_parse()
    {
        // Npgsql's batch with error barriers: each command parses the unnamed statement; a refused one
        // must not make the later commands' binds refused too.
        var guard = new PostgresStatementGuard(new SqlSessionJudge(false), () => Writer);
        Assert.NotNull((await guard.JudgeAsync((byte)'P', Parse("", "DELETE FROM t")))!.Value.Refusal);
        Assert.NotNull((await guard.JudgeAsync((byte)'B', Bind("")))!.Value.Refusal);
        Assert.Null((await guard.JudgeAsync((byte)'P', Parse("", "INSERT INTO t VALUES (1)")))!.Value.Refusal);
        Assert.Null((await guard.JudgeAsync((byte)'B', Bind("")))!.Value.Refusal);
    }

    [Fact]
    public async Task A_bind_in_the_same_pipeline_as_its_parse_is_judged_by_the_pending_statement()
    {
        var guard = new PostgresStatementGuard(new SqlSessionJudge(false), () => Reader);
        await guard.JudgeAsync((byte)'P', Parse("q", "SELECT 1"));
        Assert.Null((await guard.JudgeAsync((byte)'B', Bind("q")))!.Value.Refusal);
        Assert.NotNull((await guard.JudgeAsync((byte)'B', Bind("never-parsed")))!.Value.Refusal);
    }
}
