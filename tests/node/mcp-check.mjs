// The official MCP TypeScript SDK against Airlock's MCP front door (run by tests/EndToEnd.Tests).
// Env: MCP_URL, MCP_TOKEN, MCP_TARGET, MCP_SQL (a statement with $1), MCP_PARAM, MCP_BLOCKED_SQL;
// NODE_EXTRA_CA_CERTS trusts the test CA. Prints one JSON object with what each step returned.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const url = new URL(process.env.MCP_URL);
const out = {};

async function connect(token) {
  const client = new Client({ name: "airlock-ts-check", version: "1.2.3" });
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  await client.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers } }));
  return client;
}

try {
  await connect(null);
  out.anonymous = "connected";
} catch (e) {
  out.anonymous = String(e?.message ?? e);
}

const client = await connect(process.env.MCP_TOKEN);
const tools = await client.listTools();
out.tools = tools.tools.map((t) => ({ name: t.name, hasOutputSchema: !!t.outputSchema }));
const call = async (name, args) => {
  const r = await client.callTool({ name, arguments: args });
  return { isError: !!r.isError, structured: r.structuredContent, text: r.content?.[0]?.text };
};
out.targets = await call("list_targets", {});
out.query = await call("query", { target: process.env.MCP_TARGET, sql: process.env.MCP_SQL, parameters: [Number(process.env.MCP_PARAM)] });
out.blocked = await call("query", { target: process.env.MCP_TARGET, sql: process.env.MCP_BLOCKED_SQL });
out.describe = await call("describe", { target: process.env.MCP_TARGET });
out.explain = await call("explain", { target: process.env.MCP_TARGET, sql: process.env.MCP_BLOCKED_SQL });
await client.close();
console.log(JSON.stringify(out));
