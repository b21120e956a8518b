// An upstream MCP server for the mcp-auth-proxy tests: the official TypeScript SDK
// (`@modelcontextprotocol/sdk`, installed in ../ts-sdk by `npm ci --prefix tests/e2e/ts-sdk`)
// with StreamableHTTPServerTransport, stateful (one transport and server per session), on
// loopback.
//
//     node server.mjs <port>
//
// Serves MCP at /mcp and, beside it, GET /_requests: every request received so far (method,
// path, headers), so tests can check what the proxy forwarded. Prints `listening <url>` once it
// accepts connections. Tools: whoami (the X-MCP-* identity headers it got, and whether
// Authorization / X-API-Key arrived), read_data / write_data / delete_data (an in-memory map),
// slow_progress (a progress notification every 100 ms, 10 times).

import http from "node:http";
import { randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

// The SDK is installed once, for the client tests, in ../ts-sdk.
const require = createRequire(new URL("../ts-sdk/package.json", import.meta.url));
const load = (spec) => import(pathToFileURL(require.resolve(spec)).href);
const { McpServer } = await load("@modelcontextprotocol/sdk/server/mcp.js");
const { StreamableHTTPServerTransport } = await load("@modelcontextprotocol/sdk/server/streamableHttp.js");
const { isInitializeRequest } = await load("@modelcontextprotocol/sdk/types.js");
const { z } = await load("zod");

const data = new Map();
const requests = [];
const transports = new Map();

function text(value) {
  return { content: [{ type: "text", text: typeof value === "string" ? value : JSON.stringify(value) }] };
}

function makeServer() {
  const server = new McpServer({ name: "upstream-ts", version: "1.0.0" });
  server.registerTool("whoami", { description: "The caller's identity as the proxy forwarded it." }, async (extra) => {
    const headers = extra.requestInfo?.headers ?? {};
    const identity = {};
    for (const [k, v] of Object.entries(headers)) {
      if (k.toLowerCase().startsWith("x-mcp-")) identity[k.toLowerCase()] = v;
    }
    return text({
      identity,
      authorization: headers["authorization"] ?? null,
      x_api_key: headers["x-api-key"] ?? null,
    });
  });
  server.registerTool("read_data", { description: "Reads a value.", inputSchema: { key: z.string() } }, async ({ key }) =>
    text(data.get(key) ?? ""),
  );
  server.registerTool(
    "write_data",
    { description: "Writes a value.", inputSchema: { key: z.string(), value: z.string() } },
    async ({ key, value }) => {
      data.set(key, value);
      return text("ok");
    },
  );
  server.registerTool("delete_data", { description: "Deletes a value.", inputSchema: { key: z.string() } }, async ({ key }) => {
    data.delete(key);
    return text("ok");
  });
  server.registerTool("slow_progress", { description: "Ten progress notifications, 100 ms apart." }, async (extra) => {
    const progressToken = extra._meta?.progressToken;
    for (let i = 1; i <= 10; i++) {
      if (progressToken !== undefined) {
        await extra.sendNotification({ method: "notifications/progress", params: { progressToken, progress: i, total: 10 } });
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return text("done");
  });
  return server;
}

function headerPairs(raw) {
  const out = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i].toLowerCase(), raw[i + 1]]);
  return out;
}

async function readBody(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return Buffer.concat(chunks).toString("utf8");
}

function jsonError(res, status, message) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message }, id: null }));
}

const httpServer = http.createServer(async (req, res) => {
  const url = new URL(req.url, "http://127.0.0.1");
  if (url.pathname === "/_requests") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(requests));
    return;
  }
  requests.push({ method: req.method, path: url.pathname, headers: headerPairs(req.rawHeaders) });
  if (url.pathname !== "/mcp") {
    res.writeHead(404).end();
    return;
  }
  try {
    let body;
    if (req.method === "POST") {
      try {
        body = JSON.parse(await readBody(req));
      } catch {
        jsonError(res, 400, "Parse error");
        return;
      }
    }
    const sid = req.headers["mcp-session-id"];
    let transport = sid ? transports.get(sid) : undefined;
    if (!transport) {
      if (sid) {
        jsonError(res, 404, "Session not found");
        return;
      }
      if (req.method !== "POST" || !isInitializeRequest(body)) {
        jsonError(res, 400, "No session");
        return;
      }
      const created = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => transports.set(id, created),
      });
      created.onclose = () => {
        if (created.sessionId) transports.delete(created.sessionId);
      };
      await makeServer().connect(created);
      transport = created;
    }
    await transport.handleRequest(req, res, body);
  } catch (e) {
    console.error(e);
    if (!res.headersSent) jsonError(res, 500, "Internal error");
  }
});

const port = Number(process.argv[2]);
httpServer.listen(port, "127.0.0.1", () => {
  console.log(`listening http://127.0.0.1:${port}/mcp`);
});
