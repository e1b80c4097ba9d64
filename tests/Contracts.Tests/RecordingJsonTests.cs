using Airlock.Contracts.Recording;

namespace Airlock.Contracts.Tests;

public sealed class RecordingJsonTests
{
    public static TheoryData<string, StatementPayload> Statements => new()
    {
        { "minimal", new StatementPayload("SELECT 1", [], "unknown", "allow", null, 0, null, null) },
        { "parameters with null", new StatementPayload("SELECT $1, $2", ["42", null], "read", "allow", null, 0.125, 1, null) },
        { "escaping", new StatementPayload("SELECT '<b>' || 'a&b' || '\"q\"' || E'\\n\\t' || 'é😀' || '\u0001'", ["<script>", "\u2028"], "read", "block", "no-<tags>", 1e-7, 0, "42501: blocked by 'rule'") },
        { "error", new StatementPayload("SELECT * FROM nope", [], "unknown", "allow", null, 3.5, null, "42P01: relation \"nope\" does not exist") },
        { "large numbers", new StatementPayload("COPY t FROM STDIN", [], "write", "allow", null, 123456789.123, long.MaxValue, null) },
        { "result", new StatementPayload("SELECT n, label FROM t", [], "read", "allow", null, 0.5, 3,
            null, new StatementResult(["n", "label"], [["1", "row 1"], ["2", null], ["3", "<&>"]], false)) },
        { "truncated empty result", new StatementPayload("SELECT", [], "read", "allow", null, 0.5, 100, null, new StatementResult([], [], true)) },
    };

    [Theory]
    [MemberData(nameof(Statements))]
    public void The_direct_statement_encoding_is_byte_for_byte_the_serializers(string name, StatementPayload statement)
    {
        _ = name;
        Assert.Equal(Convert.ToHexString(RecordingJson.Encode(statement)), Convert.ToHexString(RecordingJson.EncodeStatement(statement)));
        var decoded = RecordingJson.Decode<StatementPayload>(RecordingJson.EncodeStatement(statement))!;
        Assert.Equal(statement.Text, decoded.Text);
        Assert.Equal(statement.Parameters, decoded.Parameters);
        Assert.Equal(statement.Result?.Rows.Count, decoded.Result?.Rows.Count);
    }

    [Fact]
    public void A_large_result_encodes_whole_and_the_next_small_one_is_unaffected()
    {
        var rows = Enumerable.Range(0, 5000).Select(i => (IReadOnlyList<string?>)[new string('x', 100), i.ToString(System.Globalization.CultureInfo.InvariantCulture)]).ToList();
        var large = new StatementPayload("SELECT filler, n FROM big", [], "read", "allow", null, 10, 5000, null, new StatementResult(["filler", "n"], rows, false));
        Assert.Equal(RecordingJson.Encode(large), RecordingJson.EncodeStatement(large));
        var small = new StatementPayload("SELECT 1", [], "read", "allow", null, 0, 1, null);
        Assert.Equal(RecordingJson.Encode(small), RecordingJson.EncodeStatement(small));
    }
}
