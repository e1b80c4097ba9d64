using System.Buffers;
using Airlock.Contracts.Hubs;
using Airlock.Sidecar.Mcp;
using Airlock.Sidecar.Protocols.Postgres;
using Airlock.Sidecar.Protocols.Sql;

namespace Airlock.Sidecar.Tests.Mcp;

/// <summary>Every way a statement's answer ends, and the status an agent reads from it.</summary>
public sealed class QueryOutcomeTests
{
    private static readonly StatementVerdict Blocked = new(StatementClass.Ddl, "block", "no-schema-changes", "DROP TABLE", StatementFlags.None);
    private static readonly StatementVerdict NeedsApproval = new(StatementClass.Write, "require_approval", "deletes", "DELETE", StatementFlags.None);
    private static readonly HeldStatement Hold = new(new ApprovalTicket(7, DateTimeOffset.UnixEpoch, ConsoleUrl: "https://cp/approvals/7"), "deletes", "hold");
    private static readonly HeldStatement FailFast = Hold with { Mode = "fail-fast" };

    private static PgResultReader Answer(string? sqlState = null)
    {
        var reader = new PgResultReader(10, 1000);
        if (sqlState is not null)
        {
            var body = new ArrayBufferWriter<byte>();
            PgWire.WriteError(body, new PgError("ERROR", sqlState, "why"));
            reader.Take((byte)'E', body.WrittenSpan[5..]);
        }
        else
        {
            var tag = new ArrayBufferWriter<byte>();
            PgWire.WriteCString(tag, "DELETE 1");
            reader.Take((byte)'C', tag.WrittenSpan);
        }
        reader.Take((byte)'Z', [(byte)'I']);
        return reader;
    }

    public static TheoryData<string, WireAnswer, CallStatus, string?> Cases => new()
    {
        { "ran", new WireAnswer(Answer(), null, null, 1), CallStatus.Completed, null },
        { "ran after approval", new WireAnswer(Answer(), null, Hold, 1), CallStatus.Completed, null },
        { "blocked by a rule", new WireAnswer(Answer("42501"), Blocked, null, 1), CallStatus.Blocked, "no-schema-changes" },
        { "fail-fast request raised", new WireAnswer(Answer("42501"), null, FailFast, 1), CallStatus.PendingApproval, "deletes" },
        { "denied or expired while held", new WireAnswer(Answer("42501"), null, Hold, 1), CallStatus.Denied, "deletes" },
        { "cancelled while held", new WireAnswer(Answer("57014"), null, Hold, 1), CallStatus.Denied, "deletes" },
        { "approved, then the rules changed", new WireAnswer(Answer("42501"), Blocked, Hold, 1), CallStatus.Blocked, "no-schema-changes" },
        { "refused for approval it cannot have", new WireAnswer(Answer("42501"), NeedsApproval, null, 1), CallStatus.Blocked, "deletes" },
        { "the target's own permission error", new WireAnswer(Answer("42501"), null, null, 1), CallStatus.Failed, null },
        { "the target's error", new WireAnswer(Answer("23505"), null, null, 1), CallStatus.Failed, null },
        { "the target's error after approval", new WireAnswer(Answer("23505"), null, Hold, 1), CallStatus.Failed, null },
        { "the statement timeout", new WireAnswer(Answer("57014"), null, null, 1, TimedOut: true), CallStatus.Failed, null },
        { "COPY output past the byte cap", new WireAnswer(Answer("57014"), null, null, 1, CopyStopped: true), CallStatus.Failed, null },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void An_answer_has_one_status(string why, WireAnswer answer, CallStatus status, string? rule)
    {
        var result = QueryOutcome.Of("pg", "s-1", answer);
        Assert.True(result.Status == status, $"{why}: {result.Status}");
        Assert.Equal(rule, result.Error?.Rule);
        Assert.Equal(answer.Held?.Ticket.RequestId, result.Approval?.RequestId);
        if (answer.TimedOut || answer.CopyStopped)
            Assert.Equal("limit", result.Error!.Code);
    }
}
