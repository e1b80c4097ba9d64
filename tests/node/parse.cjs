// PostgreSQL's own parser (libpg-query, the server's grammar compiled to WASM) as the oracle for the
// gateway's SQL splitter and classifier: reads a JSON array of SQL texts on stdin and prints, per text,
// either {"error": "..."} or {"statements": [{"kind": "SelectStmt", "start": 0, "end": 8}]}: the statement's
// source from just after the previous semicolon up to its own (stmt_location/stmt_len, converted from
// UTF-8 bytes to UTF-16 offsets, as .NET strings count).
const { loadModule, parseSync } = require('libpg-query');

async function main() {
  await loadModule();
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  const texts = JSON.parse(input);
  const results = texts.map((sql) => {
    try {
      const bytes = Buffer.from(sql, 'utf8');
      const tree = parseSync(sql);
      return {
        statements: (tree.stmts || []).map((s) => {
          const start = s.stmt_location || 0;
          const end = s.stmt_len ? start + s.stmt_len : bytes.length;
          const offset = (byte) => bytes.subarray(0, byte).toString('utf8').length;
          return { kind: Object.keys(s.stmt)[0], start: offset(start), end: offset(end) };
        }),
      };
    } catch (e) {
      return { error: String(e.message || e) };
    }
  });
  process.stdout.write(JSON.stringify(results));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
