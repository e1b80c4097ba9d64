using System.Text;
using Airlock.Sidecar.Policy.Approvals;

namespace Airlock.Sidecar.Policy.Tests;

/// <summary>What an approval is bound to: the same statement (however it is spaced) and values, for the same agent and target — nothing else.</summary>
public sealed class ApprovalFingerprintTests
{
    private static BoundValue Text(string value) => new(0, Encoding.UTF8.GetBytes(value));

    private static string Of(string sql, params BoundValue[] values) => ApprovalFingerprint.Of(sql, values, [], "ci", "orders");

    private static readonly string Base = Of("DELETE FROM t WHERE id = $1", Text("5"));

    [Theory]
    [InlineData("DELETE FROM t WHERE id = $1")]
    [InlineData("delete   from t\nwhere id=$1")]
    [InlineData("DELETE /* the one */ FROM t WHERE id = $1 -- really")]
    public void The_same_statement_spelled_otherwise_is_the_same(string sql) =>
        Assert.Equal(Base, Of(sql, Text("5")));

    public static TheoryData<string, string, BoundValue[], string, string> Different => new()
    {
        { "another value", "DELETE FROM t WHERE id = $1", [Text("6")], "ci", "orders" },
        { "NULL is not empty", "DELETE FROM t WHERE id = $1", [new BoundValue(0, null)], "ci", "orders" },
        { "empty is not NULL", "DELETE FROM t WHERE id = $1", [Text("")], "ci", "orders" },
        { "binary is not text", "DELETE FROM t WHERE id = $1", [new BoundValue(1, Encoding.UTF8.GetBytes("5"))], "ci", "orders" },
        { "an extra value", "DELETE FROM t WHERE id = $1", [Text("5"), Text("")], "ci", "orders" },
        { "no values", "DELETE FROM t WHERE id = $1", [], "ci", "orders" },
        { "another literal", "DELETE FROM t WHERE id = 5", [Text("5")], "ci", "orders" },
        { "a literal's case", "DELETE FROM t WHERE name = 'A'", [], "ci", "orders" },
        { "a quoted name's case", "DELETE FROM \"T\" WHERE id = $1", [Text("5")], "ci", "orders" },
        { "another agent", "DELETE FROM t WHERE id = $1", [Text("5")], "cd", "orders" },
        { "another target", "DELETE FROM t WHERE id = $1", [Text("5")], "ci", "orders2" },
        { "agent and target run together", "DELETE FROM t WHERE id = $1", [Text("5")], "ciorders", "" },
    };

    [Theory]
    [MemberData(nameof(Different))]
    public void Anything_else_is_another_statement(string why, string sql, BoundValue[] values, string agent, string target)
    {
        Assert.NotEqual(Base, ApprovalFingerprint.Of(sql, values, [], agent, target));
        Assert.False(string.IsNullOrEmpty(why));
    }

    [Fact]
    public void The_same_bytes_under_another_declared_type_are_another_value()
    {
        BoundValue[] two = [new BoundValue(1, new byte[] { 0x40, 0, 0, 0, 0, 0, 0, 0 })]; // 2.0 as float8; 4611686018427387904 as int8
        Assert.NotEqual(ApprovalFingerprint.Of("DELETE FROM t WHERE id < $1", two, [701], "ci", "orders"),
            ApprovalFingerprint.Of("DELETE FROM t WHERE id < $1", two, [20], "ci", "orders"));
        Assert.NotEqual(ApprovalFingerprint.Of("DELETE FROM t WHERE id < $1", two, [701], "ci", "orders"),
            ApprovalFingerprint.Of("DELETE FROM t WHERE id < $1", two, [], "ci", "orders"));
    }

    [Fact]
    public void Literals_differing_only_in_case_differ_and_the_form_is_lower_case_hex()
    {
        Assert.NotEqual(Of("DELETE FROM t WHERE name = 'a'"), Of("DELETE FROM t WHERE name = 'A'"));
        Assert.Matches("^[0-9a-f]{64}$", Base);
    }
}
