using Airlock.Sidecar.Protocols.Sql;

namespace Airlock.Sidecar.Protocols.Tests;

/// <summary>
/// One row per statement: what masking makes of it — <c>ok</c> (runs; masked columns leave only as plain
/// output), <c>refused</c>, or <c>untouched</c> (names no masked relation) — and the SQL. The schema:
/// <c>customers.email</c> and <c>customers.card</c> masked (default), <c>staff.salary</c> masked strictly,
/// <c>notes.body</c> masked output-only, and the view <c>customer_emails</c> reads a masked column.
/// </summary>
public class SqlMaskRoutesTests
{
    private const string Table = """
        untouched   SELECT email FROM vendors
        untouched   SELECT lower(email) FROM vendors v
        untouched   SELECT 1
        ok          SELECT email FROM customers
        ok          SELECT email AS e, name FROM customers
        ok          SELECT c.email e FROM customers c
        ok          SELECT public.customers.email FROM public.customers
        ok          SELECT * FROM customers
        ok          SELECT c.* FROM customers c WHERE c.id = 1
        ok          SELECT DISTINCT email FROM customers ORDER BY email
        ok          SELECT name FROM customers WHERE email = 'a@b.c'
        ok          SELECT name FROM customers WHERE lower(email) LIKE '%@example.com' ORDER BY email
        ok          SELECT count(*) FROM customers
        ok          SELECT c.name, o.total FROM customers c JOIN orders o ON o.email = c.email
        ok          SELECT email, count(*) FROM customers GROUP BY email HAVING count(*) > 1
        ok          SELECT id FROM customers WHERE id IN (SELECT id FROM customers WHERE email LIKE 'a%')
        ok          SELECT id FROM customers c WHERE EXISTS (SELECT * FROM customers d WHERE d.email = c.email)
        ok          UPDATE customers SET name = 'x' WHERE email = 'a@b.c' RETURNING id, email
        ok          UPDATE customers SET email = 'new@b.c' WHERE id = 1
        ok          INSERT INTO customers (email, name) VALUES ('a@b.c', 'A') RETURNING *
        ok          DELETE FROM customers WHERE email = 'a@b.c' RETURNING email
        ok          DECLARE cur CURSOR FOR SELECT email FROM customers
        ok          PREPARE p AS SELECT email FROM customers WHERE id = $1
        ok          EXPLAIN SELECT email FROM customers
        ok          WITH recent AS (SELECT id FROM customers WHERE email LIKE 'a%') SELECT * FROM recent
        ok          SELECT email FROM customers FOR UPDATE
        ok          TABLE customers
        ok          LOCK TABLE customers
        ok          TRUNCATE customers
        ok          COPY customers TO STDOUT
        ok          COPY customers (id, email) TO STDOUT WITH (FORMAT csv, HEADER)
        ok          COPY customers FROM STDIN
        ok          SELECT body FROM notes
        ok          SELECT lower(body) FROM notes
        ok          SELECT salary FROM staff
        ok          SELECT 'x' IS DISTINCT FROM name FROM customers
        refused     SELECT lower(email) FROM customers
        refused     SELECT email || '' FROM customers
        refused     SELECT email::text FROM customers
        refused     SELECT CAST(email AS varchar) FROM customers
        refused     SELECT (email) FROM customers
        refused     SELECT ROW(email) FROM customers
        refused     SELECT ARRAY[email] FROM customers
        refused     SELECT json_build_object('e', email) FROM customers
        refused     SELECT row_to_json(c) FROM customers c
        refused     SELECT to_jsonb(customers) FROM customers
        refused     SELECT to_jsonb(c.*) FROM customers c
        refused     SELECT c FROM customers c
        refused     SELECT customers FROM customers
        refused     SELECT c::text FROM customers c
        refused     SELECT (c).email FROM customers c
        refused     SELECT email(c) FROM customers c
        refused     SELECT string_agg(email, ',') FROM customers
        refused     SELECT max(email) FROM customers
        refused     SELECT CASE WHEN email LIKE 'a%' THEN 1 END FROM customers
        refused     SELECT (SELECT email FROM customers LIMIT 1)
        refused     SELECT ARRAY(SELECT email FROM customers)
        refused     SELECT e FROM (SELECT email AS e FROM customers) s
        refused     SELECT * FROM (SELECT * FROM customers) s
        refused     SELECT x FROM customers c(i, n, x)
        refused     WITH t AS (SELECT email FROM customers) SELECT * FROM t
        refused     WITH t AS (SELECT * FROM customers) SELECT * FROM t
        refused     SELECT email FROM customers UNION SELECT 'x'
        refused     SELECT email FROM customers UNION ALL SELECT email FROM customers
        refused     (SELECT email FROM customers)
        refused     SELECT * FROM customers c, LATERAL (SELECT c.email AS e) l
        refused     SELECT * FROM customers c, jsonb_each_text(to_jsonb(c)) j
        refused     SELECT u FROM customers c, unnest(ARRAY[c.email]) u
        refused     SELECT email INTO copy_of FROM customers
        refused     INSERT INTO notes2 SELECT email FROM customers
        refused     INSERT INTO notes2 SELECT * FROM customers
        refused     UPDATE customers SET name = email
        refused     UPDATE vendors v SET contact = c.email FROM customers c WHERE c.id = v.id
        refused     UPDATE customers SET name = 'x' RETURNING lower(email)
        refused     WITH d AS (DELETE FROM customers RETURNING email) SELECT * FROM d
        refused     SELECT pg_notify('ch', email) FROM customers
        refused     SELECT set_config('x.y', email, false) FROM customers
        refused     SELECT email FROM customers c FULL JOIN vendors v USING (email)
        refused     SELECT * FROM customers NATURAL FULL JOIN vendors
        refused     SELECT row_number() OVER (ORDER BY email) FROM customers
        refused     SELECT salary FROM staff WHERE salary > 1000
        refused     SELECT id FROM staff ORDER BY salary
        refused     SELECT * FROM customer_emails
        refused     SELECT most_common_vals FROM pg_stats WHERE attname = 'email'
        refused     SELECT query FROM pg_stat_activity
        refused     COPY (SELECT email FROM customers) TO STDOUT
        refused     COPY customers TO STDOUT (FORMAT binary)
        refused     COPY customers TO STDOUT BINARY
        refused     COPY customers TO '/tmp/x'
        refused     ALTER TABLE customers RENAME COLUMN email TO contact
        refused     ALTER TABLE customers RENAME TO clients
        refused     CREATE VIEW v AS SELECT email FROM customers
        refused     CREATE TABLE c2 AS SELECT * FROM customers
        refused     ALTER SCHEMA public RENAME TO p2
        refused     SELECT v FROM customers c CROSS JOIN LATERAL (VALUES (c.email)) x(v)
        refused     DECLARE cur CURSOR FOR SELECT lower(email) FROM customers
        refused     SELECT * FROM (customers c JOIN orders o ON o.cid = c.id) j
        refused     TABLE pg_am UNION ALL SELECT id::oid, encode(convert_to(email, 'UTF8'), 'base64'), NULL, NULL FROM customers
        refused     INSERT INTO loot (a, b, c) TABLE customers RETURNING *
        refused     SELECT s::text FROM (WITH x AS (SELECT 1) TABLE customers) s
        refused     SELECT percentile_disc(0) WITHIN GROUP (ORDER BY email) FROM customers GROUP BY id
        refused     SELECT c.row_to_json FROM customers c
        refused     UPDATE customers c SET name = 'x' RETURNING c.to_jsonb
        refused     SELECT j::text FROM customers c JOIN customers d USING (email) AS j
        refused     SELECT no::text FROM customers no
        refused     SELECT cascade FROM customers cascade
        refused     SELECT upper(email) FROM U&"!0063ustomers" UESCAPE '!'
        refused     UPDATE loot SET j[(SELECT string_agg(email, ',') FROM customers)] = '1' WHERE id = 1
        refused     INSERT INTO loot (j[(SELECT string_agg(email, ';') FROM customers)]) VALUES ('1')
        refused     SELECT 1 FROM customers WHERE pg_notify('ch', email) IS NULL
        refused     SELECT 1 FROM customers WHERE lo_from_bytea(1000 + id, convert_to(email, 'UTF8')) > 0
        refused     SELECT 1 FROM customers WHERE set_config('application_name', email, false) IS NOT NULL
        refused     SELECT email AS x FROM customers LEFT JOIN (SELECT NULL::varchar AS email) v USING (email)
        refused     SELECT NOT email FROM customers
        refused     SELECT email IS NULL FROM customers
        refused     COPY customers TO STDOUT (NULL 'guess')
        refused     COPY customers TO STDOUT (FORMAT csv, HEADER maybe)
        refused     CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$ SELECT 1 $$
        refused     CREATE TEMP TABLE loot AS EXECUTE p
        refused     CREATE OPERATOR ### (FUNCTION = f, RIGHTARG = int)
        ok          SELECT lower(v.email) FROM vendors v JOIN customers c ON c.id = v.id
        ok          SELECT count(email), count(DISTINCT email) FROM customers
        ok          SELECT c.email, c.ctid FROM customers c
        ok          SELECT id FROM customers EXCEPT SELECT id FROM customers WHERE email IS NULL
        ok          SELECT name FROM customers WHERE lower(email) = 'x' AND length(card) > 4
        ok          COPY customers TO STDOUT (FORMAT csv, HEADER 0)
        refused     SELECT ARRAY['', email, ''] FROM customers
        refused     SELECT id, ARRAY[c.email, ''] AS a FROM customers c
        refused     UPDATE customers SET name = ARRAY['x', customers.email]::text WHERE id = 1 RETURNING name
        refused     MERGE INTO customers t USING customers c ON (set_config('application_name', c.email, false) IS NULL) WHEN MATCHED THEN DO NOTHING
        refused     SELECT 1 FROM customers WHERE setseed(ascii(substr(email, 1, 1)) / 256.0) IS NULL
        refused     SELECT util.count(email) FROM customers
        ok          UPDATE customers SET name = 'x', card = 'y' WHERE id = 1
        ok          UPDATE customers SET tags[1] = 'x' WHERE email = 'a'
        ok          INSERT INTO customers (id, email) VALUES (1, 'a')
        """;

    private static readonly MaskedSchema Schema = new(
        [("email", new MaskedName("mask-pii", MaskUse.Default)), ("card", new MaskedName("mask-pii", MaskUse.Default)),
         ("salary", new MaskedName("mask-pay", MaskUse.Strict)), ("body", new MaskedName("mask-notes", MaskUse.OutputOnly))],
        [("customers", new MaskedName("mask-pii", MaskUse.Default)), ("staff", new MaskedName("mask-pay", MaskUse.Strict)), ("notes", new MaskedName("mask-notes", MaskUse.OutputOnly))],
        [("customer_emails", new MaskedName("mask-pii", MaskUse.Default))],
        ["public"],
        relationColumns: new Dictionary<string, IReadOnlySet<string>>
        {
            ["customers"] = new HashSet<string> { "id", "name", "email", "card" },
            ["staff"] = new HashSet<string> { "id", "salary" },
            ["notes"] = new HashSet<string> { "id", "body" },
        });

    public static TheoryData<string, string> Rows()
    {
        var rows = new TheoryData<string, string>();
        foreach (var line in Table.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var space = line.IndexOf(' ');
            rows.Add(line[..space], line[space..].Trim());
        }
        return rows;
    }

    [Theory]
    [MemberData(nameof(Rows))]
    public void Each_statement_is_allowed_or_refused_as_the_table_says(string expected, string sql)
    {
        var statement = SqlClassifier.Analyze(sql).Statements.Single();
        var route = SqlMaskRoutes.Check(sql, statement, Schema);
        var actual = route.Refused ? "refused" : route.Touches ? "ok" : "untouched";
        Assert.True(expected == actual, $"{sql}: expected {expected}, got {actual} ({route.Reason})");
        if (route.Refused)
            Assert.False(string.IsNullOrEmpty(route.Reason));
    }

    [Fact]
    public void A_table_copy_says_how_to_mask_its_rows()
    {
        const string sql = "COPY customers (id, email) TO STDOUT WITH (FORMAT csv, HEADER true, DELIMITER ';')";
        var route = SqlMaskRoutes.Check(sql, SqlClassifier.Analyze(sql).Statements.Single(), Schema);
        Assert.Equal(new CopyOut("customers", null, true, ';', '"', '"', "", true), route.Copy! with { Columns = null });
        Assert.Equal(["id", "email"], route.Copy.Columns!);

        const string text = "COPY customers TO STDOUT";
        var plain = SqlMaskRoutes.Check(text, SqlClassifier.Analyze(text).Statements.Single(), Schema).Copy!;
        Assert.Equal((false, '\t', "\\N", false), (plain.Csv, plain.Delimiter, plain.Null, plain.Header));
        Assert.Null(plain.Columns);
    }

    [Fact]
    public void Deep_nesting_is_refused_in_linear_time_not_by_exhausting_the_stack()
    {
        // Run on a thread with a small stack: a walker that recursed per parenthesis would kill the process.
        foreach (var depth in new[] { 200_000 })
        {
            var sql = "SELECT " + new string('(', depth) + "email" + new string(')', depth) + " FROM customers";
            MaskRoute? route = null;
            var thread = new Thread(() => route = SqlMaskRoutes.Check(sql, new SqlStatement("SELECT", StatementClass.Read, StatementFlags.None, ["customers"], [], [], 0, sql.Length), Schema), 256 * 1024);
            thread.Start();
            Assert.True(thread.Join(TimeSpan.FromSeconds(20)));
            Assert.True(route!.Refused);
        }
    }

    [Fact]
    public void Without_masked_columns_nothing_is_read()
    {
        var empty = new MaskedSchema([], [], [], []);
        Assert.Same(MaskRoute.Untouched, SqlMaskRoutes.Check("SELECT row_to_json(c) FROM customers c", SqlClassifier.Analyze("SELECT row_to_json(c) FROM customers c").Statements.Single(), empty));
    }
}
