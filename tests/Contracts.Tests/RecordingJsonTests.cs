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

    public static TheoryData<string, int, int, int> OversizedResults => new()
    {
        // name, rows, columns, characters per value — each far over the event limit once escaped
        { "many small escaping-heavy rows", 200_000, 2, 20 },
        { "few huge values", 10, 1, 300_000 },
        { "one row too large alone", 1, 3, 1_000_000 },
        { "very many columns", 1, 65_535, 10 },
    };

    [Theory]
    [MemberData(nameof(OversizedResults))]
    public void An_oversized_result_is_cut_to_the_event_limit_and_marked_truncated(string name, int rowCount, int columnCount, int chars)
    {
        _ = name;
        var value = string.Concat(Enumerable.Repeat("<\"\\\u0001é", chars / 5 + 1))[..chars];
        var columns = Enumerable.Range(0, columnCount).Select(i => $"c{i}<>").ToList();
        var row = (IReadOnlyList<string?>)Enumerable.Repeat<string?>(value, columnCount).ToList();
        var rows = Enumerable.Repeat(row, rowCount).ToList();
        var statement = new StatementPayload("SELECT <hostile>", ["<p>"], "read", "allow", null, 1, rowCount, "XX000: <e>", new StatementResult(columns, rows, false));
        var encoded = RecordingJson.EncodeStatement(statement);
        Assert.InRange(encoded.Length, 1, RecordingLimits.MaxEventPayloadBytes);
        var decoded = RecordingJson.Decode<StatementPayload>(encoded)!;
        Assert.True(decoded.Result!.Truncated);
        Assert.Equal(statement.Text, decoded.Text);
        Assert.Equal(statement.Error, decoded.Error);
        Assert.True(decoded.Result.Rows.Count < rowCount || decoded.Result.Columns.Count < columnCount);
        Assert.All(decoded.Result.Rows, r => Assert.Equal(row, r));
        // What fits is kept: the cut is not wasteful (at least half the limit used when rows are small).
        if (chars * columnCount < 10_000)
            Assert.True(encoded.Length > RecordingLimits.MaxEventPayloadBytes / 2, $"{encoded.Length} bytes");
    }

    [Theory]
    [InlineData(0, 0, false)]
    [InlineData(10, 10, false)]
    [InlineData(11, 10, true)]
    [InlineData(3_000_000, 8192, true)]
    public void Truncation_keeps_the_cap_and_says_how_long_the_value_was(int length, int cap, bool cut)
    {
        var text = new string('<', length);
        var kept = RecordingLimits.Truncate(text, cap);
        Assert.Equal(cut, RecordingLimits.IsTruncated(kept));
        Assert.Equal(cut ? text[..cap] + $"…[truncated: {length} characters]" : text, kept);
    }

    [Fact]
    public void Truncation_never_splits_a_surrogate_pair()
    {
        var kept = RecordingLimits.Truncate("a😀b", 2);
        Assert.StartsWith("a…", kept, StringComparison.Ordinal);
    }
}
