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
