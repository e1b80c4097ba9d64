// node-postgres through Airlock: a parameterised query and COPY both ways.
// Connection from libpq-style environment variables (PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD, PGSSLMODE).
// Prints one JSON line; the test compares it between a direct and a sidecar connection.
import pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { pipeline } from 'node:stream/promises';
import { Readable, Writable } from 'node:stream';

const client = new pg.Client({
  ssl: process.env.PGSSLMODE === 'require' ? { rejectUnauthorized: false } : false,
});
await client.connect();
const query = await client.query('SELECT $1::int + 1 AS n, $2::text AS t', [41, 'node ✓']);
await client.query('CREATE TEMP TABLE node_copy (id int, name text)');
await pipeline(Readable.from(['1\tone\n', '2\ttwo\n', '3\tthree\n']), client.query(copyFrom('COPY node_copy FROM STDIN')));
let exported = '';
await pipeline(client.query(copyTo('COPY (SELECT * FROM node_copy ORDER BY id) TO STDOUT')),
  new Writable({ write(chunk, _, done) { exported += chunk.toString(); done(); } }));
await client.end();
console.log(JSON.stringify({ rows: query.rows, exported }));
