// The official MCP TypeScript SDK client against the example server (driven by
// tests/e2e_ts.rs). Loopback only. Prints one JSON line describing what happened; never a
// token.
//
//   node client.mjs api-key <mcp-url> <api-key>          403 challenge with a static API key
//   node client.mjs auth-code <mcp-url>                  full OAuth flow from a cold start
//   node client.mjs step-up <mcp-url>                    auth-code, then 403 → re-authorize
//   node client.mjs client-credentials <mcp-url> <id> <secret>
//   node client.mjs call-upstream <mcp-url>              auth-code, then the call_upstream tool
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';

const [mode, url, ...rest] = process.argv.slice(2);
const REDIRECT = 'http://127.0.0.1:1/callback';

// Every HTTP exchange the SDK makes: method, path, status, the challenge and, for the
// authorization request, its `resource` and `scope` parameters.
const observed = [];
const recordingFetch = async (input, init) => {
  const res = await fetch(input, init);
  const u = new URL(typeof input === 'string' ? input : input.url ?? String(input));
  observed.push({
    method: (init?.method ?? 'GET').toUpperCase(),
    path: u.pathname,
    status: res.status,
    challenge: res.headers.get('www-authenticate') ?? undefined,
  });
  return res;
};

// A headless browser: follows the authorization server's redirects, keeping cookies, until
// it is sent to the redirect URI; returns the authorization code.
async function browse(authorizationUrl) {
  const cookies = new Map();
  let next = new URL(authorizationUrl);
  observed.push({
    method: 'GET',
    path: next.pathname,
    status: 0,
    resource: next.searchParams.get('resource'),
    scope: next.searchParams.get('scope'),
    codeChallengeMethod: next.searchParams.get('code_challenge_method'),
  });
  for (let hop = 0; hop < 10; hop++) {
    const res = await fetch(next, {
      redirect: 'manual',
      headers: { cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; ') },
    });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair.indexOf('=');
      cookies.set(pair.slice(0, i), pair.slice(i + 1));
    }
    const location = res.headers.get('location');
    if (!location) throw new Error(`no redirect from ${next.pathname}: ${res.status}`);
    next = new URL(location, next);
    if (next.href.startsWith(REDIRECT)) {
      const code = next.searchParams.get('code');
      if (!code) throw new Error(`authorization failed: ${next.searchParams.get('error')} ${next.searchParams.get('error_description')}`);
      return code;
    }
  }
  throw new Error('too many redirects');
}

class HeadlessProvider {
  constructor() {
    this.pendingCode = undefined;
    this.authorizations = 0;
  }
  get redirectUrl() { return REDIRECT; }
  get clientMetadata() {
    return {
      client_name: 'mcp-auth e2e (TypeScript SDK)',
      redirect_uris: [REDIRECT],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      application_type: 'native',
    };
  }
  clientInformation() { return this._client; }
  saveClientInformation(info) { this._client = info; }
  tokens() { return this._tokens; }
  saveTokens(tokens) { this._tokens = tokens; }
  saveCodeVerifier(v) { this._verifier = v; }
  codeVerifier() { return this._verifier; }
  async redirectToAuthorization(authorizationUrl) {
    this.authorizations += 1;
    this.pendingCode = await browse(authorizationUrl);
  }
}

async function whoami(client) {
  const r = await client.callTool({ name: 'whoami', arguments: {} });
  return JSON.parse(r.content[0].text);
}

function errorInfo(e) {
  return { name: e?.constructor?.name, code: e?.code, message: String(e?.message ?? e) };
}

async function connectWithOAuth(provider) {
  let transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider, fetch: recordingFetch });
  let client = new Client({ name: 'mcp-auth-e2e', version: '1.0.0' });
  try {
    await client.connect(transport);
  } catch (e) {
    if (!(e instanceof UnauthorizedError) || !provider.pendingCode) throw e;
    await transport.finishAuth(provider.pendingCode);
    provider.pendingCode = undefined;
    transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider, fetch: recordingFetch });
    client = new Client({ name: 'mcp-auth-e2e', version: '1.0.0' });
    await client.connect(transport);
  }
  return { client, transport };
}

async function main() {
  const out = { mode };
  if (mode === 'api-key') {
    const [key] = rest;
    const transport = new StreamableHTTPClientTransport(new URL(url), {
      requestInit: { headers: { 'x-api-key': key } },
      fetch: recordingFetch,
    });
    const client = new Client({ name: 'mcp-auth-e2e', version: '1.0.0' });
    await client.connect(transport);
    out.tools = (await client.listTools()).tools.map((t) => t.name).sort();
    const read = await client.callTool({ name: 'read_data', arguments: { key: 'k' } });
    out.read = { ok: true, isError: read.isError ?? false };
    try {
      await client.callTool({ name: 'write_data', arguments: { key: 'k', value: 'v' } });
      out.write = { ok: true };
    } catch (e) {
      out.write = { ok: false, ...errorInfo(e) };
    }
    await client.close();
  } else if (mode === 'auth-code' || mode === 'step-up') {
    const provider = new HeadlessProvider();
    const { client, transport } = await connectWithOAuth(provider);
    out.whoami = await whoami(client);
    if (mode === 'step-up') {
      try {
        await client.callTool({ name: 'write_data', arguments: { key: 'k', value: 'v' } });
        out.firstWrite = { ok: true };
      } catch (e) {
        out.firstWrite = { ok: false, ...errorInfo(e) };
        if (!(e instanceof UnauthorizedError) || !provider.pendingCode) throw e;
        // The SDK re-authorized with the challenged scope; finish it and retry.
        await transport.finishAuth(provider.pendingCode);
        provider.pendingCode = undefined;
      }
      const w = await client.callTool({ name: 'write_data', arguments: { key: 'k', value: 'v' } });
      out.retry = { ok: true, text: w.content[0].text };
      out.whoamiAfter = await whoami(client);
    }
    out.authorizations = provider.authorizations;
    await client.close();
  } else if (mode === 'call-upstream') {
    const provider = new HeadlessProvider();
    const { client } = await connectWithOAuth(provider);
    out.whoami = await whoami(client);
    out.tools = (await client.listTools()).tools.map((t) => t.name).sort();
    const r = await client.callTool({ name: 'call_upstream', arguments: {} });
    out.upstream = { isError: r.isError ?? false, text: r.content[0].text };
    await client.close();
  } else if (mode === 'client-credentials') {
    const [clientId, clientSecret] = rest;
    const provider = new ClientCredentialsProvider({ clientId, clientSecret, scope: 'data:read data:write' });
    const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider, fetch: recordingFetch });
    const client = new Client({ name: 'mcp-auth-e2e', version: '1.0.0' });
    await client.connect(transport);
    out.whoami = await whoami(client);
    await client.close();
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
  out.observed = observed;
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.log(JSON.stringify({ mode, fatal: errorInfo(e), observed }));
  process.exit(1);
});
