using Airlock.ControlPlane.Approvals;

namespace Airlock.ControlPlane.Tests;

public sealed class SqlHighlightTests
{
    [Fact]
    public void Runs_cover_the_text_exactly_and_name_what_each_is()
    {
        const string sql = "DELETE /* why */ FROM orders WHERE id = $1 AND note = 'it''s' AND n > 42";
        var runs = SqlHighlight.Runs(sql);
        Assert.Equal(sql, string.Concat(runs.Select(r => r.Text)));
        Assert.Contains(new HighlightedRun("DELETE", SqlHighlight.Keyword), runs);
        Assert.Equal("/* why */", runs.Single(r => r.Kind == SqlHighlight.Comment).Text.Trim()); // with the spaces around it
        Assert.Contains(new HighlightedRun("orders", SqlHighlight.Plain), runs);
        Assert.Contains(new HighlightedRun("$1", SqlHighlight.Parameter), runs);
        Assert.Contains(new HighlightedRun("'it''s'", SqlHighlight.Literal), runs);
        Assert.Contains(new HighlightedRun("42", SqlHighlight.Number), runs);
    }

    [Theory]
    [InlineData("SELECT 'unterminated")]
    [InlineData("/* open comment")]
    [InlineData("")]
    public void Text_that_does_not_lex_is_shown_as_it_is(string sql) =>
        Assert.Equal(sql, string.Concat(SqlHighlight.Runs(sql).Select(r => r.Text)));
}
