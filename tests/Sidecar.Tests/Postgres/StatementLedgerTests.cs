using System.Text;
using Airlock.Sidecar.Protocols.Postgres;

namespace Airlock.Sidecar.Tests.Postgres;

/// <summary>Conversations as the wire carries them, and the statements the ledger makes of them.</summary>
public sealed class StatementLedgerTests
{
    private readonly StatementLedger _ledger = new(captureBytes: 64);
    private long _clock;

    private void Send(char type, MessageBody? body = null) => _ledger.OnFrontend((byte)type, (body ?? new MessageBody()).Bytes, _clock += 1000);
    private void Receive(char type, MessageBody? body = null) => _ledger.OnBackend((byte)type, (body ?? new MessageBody()).Bytes, _clock += 1000);

    private static MessageBody Columns(params (string Name, int Type, short Format)[] columns)
    {
        var body = new MessageBody().I16((short)columns.Length);
        foreach (var (name, type, format) in columns)
            body.Str(name).I32(0).I16(0).I32(type).I16(-1).I32(-1).I16(format);
        return body;
    }

    private static MessageBody Row(params string?[] values)
    {
        var body = new MessageBody().I16((short)values.Length);
        foreach (var v in values)
            body.Value(v is null ? null : Encoding.UTF8.GetBytes(v));
        return body;
    }

    private static MessageBody Error(string code, string message) => new MessageBody().Byte('S').Str("ERROR").Byte('C').Str(code).Byte('M').Str(message).Byte('\0');

    private void Ready() => Receive('Z', new MessageBody().Byte('I'));

    [Fact]
    public void A_simple_query_with_two_result_sets_is_one_statement_with_its_rows()
    {
        Send('Q', new MessageBody().Str("SELECT 1 AS a; SELECT 'x' AS b"));
        Receive('T', Columns(("a", 23, 0)));
        Receive('D', Row("1"));
        Receive('C', new MessageBody().Str("SELECT 1"));
        Receive('T', Columns(("b", 25, 0)));
        Receive('D', Row("x"));
        Receive('C', new MessageBody().Str("SELECT 1"));
        Assert.False(_ledger.HasCompleted);
        Ready();
        var s = Assert.Single(_ledger.TakeCompleted());
        Assert.Equal("SELECT 1 AS a; SELECT 'x' AS b", s.Text);
        Assert.Equal(2, s.Rows);
        Assert.Null(s.Error);
        Assert.Equal(["a"], s.Columns);
        Assert.Equal([["1"], ["x"]], s.CapturedRows.Select(r => r.ToArray()).ToArray());
        Assert.True(s.DurationMs > 0);
    }

    [Fact]
    public void Statements_still_running_when_the_session_ends_are_recorded_as_not_finished_with_why()
    {
        Send('Q', new MessageBody().Str("SELECT pg_sleep(60)"));
        Receive('T', Columns(("pg_sleep", 2278, 0)));
        Send('P', new MessageBody().Str("").Str("UPDATE t SET a = $1").U16(0));
        Send('B', new MessageBody().Str("").Str("").U16(0).U16(1).Value(Encoding.UTF8.GetBytes("7")).U16(0));
        Send('E', new MessageBody().Str("").I32(0));
        Send('S');
        Assert.False(_ledger.HasCompleted);

        var why = PgError.Error(SqlStates.AdminShutdown, "not finished: the session ended (terminated by admin: x)");
        _ledger.AbandonPending(why, _clock += 1000);
        var statements = _ledger.TakeCompleted();
        Assert.Equal(["SELECT pg_sleep(60)", "UPDATE t SET a = $1"], statements.Select(s => s.Text));
        Assert.All(statements, s => Assert.Equal(why, s.Error));
        Assert.Equal(["7"], statements[1].Parameters);
        Assert.Equal(0, _ledger.Pending);

        // Nothing pending: nothing recorded.
        _ledger.AbandonPending(why, _clock += 1000);
        Assert.False(_ledger.HasCompleted);

        // A refused Parse still pending (the agent pipelined it and left) is recorded with its refusal, not as not finished.
        var refused = PgError.Error(SqlStates.InsufficientPrivilege, "no rule allows DROP (ddl)");
        _ledger.OnFrontend((byte)'P', new MessageBody().Str("").Str("DROP TABLE t").U16(0).Bytes, _clock += 1000, blocked: refused, knownText: "DROP TABLE t");
        _ledger.AbandonPending(why, _clock += 1000);
        var blocked = Assert.Single(_ledger.TakeCompleted());
        Assert.Equal(("DROP TABLE t", refused), (blocked.Text, blocked.Error));
    }

    [Fact]
    public void A_name_stands_for_the_statement_the_server_kept_and_a_portal_for_its_binds_ruling()
    {
        var copy = new StatementVerdict(Sidecar.Protocols.Sql.StatementClass.Read, "allow", "r", "COPY", default, Masked: true,
            Copy: new Sidecar.Protocols.Sql.CopyOut("customers", null, false, '\t', '"', '"', "\\N", false));
        Send('P', new MessageBody().Str("s").Str("COPY customers TO STDOUT").U16(0));
        Send('S');
        Receive('1');
        Ready();
        // A second Parse of the name fails at the server (it exists): the name still stands for the COPY.
        Send('P', new MessageBody().Str("s").Str("SELECT 1").U16(0));
        Send('S');
        Receive('E', Error("42P05", "prepared statement \"s\" already exists"));
        Ready();
        _ledger.OnFrontend((byte)'B', new MessageBody().Str("").Str("s").U16(0).U16(0).U16(0).Bytes, _clock += 1000, copy);
        Send('E', new MessageBody().Str("").I32(0));
        Send('S');
        Receive('2');
        Assert.Equal(copy, _ledger.HeadVerdict);
        Assert.True(_ledger.HeadMayQuoteMaskedData);
        Receive('H', new MessageBody().Byte('\0').U16(0));
        Receive('c');
        Receive('C', new MessageBody().Str("COPY 0"));
        Ready();
        var statements = _ledger.TakeCompleted();
        Assert.Equal("COPY customers TO STDOUT", statements[^1].Text);
    }

    [Fact]
    public void A_description_of_the_unnamed_statement_belongs_to_the_parse_it_followed()
    {
        // Parse A, Describe, Parse B, Bind, Execute, pipelined: A's description must not become B's.
        Send('P', new MessageBody().Str("").Str("SELECT id FROM customers").U16(0));
        Send('D', new MessageBody().Byte('S').Str(""));
        Send('P', new MessageBody().Str("").Str("SELECT email FROM customers").U16(0));
        Send('B', new MessageBody().Str("").Str("").U16(0).U16(0).U16(0));
        Send('E', new MessageBody().Str("").I32(0));
        Send('S');
        Receive('1');
        Receive('t', new MessageBody().U16(0));
        Receive('T', new MessageBody().U16(1).Str("id").I32(16384).I16(1).I32(23).I16(4).I32(-1).I16(0));
        Receive('1');
        Receive('2');
        Assert.Null(_ledger.CurrentResult!.Value.Columns); // not described: masking nulls it (fail closed)
    }

    [Fact]
    public void A_failing_simple_query_carries_the_error()
    {
        Send('Q', new MessageBody().Str("SELECT * FROM nope"));
        Receive('E', Error("42P01", "relation \"nope\" does not exist"));
        Ready();
        var s = Assert.Single(_ledger.TakeCompleted());
        Assert.Equal("42P01", s.Error!.SqlState);
        Assert.Null(s.Rows);
    }

    [Fact]
    public void An_extended_pipeline_records_each_execute_with_its_parameters_and_binary_results()
    {
        Send('P', new MessageBody().Str("").Str("SELECT $1::int * 2 AS doubled").I16(1).I32(23));
        Send('B', new MessageBody().Str("").Str("").I16(1).I16(1).I16(1).Value([0, 0, 0, 21]).I16(1).I16(1));
        Send('D', new MessageBody().Byte('P').Str(""));
        Send('E', new MessageBody().Str("").I32(0));
        Send('S');
        Receive('1');
        Receive('2');
        Receive('T', Columns(("doubled", 23, 1)));
        _ledger.OnBackend((byte)'D', new MessageBody().I16(1).Value([0, 0, 0, 42]).Bytes, _clock += 1000);
        Receive('C', new MessageBody().Str("SELECT 1"));
        var s = Assert.Single(_ledger.TakeCompleted());
        Assert.Equal("SELECT $1::int * 2 AS doubled", s.Text);
        Assert.Equal(["21"], s.Parameters);
        Assert.Equal("42", s.CapturedRows[0][0]);
        Ready();
        Assert.Equal(0, _ledger.Pending);
    }

    [Fact]
    public void A_prepared_statement_described_once_decodes_later_executions_with_the_bind_formats()
    {
        Send('P', new MessageBody().Str("s1").Str("SELECT id FROM t").I16(0));
        Send('D', new MessageBody().Byte('S').Str("s1"));
        Send('S');
        Receive('1');
        Receive('t', new MessageBody().I16(0));
        Receive('T', Columns(("id", 23, 0)));
        Ready();
        for (var i = 0; i < 2; i++)
        {
            Send('B', new MessageBody().Str("").Str("s1").I16(0).I16(0).I16(1).I16(1));
            Send('E', new MessageBody().Str("").I32(0));
            Send('S');
            Receive('2');
            _ledger.OnBackend((byte)'D', new MessageBody().I16(1).Value([0, 0, 0, 7]).Bytes, _clock += 1000);
            Receive('C', new MessageBody().Str("SELECT 1"));
            Ready();
        }
        var runs = _ledger.TakeCompleted();
        Assert.Equal(2, runs.Count);
        Assert.All(runs, r => Assert.Equal("7", r.CapturedRows[0][0]));
        Assert.All(runs, r => Assert.Equal(["id"], r.Columns));
    }

    [Fact]
    public void An_error_at_parse_belongs_to_the_statement_and_later_executes_until_sync_did_not_run()
    {
        Send('P', new MessageBody().Str("").Str("SELECT * FROM nope").I16(0));
        Send('B', new MessageBody().Str("").Str("").I16(0).I16(0).I16(0));
        Send('E', new MessageBody().Str("").I32(0));
        Send('P', new MessageBody().Str("").Str("SELECT 2").I16(0));
        Send('B', new MessageBody().Str("").Str("").I16(0).I16(0).I16(0));
        Send('E', new MessageBody().Str("").I32(0));
        Send('S');
        Receive('E', Error("42P01", "relation \"nope\" does not exist"));
        Ready();
        var statements = _ledger.TakeCompleted();
        Assert.Equal(2, statements.Count);
        Assert.Equal("SELECT * FROM nope", statements[0].Text);
        Assert.Equal("42P01", statements[0].Error!.SqlState);
        Assert.Equal("SELECT 2", statements[1].Text);
        Assert.StartsWith("not executed", statements[1].Error!.Message, StringComparison.Ordinal);
        Assert.Equal(0, _ledger.Pending);
    }

    [Fact]
    public void Captured_rows_stop_at_the_cap_and_say_so_while_the_count_goes_on()
    {
        Send('Q', new MessageBody().Str("SELECT g FROM big"));
        Receive('T', Columns(("g", 25, 0)));
        for (var i = 0; i < 100; i++)
            Receive('D', Row(new string('x', 10)));
        Receive('C', new MessageBody().Str("SELECT 100"));
        Ready();
        var s = Assert.Single(_ledger.TakeCompleted());
        Assert.Equal(100, s.Rows);
        Assert.True(s.Truncated);
        Assert.Equal(6, s.CapturedRows.Count); // 64 bytes of 10-byte values
    }

    [Fact]
    public void A_suspended_portal_and_a_fastpath_call_complete_too()
    {
        Send('B', new MessageBody().Str("c").Str("unknown").I16(0).I16(0).I16(0));
        Send('E', new MessageBody().Str("c").I32(1));
        Send('S');
        Receive('2');
        Receive('D', Row("1"));
        Receive('s');
        Ready();
        Send('F', new MessageBody().I32(952).I16(0).I16(0).I16(0));
        Receive('V', new MessageBody().I32(-1));
        Ready();
        var statements = _ledger.TakeCompleted();
        Assert.Equal(2, statements.Count);
        Assert.Contains("not seen on this connection", statements[0].Text, StringComparison.Ordinal);
        Assert.Equal("(fastpath function call: function oid 952)", statements[1].Text);
    }

    [Theory]
    [InlineData('Q', new byte[] { (byte)'x' })]
    [InlineData('B', new byte[] { 0, 0, 0, 1, 0, 2 })]
    [InlineData('B', new byte[] { 0, 0, 0xff, 0xff })]
    [InlineData('D', new byte[] { (byte)'X', 0 })]
    [InlineData('C', new byte[] { (byte)'Z', 0 })]
    [InlineData('E', new byte[] { 0, 0, 0 })]
    [InlineData('P', new byte[] { 0, (byte)'S', 0, 0, 5 })]
    public void Malformed_frontend_bodies_are_protocol_errors(char type, byte[] body) =>
        Assert.Throws<PgProtocolException>(() => _ledger.OnFrontend((byte)type, body, 0));

    [Fact]
    public void A_pipeline_without_answers_is_bounded()
    {
        var ledger = new StatementLedger(64, maxPending: 10);
        for (var i = 0; i < 10; i++)
            ledger.OnFrontend((byte)'S', [], 0);
        Assert.Throws<PgProtocolException>(() => ledger.OnFrontend((byte)'S', [], 0));
    }

    [Theory]
    [InlineData("SELECT 5", 5L)]
    [InlineData("INSERT 0 3", 3L)]
    [InlineData("UPDATE 0", 0L)]
    [InlineData("COPY 500", 500L)]
    [InlineData("CREATE TABLE", null)]
    [InlineData("BEGIN", null)]
    [InlineData("SELECT x", null)]
    [InlineData("SELECT +5", null)]
    [InlineData("SELECT -1", null)]
    [InlineData("SELECT ", null)]
    [InlineData("MERGE 7", 7L)]
    [InlineData("FETCH 9223372036854775807", long.MaxValue)]
    [InlineData("FETCH 9223372036854775808", null)] // overflows
    [InlineData("SELECTED 5", null)]
    public void Row_counts_come_from_command_tags(string tag, long? rows) => Assert.Equal(rows, StatementLedger.RowsOf(tag));
}

/// <summary>
/// 16-bit counts are unsigned on the wire (PostgreSQL reads them with <c>pq_getmsgint(msg, 2)</c>):
/// a Bind of 32,768–65,535 parameters, a RowDescription or DataRow of that many columns, are valid.
/// </summary>
public sealed class SixteenBitCountTests
{
    public static TheoryData<int> Counts => [0, 1, 32_767, 32_768, 65_535];

    private readonly StatementLedger _ledger = new(captureBytes: 1024 * 1024);
    private long _clock;

    private void Send(char type, MessageBody body) => _ledger.OnFrontend((byte)type, body.Bytes, _clock += 1000);
    private void Receive(char type, MessageBody body) => _ledger.OnBackend((byte)type, body.Bytes, _clock += 1000);

    [Theory]
    [MemberData(nameof(Counts))]
    public void Parse_and_Bind_take_any_unsigned_parameter_count(int count)
    {
        var parse = new MessageBody().Str("s").Str("SELECT many").U16(count);
        for (var i = 0; i < count; i++)
            parse.I32(23);
        Send('P', parse);
        // Parameter formats: one code for all (binary), then the values, then one result format.
        var bind = new MessageBody().Str("").Str("s").U16(1).I16(1).U16(count);
        for (var i = 0; i < count; i++)
            bind.Value([0, 0, 0, 7]);
        Send('B', bind.U16(0));
        Send('E', new MessageBody().Str("").I32(0));
        Send('S', new MessageBody());
        Receive('1', new MessageBody());
        Receive('2', new MessageBody());
        Receive('C', new MessageBody().Str("SELECT 0"));
        Receive('Z', new MessageBody().Byte('I'));
        var statement = Assert.Single(_ledger.TakeCompleted());
        Assert.Equal("SELECT many", statement.Text);
        // Parameters are recorded up to the total cap; the rest are summarised in one marked entry.
        Assert.Equal(count == 0 ? null : "7", statement.Parameters.FirstOrDefault());
        Assert.True(statement.Parameters.Count <= count);
        if (statement.Parameters.Count < count)
            Assert.StartsWith(PgValueText.TruncationMarker, statement.Parameters[^1], StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Counts))]
    public void RowDescription_and_DataRow_take_any_unsigned_column_count(int count)
    {
        Send('Q', new MessageBody().Str("SELECT wide"));
        var description = new MessageBody().U16(count);
        for (var i = 0; i < count; i++)
            description.Str("c").I32(0).I16(0).I32(25).I16(-1).I32(-1).I16(0);
        Receive('T', description);
        var row = new MessageBody().U16(count);
        for (var i = 0; i < count; i++)
            row.Value("v"u8.ToArray());
        Receive('D', row);
        Receive('C', new MessageBody().Str("SELECT 1"));
        Receive('Z', new MessageBody().Byte('I'));
        var statement = Assert.Single(_ledger.TakeCompleted());
        Assert.Equal(count, statement.Columns.Count);
        Assert.Equal(count, Assert.Single(statement.CapturedRows).Count);
    }

    [Fact]
    public void Format_codes_stay_signed_and_only_zero_or_one()
    {
        Send('P', new MessageBody().Str("").Str("SELECT 1").U16(0));
        var bind = new MessageBody().Str("").Str("").U16(1).I16(-1).U16(0).U16(0);
        Assert.Throws<PgProtocolException>(() => Send('B', bind));
    }
}

/// <summary>Parameters an agent chooses cannot inflate the recording: their entries are bounded, not only their characters.</summary>
public sealed class ParameterFloodTests
{
    [Fact]
    public void A_bind_of_65535_parameters_records_a_bounded_list_with_one_marker_and_the_statement_fits_an_event()
    {
        var ledger = new StatementLedger(captureBytes: 1024);
        var parse = new MessageBody().Str("").Str("DELETE FROM t WHERE $65535 IS NULL OR true").U16(0);
        ledger.OnFrontend((byte)'P', parse.Bytes, 1);
        var bind = new MessageBody().Str("").Str("").U16(0).U16(65_535);
        var kilobyte = Enumerable.Repeat((byte)'x', 1024).ToArray();
        for (var i = 0; i < 65_535; i++)
            bind.Value(i < 64 ? kilobyte : null);
        ledger.OnFrontend((byte)'B', bind.U16(0).Bytes, 2);
        ledger.OnFrontend((byte)'E', new MessageBody().Str("").I32(0).Bytes, 3);
        ledger.OnFrontend((byte)'S', new MessageBody().Bytes, 4);
        foreach (var type in "12")
            ledger.OnBackend((byte)type, new MessageBody().Bytes, 5);
        ledger.OnBackend((byte)'C', new MessageBody().Str("DELETE 0").Bytes, 6);
        ledger.OnBackend((byte)'Z', new MessageBody().Byte('I').Bytes, 7);
        var statement = Assert.Single(ledger.TakeCompleted());
        Assert.InRange(statement.Parameters.Count, 1, StatementLedger.MaxRecordedParameterTotalChars / 4 + 1);
        Assert.Single(statement.Parameters, p => p is not null && p.StartsWith(PgValueText.TruncationMarker, StringComparison.Ordinal));
        var payload = Airlock.Contracts.Recording.RecordingJson.EncodeStatement(new Airlock.Contracts.Recording.StatementPayload(
            statement.Text, statement.Parameters, "unknown", "allow", null, 1, 0, null));
        Assert.InRange(payload.Length, 1, Airlock.Contracts.Recording.RecordingLimits.MaxEventPayloadBytes);
        Assert.Contains("DELETE FROM t", System.Text.Encoding.UTF8.GetString(payload), StringComparison.Ordinal);
    }
}

/// <summary>The sidecar's tally of what recorded statements came to, sent with each heartbeat.</summary>
public sealed class StatementCounterTests
{
    private static CompletedStatement Statement(string? decision, IReadOnlyDictionary<string, long>? masked = null) =>
        new("SELECT 1", [], 1, 1, null, [], [], false, decision is null ? null : new StatementVerdict(Sidecar.Protocols.Sql.StatementClass.Read, decision, "r", "SELECT", default), masked);

    [Fact]
    public void Statements_count_by_what_they_came_to_and_a_take_starts_again_from_zero()
    {
        var counter = new Airlock.Sidecar.Recording.StatementCounter();
        counter.Add(Statement("allow"));
        counter.Add(Statement(null)); // judged nothing (a function call): it ran
        counter.Add(Statement("allow", new Dictionary<string, long> { ["users.email"] = 3 }));
        counter.Add(Statement("allow", new Dictionary<string, long>())); // nothing masked
        counter.Add(Statement("block"));
        counter.Add(Statement("require_approval")); // counted when its request is raised
        counter.AddHeld();
        Assert.Equal(new Airlock.Contracts.Hubs.StatementCounts(3, 1, 1, 1), counter.Take());
        Assert.True(counter.Take().IsEmpty);

        counter.PutBack(new Airlock.Contracts.Hubs.StatementCounts(1, 2, 3, 4)); // a heartbeat that did not arrive
        counter.Add(Statement("block"));
        Assert.Equal(new Airlock.Contracts.Hubs.StatementCounts(1, 2, 4, 4), counter.Take());
    }
}
