using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using Airlock.Sidecar.Policy;
using Airlock.Sidecar.Policy.Masking;
using Airlock.Sidecar.Protocols.Sql;

namespace Airlock.Sidecar.Policy.Tests;

/// <summary>The pure masking parts: strategies per type and format, detectors, DataRow and COPY rewriting, catalog resolution.</summary>
public class MaskingTests
{
    private static readonly byte[] Key = Enumerable.Range(1, 32).Select(i => (byte)i).ToArray();
    private static readonly ValueMasker Masker = new(Key);

    private static ColumnMask Mask(MaskStrategy strategy, int keepLast = 4) => new("r", strategy, keepLast, MaskUse.Default);

    [Theory]
    [InlineData(ValueMasker.Text, 0, "****")]
    [InlineData(ValueMasker.Varchar, 1, "****")]
    [InlineData(ValueMasker.Int4, 0, "0")]
    [InlineData(ValueMasker.Numeric, 0, "0")]
    [InlineData(ValueMasker.Bool, 0, "f")]
    [InlineData(ValueMasker.Uuid, 0, "00000000-0000-0000-0000-000000000000")]
    [InlineData(ValueMasker.Json, 0, "\"****\"")]
    [InlineData(1082, 0, null)] // date: no harmless stand-in, NULL
    [InlineData(1009, 1, null)] // text[] binary: NULL
    public void Redact_gives_a_valid_value_of_the_type_or_null(int type, short format, string? expected)
    {
        var masked = Masker.Mask(Mask(MaskStrategy.Redact), type, format, "secret"u8);
        Assert.Equal(expected, masked is null ? null : Encoding.UTF8.GetString(masked));
    }

    [Fact]
    public void Redacted_binary_numbers_have_their_types_width()
    {
        Assert.Equal(new byte[4], Masker.Mask(Mask(MaskStrategy.Redact), ValueMasker.Int4, 1, [0, 0, 0, 42]));
        Assert.Equal(new byte[8], Masker.Mask(Mask(MaskStrategy.Redact), ValueMasker.Int8, 1, new byte[8]));
        Assert.Equal(new byte[8], Masker.Mask(Mask(MaskStrategy.Redact), ValueMasker.Numeric, 1, [0, 1, 0, 0, 0, 0, 0, 0, 0, 42])); // numeric zero: no digits
        Assert.Equal(new byte[16], Masker.Mask(Mask(MaskStrategy.Redact), ValueMasker.Uuid, 1, new byte[16]));
        Assert.Equal("\u0001\"****\""u8.ToArray(), Masker.Mask(Mask(MaskStrategy.Redact), ValueMasker.Jsonb, 1, "\u0001{}"u8));
    }

    [Theory]
    [InlineData("alice@example.com", 4, "*****@example.com")]
    [InlineData("4111 1111 1111 1234", 4, "**** **** **** 1234")]
    [InlineData("4111-1111-1111-1234", 2, "****-****-****-**34")]
    [InlineData("secret-token", 4, "********oken")]
    [InlineData("abc", 4, "***")]
    [InlineData("ünïcödé", 2, "*****dé")]
    public void Partial_keeps_the_last_characters_an_emails_domain_and_a_cards_shape(string value, int keepLast, string expected) =>
        Assert.Equal(expected, ValueMasker.Partial(value, keepLast));

    [Fact]
    public void Hashes_are_keyed_deterministic_and_equal_in_text_and_binary()
    {
        var mask = Mask(MaskStrategy.Hash);
        var a = Masker.Mask(mask, ValueMasker.Text, 0, "alice@example.com"u8)!;
        Assert.Equal(a, Masker.Mask(mask, ValueMasker.Varchar, 1, "alice@example.com"u8));
        Assert.NotEqual(a, Masker.Mask(mask, ValueMasker.Text, 0, "bob@example.com"u8));
        Assert.NotEqual(a, new ValueMasker(new byte[32]).Mask(mask, ValueMasker.Text, 0, "alice@example.com"u8));
        Assert.Matches("^h_[0-9a-f]{24}$", Encoding.ASCII.GetString(a));

        var binary = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(binary, 1234);
        var asBinary = Masker.Mask(mask, ValueMasker.Int4, 1, binary)!;
        var asText = Masker.Mask(mask, ValueMasker.Int4, 0, "1234"u8)!;
        Assert.Equal(4, asBinary.Length);
        Assert.Equal(BinaryPrimitives.ReadInt32BigEndian(asBinary).ToString(System.Globalization.CultureInfo.InvariantCulture), Encoding.ASCII.GetString(asText));
        Assert.Null(new ValueMasker(null).Mask(mask, ValueMasker.Text, 0, "x"u8)); // no key: nothing shown
    }

    [Fact]
    public void A_detectors_hash_is_not_the_column_hash_of_the_same_text()
    {
        // Otherwise an agent could SELECT candidate values through a detector and compare with a hashed column.
        var column = Encoding.ASCII.GetString(Masker.Mask(Mask(MaskStrategy.Hash), ValueMasker.Text, 0, "123-45-6789"u8)!);
        var detected = Masker.MaskText(MaskStrategy.Hash, 4, "123-45-6789", "national_id");
        Assert.StartsWith("d_", detected, StringComparison.Ordinal);
        Assert.NotEqual(column, detected);
    }

    [Fact]
    public void A_long_copy_row_sent_a_byte_at_a_time_is_read_in_linear_time()
    {
        var masker = new CopyMasker(Csv, Columns, Masker);
        var output = new ArrayBufferWriter<byte>();
        var row = "1,\"" + new string('x', 300_000) + "\",tail\n";
        var clock = System.Diagnostics.Stopwatch.StartNew();
        masker.Feed(Encoding.ASCII.GetBytes("id,email,note\n"), output);
        foreach (var b in Encoding.ASCII.GetBytes(row))
            masker.Feed([b], output);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"{clock.Elapsed}");
        Assert.Contains("\"****\"", Encoding.ASCII.GetString(output.WrittenSpan), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("email", "write to carol@example.org today", "carol@example.org")]
    [InlineData("card", "card 4242 4242 4242 4242 ok", "4242 4242 4242 4242")]
    [InlineData("card", "number 4242 4242 4242 4241 fails luhn", null)]
    [InlineData("iban", "pay GB82 WEST 1234 5698 7654 32 now", "GB82 WEST 1234 5698 7654 32")]
    [InlineData("iban", "GB82 WEST 1234 5698 7654 33", null)]
    [InlineData("national_id", "ssn 123-45-6789.", "123-45-6789")]
    [InlineData("national_id", "ssn 000-45-6789", null)]
    [InlineData("jwt", "t=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLWJ5dGVz", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLWJ5dGVz")]
    [InlineData("api_key", "aws AKIAIOSFODNN7EXAMPLE key", "AKIAIOSFODNN7EXAMPLE")]
    [InlineData("api_key", "gh ghp_0123456789abcdefghijklmnopqrstuvwxyz", "ghp_0123456789abcdefghijklmnopqrstuvwxyz")]
    [InlineData("private_key", "-----BEGIN PRIVATE KEY-----\nMIIBVQ==\n-----END PRIVATE KEY-----", "-----BEGIN PRIVATE KEY-----\nMIIBVQ==\n-----END PRIVATE KEY-----")]
    [InlineData("phone", "call +1 650-253-0000 now", "+1 650-253-0000")]
    [InlineData("email", "no address here", null)]
    public void Detectors_find_what_they_look_for_and_nothing_else(string detector, string text, string? found)
    {
        var detections = ContentDetectors.Find(text, [ContentDetectors.Parse(detector)]);
        if (found is null)
            Assert.Empty(detections);
        else
            Assert.Equal(found, text.Substring(Assert.Single(detections).Start, detections[0].Length));
    }

    [Fact]
    public void An_unknown_detector_detects_the_whole_text() =>
        Assert.Equal(new Detection(0, 5, ContentDetector.Unknown), Assert.Single(ContentDetectors.Find("hello", [ContentDetectors.Parse("newer")])));

    private static byte[] DataRow(params byte[]?[] values)
    {
        var body = new ArrayBufferWriter<byte>();
        var span = body.GetSpan(2);
        BinaryPrimitives.WriteInt16BigEndian(span, (short)values.Length);
        body.Advance(2);
        foreach (var v in values)
        {
            span = body.GetSpan(4);
            BinaryPrimitives.WriteInt32BigEndian(span, v?.Length ?? -1);
            body.Advance(4);
            if (v is not null)
                body.Write(v);
        }
        return body.WrittenSpan.ToArray();
    }

    [Fact]
    public void A_datarow_has_only_its_masked_values_rewritten_and_its_length_fixed()
    {
        var plan = new ResultMaskPlan(
            [null, new ColumnPlan("t.email", ValueMasker.Text, 0, Mask(MaskStrategy.Redact)), new ColumnPlan("t.n", ValueMasker.Int4, 1, Mask(MaskStrategy.Null)), null],
            Masker);
        var output = new ArrayBufferWriter<byte>();
        plan.Rewrite(DataRow("1"u8.ToArray(), "alice@example.com"u8.ToArray(), [0, 0, 0, 7], null), output);
        var message = output.WrittenSpan;
        Assert.Equal((byte)'D', message[0]);
        Assert.Equal(message.Length - 1, BinaryPrimitives.ReadInt32BigEndian(message[1..]));
        Assert.Equal(DataRow("1"u8.ToArray(), "****"u8.ToArray(), null, null), message[5..].ToArray());
        var counts = new Dictionary<string, long>();
        plan.ReportTo((c, n) => counts[c] = n);
        Assert.Equal(new Dictionary<string, long> { ["t.email"] = 1, ["t.n"] = 1 }, counts);
    }

    [Theory]
    [InlineData(new byte[] { 0 })] // no count
    [InlineData(new byte[] { 0, 2, 0, 0, 0, 1, (byte)'a' })] // two values announced, one sent
    [InlineData(new byte[] { 0, 1, 0, 0, 0, 9, (byte)'a' })] // a value longer than the row
    [InlineData(new byte[] { 0, 1, 255, 255, 255, 250 })] // a negative length other than -1
    [InlineData(new byte[] { 0, 1, 0, 0, 0, 1, (byte)'a', (byte)'b' })] // bytes after the last value
    [InlineData(new byte[] { 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 })] // more values than columns
    public void A_malformed_datarow_is_refused_not_forwarded(byte[] body)
    {
        var plan = new ResultMaskPlan([new ColumnPlan("t.c", ValueMasker.Text, 0, Mask(MaskStrategy.Redact))], Masker);
        var output = new ArrayBufferWriter<byte>();
        Assert.Throws<FormatException>(() => plan.Rewrite(body, output));
        Assert.Equal(0, output.WrittenCount);
    }

    [Fact]
    public void A_result_no_description_announced_is_all_nulls()
    {
        var plan = ResultMaskPlan.Blind(Masker);
        var output = new ArrayBufferWriter<byte>();
        plan.Rewrite(DataRow("a"u8.ToArray(), null, "c"u8.ToArray()), output);
        Assert.Equal(DataRow(null, null, null), output.WrittenSpan[5..].ToArray());
    }

    [Fact]
    public void Detectors_rewrite_text_in_unattributed_columns_and_null_what_they_cannot_read()
    {
        var detect = new DetectorMask("d", MaskStrategy.Redact, 4, [ContentDetector.Email]);
        var plan = new ResultMaskPlan(
            [new ColumnPlan("x", ValueMasker.Text, 0, null, [detect]), new ColumnPlan("y", 1009, 1, null, [detect]), new ColumnPlan("z", ValueMasker.Int4, 1, null, [detect])],
            Masker);
        var output = new ArrayBufferWriter<byte>();
        plan.Rewrite(DataRow("mail bob@example.org now"u8.ToArray(), [1, 2, 3], [0, 0, 0, 5]), output);
        Assert.Equal(DataRow("mail [email] now"u8.ToArray(), null, [0, 0, 0, 5]), output.WrittenSpan[5..].ToArray());
    }

    private static readonly CopyOut Text = new("customers", null, false, '\t', '"', '"', "\\N", false);
    private static readonly CopyOut Csv = new("customers", null, true, ',', '"', '"', "", true);

    private static (ColumnMask?, int, string)[] Columns => [(null, ValueMasker.Int4, "c.id"), (Mask(MaskStrategy.Redact), ValueMasker.Text, "c.email"), (Mask(MaskStrategy.Partial, 2), ValueMasker.Text, "c.note")];

    private static string Copy(CopyOut options, params string[] chunks)
    {
        var masker = new CopyMasker(options, Columns, Masker);
        var output = new ArrayBufferWriter<byte>();
        foreach (var chunk in chunks)
            masker.Feed(Encoding.UTF8.GetBytes(chunk), output);
        masker.Finish(output);
        var text = new StringBuilder();
        var all = output.WrittenSpan;
        while (all.Length > 0)
        {
            Assert.Equal((byte)'d', all[0]);
            var length = BinaryPrimitives.ReadInt32BigEndian(all[1..]);
            text.Append(Encoding.UTF8.GetString(all.Slice(5, length - 4)));
            all = all[(1 + length)..];
        }
        return text.ToString();
    }

    [Fact]
    public void Copy_text_rows_are_masked_with_escapes_undone_and_redone()
    {
        // note "ab<tab>c\" keeps "c\" (partial, 2) and its backslash is escaped again; "x" is all hidden
        var masked = Copy(Text, "1\talice@x.org\tab\\tc\\\\\n2\t\\N\tx\n");
        Assert.Equal("1\t****\t***c\\\\\n2\t\\N\t*\n", masked);
    }

    [Fact]
    public void Copy_csv_keeps_its_header_and_quotes_masked_values()
    {
        var masked = Copy(Csv, "id,email,note\n1,\"al,\"\"ice\"\"\nx\",\"hello\"\n2,,plain\n");
        Assert.Equal("id,email,note\n1,\"****\",\"***lo\"\n2,,\"***in\"\n", masked);
    }

    [Fact]
    public void Copy_rows_split_anywhere_across_messages_come_out_the_same()
    {
        const string data = "id,email,note\n1,\"a\nb\",\"q\"\"q\"\n2,x@y.z,\"multi\nline\"\n3,,\n";
        var whole = Copy(Csv, data);
        var random = new Random(20261205);
        for (var round = 0; round < 200; round++)
        {
            var chunks = new List<string>();
            var at = 0;
            while (at < data.Length)
            {
                var n = random.Next(1, 7);
                chunks.Add(data.Substring(at, Math.Min(n, data.Length - at)));
                at += n;
            }
            Assert.Equal(whole, Copy(Csv, [.. chunks]));
        }
        Assert.DoesNotContain("x@y.z", whole, StringComparison.Ordinal);
    }

    [Fact]
    public void A_copy_row_of_the_wrong_width_is_refused()
    {
        var masker = new CopyMasker(Text, Columns, Masker);
        Assert.Throws<FormatException>(() => masker.Feed("1\ta\tb\tc\n"u8, new ArrayBufferWriter<byte>()));
        Assert.Throws<FormatException>(() => new CopyMasker(Text, Columns, Masker).Feed("1\ta\n"u8, new ArrayBufferWriter<byte>()));
    }

    private static MaskRules Rules(params RulePolicy[] rules) => MaskRules.Compile(rules);

    private static RulePolicy MaskRule(string name, string strategy, string? mode, params string[] columns) =>
        new(name, RuleActions.Mask, [], new RuleMatch([], [], [], null), null, new MaskSpec(columns, [], strategy, null, mode), null);

    [Fact]
    public void The_catalog_resolves_rules_to_columns_children_views_and_risky_functions()
    {
        var rules = Rules(MaskRule("pii", "redact", null, "customers.email"), MaskRule("pay", "null", "strict", "hr.staff.salary"));
        var target = MaskedTarget.Build(rules,
            [
                new CatalogColumn(100, "public", "customers", 1, "id", "public", "customers"),
                new CatalogColumn(100, "public", "customers", 2, "email", "public", "customers"),
                new CatalogColumn(101, "public", "customers_2024", 1, "id", "public", "customers"),
                new CatalogColumn(101, "public", "customers_2024", 2, "email", "public", "customers"),
                new CatalogColumn(200, "hr", "staff", 1, "salary", "hr", "staff"),
                new CatalogColumn(300, "public", "staff", 1, "salary", "public", "staff"), // another schema's staff: not masked
            ],
            [new CatalogRelation(400, "public", "customer_emails")],
            [
                new CatalogFunction("public", "leak", "sql", "SELECT email FROM public.customers WHERE id = $1"),
                new CatalogFunction("public", "harmless", "sql", "SELECT $1 + 1"),
                new CatalogFunction("public", "dynamic", "plpgsql", "BEGIN RETURN QUERY EXECUTE 'select 1'; END"),
                new CatalogFunction("public", "native", "c", null),
                new CatalogFunction("public", "archive_reader", "sql", "SELECT 1 FROM customers_archive"),
                new CatalogFunction("public", "wrapper", "sql", "SELECT leak(1)"), // calls a risky function
                new CatalogFunction("public", "outer_wrapper", "plpgsql", "BEGIN RETURN wrapper(); END"),
            ]);
        Assert.Equal("pii", target.Find(100, 2, "email", out _)!.Value.Mask.Rule);
        Assert.Equal("pii", target.Find(101, 2, "email", out _)!.Value.Mask.Rule);
        Assert.Null(target.Find(100, 1, "id", out _));
        Assert.Equal(MaskStrategy.Null, target.Find(200, 1, "salary", out _)!.Value.Mask.Strategy);
        Assert.Null(target.Find(300, 1, "salary", out _));
        Assert.NotNull(target.Find(400, 1, "anything", out _)); // a view over a masked table
        Assert.Equal(["customer_emails"], target.Schema.Derived.Keys);
        Assert.Equal(["dynamic", "leak", "native", "outer_wrapper", "wrapper"], target.Schema.Functions.Keys.Order());
        Assert.Equal(MaskUse.Strict, target.Schema.Columns["salary"].Use);

        // A column added or renamed since the read: masked, and the read is stale.
        Assert.NotNull(target.Find(100, 3, "added_later", out var stale));
        Assert.True(stale);
        Assert.Equal("pii", target.Find(100, 1, "email", out stale)!.Value.Mask.Rule); // id renamed to email
        Assert.True(stale);

        var copy = target.CopyMasks("customers", ["email", "id"])!;
        Assert.Equal([true, false], copy.Select(c => c.Mask is not null));
    }
}
