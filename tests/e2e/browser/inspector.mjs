// MCP Inspector (its web client, from npm) in headless Chromium (Debian's /usr/bin/chromium,
// driven through playwright-core), connecting "direct" (browser -> MCP server, no Inspector
// proxy) over the streamable HTTP transport. Server-agnostic: a URL in, JSON results out.
// Loopback only.
//
// Usage: node inspector.mjs '<spec as JSON>'
//
//   { "url": "http://127.0.0.1:PORT/mcp",        the MCP endpoint
//     "mode": "bearer" | "oauth" | "probe",
//     "token": "...",                             bearer: typed into the Inspector's
//                                                 Authorization header
//     "issuer": "http://127.0.0.1:PORT",          oauth: the authorization server (its requests
//                                                 are reported too)
//     "tool": "whoami",                           bearer/oauth: the tool to call (default whoami)
//     "probes": [ { "name": "...", "method": "POST", "headers": {...}, "body": "..." } ],
//                                                 probe: fetch()es from the Inspector's page
//     "screenshots": "/dir",                      optional: a PNG after each step
//     "timeoutMs": 60000 }                        the whole run, bounded
//
// bearer: the Inspector connects with the token, lists tools and calls the tool.
// oauth: the Inspector connects with no credentials, takes the 401 through discovery, dynamic
//   registration and the authorization server's pages (the browser follows every redirect
//   and fills a login or consent form if one is shown), comes back to its /oauth/callback,
//   exchanges the code, connects, lists tools and calls the tool.
// probe: each probe is a fetch() from the Inspector's page (origin http://localhost:PORT,
//   cross-origin to the server): what a script may read of the answer.
//
// Every mode also reports what the browser itself sent to and got from the server's and the
// authorization server's origins (from the DevTools protocol, CORS preflights included).
//
// Prints one JSON line last:
//   ok, mode, pageOrigin, steps, error;
//   connected; tools (the names the server's tools/list answer held) and toolsShown (those
//   the page shows); resultStatus and resultText (the tool result as the page shows it,
//   whitespace collapsed) and result (the tools/call result the server sent); rpc (the MCP
//   server's JSON-RPC answers); toasts (after the OAuth callback);
//   probes: { name, status, wwwAuthenticate, retryAfter, sessionId, contentType, body }, as
//   the page's script could read them (null = not readable), or { name, error };
//   observed / preflights / navigations: { method, origin, path, type, status, headers
//   (names sent), allowOrigin, rpc, failed, corsError }, navigations with their parameter
//   names and the OAuth ones that are not secret (resource, scope, redirect_uri, ...).
// Exits 0 when ok, 1 otherwise. Never prints a credential: request headers are reported by
// name only, and known tokens and codes are redacted from error messages.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const spec = JSON.parse(process.argv[2] ?? '{}');
const url = new URL(spec.url);
const mode = spec.mode;
const tool = spec.tool ?? 'whoami';
const timeoutMs = spec.timeoutMs ?? 60_000;
// One step (a click, a wait for the page) never waits longer than this.
const STEP_MS = Math.min(20_000, timeoutMs);

const out = {
  ok: false,
  mode,
  pageOrigin: null,
  connected: false,
  tools: [],
  toolsShown: [],
  resultStatus: null,
  resultText: null,
  result: null,
  probes: [],
  observed: [],
  rpc: [],
  preflights: [],
  navigations: [],
  steps: [],
  error: null,
};

let client; // the Inspector's web client server
let context; // the browser
let userDataDir;
let printed = false;

/// `s` without the credentials this run knows of, nor authorization codes or tokens in URLs
/// (Playwright's errors quote the values typed and the URLs visited).
function redact(s) {
  if (typeof s !== 'string') return s;
  let r = s;
  const secrets = [spec.token, ...(spec.probes ?? []).flatMap((p) => Object.values(p.headers ?? {}))]
    .filter((v) => typeof v === 'string' && v.length >= 8)
    .flatMap((v) => [v, v.replace(/^Bearer\s+/i, '')]);
  for (const v of secrets) r = r.split(v).join('[redacted]');
  return r.replace(/\b(code|access_token|refresh_token|id_token)=[^&\s"']+/g, '$1=[redacted]');
}

function finish(code) {
  if (!printed) {
    out.error = redact(out.error);
    printed = true;
    process.stdout.write(`${JSON.stringify(out)}\n`);
  }
  cleanup();
  process.exit(code);
}

function cleanup() {
  if (client && client.exitCode === null) client.kill('SIGKILL');
  if (userDataDir) {
    try {
      rmSync(userDataDir, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
}

process.on('exit', cleanup);
/// Ends the run with `error`: closes the browser first (so Chromium is reaped here, not left
/// to init), for at most 3 s.
async function abort(error) {
  out.error ??= error;
  const closing = context?.close().catch(() => {});
  await Promise.race([closing, new Promise((r) => setTimeout(r, 3_000))]);
  finish(1);
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => abort(`stopped by ${sig}`));
}
// The whole run is bounded.
const watchdog = setTimeout(() => {
  abort(`timed out after ${timeoutMs} ms (last step: ${out.steps.at(-1) ?? 'none'})`);
}, timeoutMs);
watchdog.unref();

/// A free loopback port (free when this returns).
function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/// The Inspector's own web client server (a static server for its built page), on
/// http://localhost:<port>; resolves when it is listening.
async function startInspector(port) {
  const bin = join(here, 'node_modules/@modelcontextprotocol/inspector-client/bin/client.js');
  client = spawn(process.execPath, [bin], {
    cwd: here,
    env: {
      ...process.env,
      CLIENT_PORT: String(port),
      HOST: 'localhost',
      MCP_AUTO_OPEN_ENABLED: 'false',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the Inspector did not start: ${log}`)), STEP_MS);
    const onData = (d) => {
      log += d;
      if (log.includes('running at')) {
        clearTimeout(timer);
        resolve();
      }
    };
    client.stdout.on('data', onData);
    client.stderr.on('data', onData);
    client.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the Inspector exited (${code}): ${log}`));
    });
  });
}

let shot = 0;
async function step(page, name) {
  out.steps.push(name);
  if (spec.screenshots) {
    shot += 1;
    mkdirSync(spec.screenshots, { recursive: true });
    await page
      .screenshot({ path: join(spec.screenshots, `${mode}-${String(shot).padStart(2, '0')}-${name}.png`), fullPage: true, timeout: 5_000 })
      .catch(() => {});
  }
}

/// Records, through the DevTools protocol, every request the page makes to `origins`:
/// method, path, status, CORS preflights (with whether they carried credentials) and
/// top-level navigations.
async function observe(context, page, origins, pageOrigin) {
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  const byId = new Map();
  const watched = (u) => {
    try {
      return origins.has(new URL(u).origin);
    } catch {
      return false;
    }
  };
  cdp.on('Network.requestWillBeSent', (e) => {
    if (!watched(e.request.url)) return;
    const u = new URL(e.request.url);
    if (u.origin === pageOrigin && e.type !== 'Document') return;
    const rec = {
      method: e.request.method,
      origin: u.origin,
      path: u.pathname,
      type: e.type ?? null,
      status: null,
      headers: Object.keys(e.request.headers ?? {}).map((h) => h.toLowerCase()).sort(),
    };
    // A redirect reuses the request id: the previous hop ends with the redirect's status.
    // The JSON-RPC method of a request to the MCP endpoint (no credentials are in MCP bodies).
    if (u.origin === url.origin && u.pathname === url.pathname && e.request.postData) {
      rec.rpc = rpcMethods(e.request.postData);
    }
    const prev = byId.get(e.requestId);
    if (prev && e.redirectResponse) prev.status = e.redirectResponse.status;
    byId.set(e.requestId, rec);
    if (rec.type === 'Document') {
      // Which parameters a navigation carried (names), and the OAuth ones that are not
      // secret: where the authorization request points and what it asks for.
      rec.params = [...u.searchParams.keys()].sort();
      for (const k of ['resource', 'scope', 'code_challenge_method', 'response_type', 'redirect_uri', 'error']) {
        if (u.searchParams.has(k)) rec[k] = u.searchParams.get(k);
      }
      out.navigations.push(rec);
    }
    else if (rec.type === 'Preflight' || rec.method === 'OPTIONS') out.preflights.push(rec);
    else out.observed.push(rec);
  });
  cdp.on('Network.requestWillBeSentExtraInfo', (e) => {
    const rec = byId.get(e.requestId);
    if (!rec) return;
    // The headers actually sent (cookies and credentials included), by name only.
    const names = Object.keys(e.headers ?? {}).map((h) => h.toLowerCase());
    rec.headers = [...new Set([...rec.headers, ...names])].sort();
  });
  cdp.on('Network.responseReceived', (e) => {
    const rec = byId.get(e.requestId);
    if (!rec) return;
    rec.status = e.response.status;
    const h = Object.fromEntries(Object.entries(e.response.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
    rec.allowOrigin = h['access-control-allow-origin'] ?? null;
    if (rec.type === 'Preflight' || rec.method === 'OPTIONS') {
      rec.allowHeaders = h['access-control-allow-headers'] ?? null;
      rec.allowMethods = h['access-control-allow-methods'] ?? null;
    }
  });
  cdp.on('Network.loadingFinished', (e) => {
    const rec = byId.get(e.requestId);
    if (!rec || !rec.rpc || rec.status !== 200) return;
    // The MCP server's answer (JSON or an event stream), for the JSON-RPC results.
    pending.push(
      cdp
        .send('Network.getResponseBody', { requestId: e.requestId })
        .then((b) => {
          for (const m of rpcMessages(b.body)) if ('result' in m || 'error' in m) out.rpc.push({ method: rec.rpc[0] ?? null, ...m });
        })
        .catch(() => {}),
    );
  });
  cdp.on('Network.loadingFailed', (e) => {
    const rec = byId.get(e.requestId);
    if (!rec) return;
    rec.failed = e.errorText;
    if (e.corsErrorStatus) rec.corsError = e.corsErrorStatus.corsError;
  });
}

const pending = [];

/// The JSON-RPC methods in a request body (one message or a batch).
function rpcMethods(body) {
  try {
    const v = JSON.parse(body);
    return (Array.isArray(v) ? v : [v]).map((m) => m.method ?? null);
  } catch {
    return [];
  }
}

/// The JSON-RPC messages in a response body: JSON, or the `data:` lines of an event stream.
function rpcMessages(body) {
  const parse = (t) => {
    try {
      const v = JSON.parse(t);
      return Array.isArray(v) ? v : [v];
    } catch {
      return [];
    }
  };
  const whole = parse(body);
  if (whole.length) return whole;
  return body
    .split('\n')
    .filter((l) => l.startsWith('data:'))
    .flatMap((l) => parse(l.slice(5).trim()));
}

/// Picks "Streamable HTTP" and "Direct" in the sidebar (the URL comes in the page's query).
async function configureDirect(page) {
  await page.locator('#transport-type-select').waitFor({ timeout: STEP_MS });
  if (!(await page.locator('#transport-type-select').innerText()).includes('Streamable HTTP')) {
    await page.locator('#transport-type-select').click();
    await page.getByRole('option', { name: 'Streamable HTTP' }).click();
  }
  const urlInput = page.locator('#sse-url-input');
  if ((await urlInput.inputValue()) !== url.href) await urlInput.fill(url.href);
  await page.locator('#connection-type-select').click();
  await page.getByRole('option', { name: 'Direct' }).click();
  await page.locator('#connection-type-select').getByText('Direct').waitFor({ timeout: STEP_MS });
}

/// Types `Bearer <token>` into the Inspector's Authorization header and turns it on.
async function enterBearer(page, token) {
  await page.getByTestId('auth-button').click();
  const name = page.getByTestId('header-name-input-0');
  await name.waitFor({ timeout: STEP_MS });
  if ((await name.inputValue()) !== 'Authorization') await name.fill('Authorization');
  await page.getByTestId('header-value-input-0').fill(`Bearer ${token}`);
  const toggle = page.getByRole('switch').first();
  if ((await toggle.getAttribute('aria-checked')) !== 'true') await toggle.click();
}

async function waitConnected(page) {
  await page.getByText('Connected', { exact: true }).waitFor({ timeout: STEP_MS });
  out.connected = true;
}

/// Lists the tools, calls `tool` with no arguments, and reads the result as the page shows it.
async function listAndCall(page) {
  await page.getByRole('tab', { name: 'Tools' }).click();
  await page.getByRole('button', { name: 'List Tools' }).click();
  await page.getByText(tool, { exact: true }).first().waitFor({ timeout: STEP_MS });
  await step(page, 'tools-listed');
  // The names the server listed (from its answer) that the page shows.
  await Promise.all(pending);
  const listed = out.rpc.filter((m) => m.method === 'tools/list').at(-1)?.result?.tools ?? [];
  out.tools = listed.map((t) => t.name);
  out.toolsShown = [];
  for (const name of out.tools) {
    if (await page.getByText(name, { exact: true }).first().isVisible()) out.toolsShown.push(name);
  }
  await page.getByText(tool, { exact: true }).first().click();
  await page.getByRole('button', { name: 'Run Tool' }).click();
  const heading = page.getByText('Tool Result:', { exact: false }).first();
  await heading.waitFor({ timeout: STEP_MS });
  await step(page, 'tool-called');
  // The result as the page shows it (whitespace collapsed), and whether it says Success.
  const shown = await heading.evaluate((h) => {
    const parts = [];
    for (let e = h.nextElementSibling; e; e = e.nextElementSibling) parts.push(e.innerText);
    return { status: h.innerText, text: parts.join('\n') };
  });
  out.resultStatus = shown.status.replace(/\s+/g, ' ').trim();
  out.resultText = shown.text.replace(/\s+/g, ' ').trim();
  // The same result as the server sent it.
  await page.waitForTimeout(100);
  await Promise.all(pending);
  const call = out.rpc.filter((m) => m.method === 'tools/call').at(-1);
  out.result = call?.result ?? null;
}

/// Follows the authorization server's pages until the page is back on `origin` at
/// /oauth/callback: redirects happen by themselves; a login or consent form, if one is
/// shown, is filled (user "alice") and submitted.
async function completeAuthorization(page, origin) {
  const deadline = Date.now() + STEP_MS;
  let left = false;
  while (Date.now() < deadline) {
    left ||= out.navigations.some((n) => n.origin !== origin);
    const at = new URL(page.url());
    if (left && at.origin === origin && out.navigations.some((n) => n.origin === origin && n.path === '/oauth/callback')) {
      return;
    }
    if (at.origin === origin) {
      // The Inspector reports a failed discovery, registration or exchange in a toast.
      const toasts = await page.locator('ol li').allInnerTexts().catch(() => []);
      const failed = toasts.find((t) => /fail|error/i.test(t));
      if (failed) {
        const blocked = out.observed.filter((r) => r.corsError).map((r) => `${r.method} ${r.origin}${r.path} (${r.corsError})`);
        throw new Error(`the Inspector says: ${failed.replace(/\s+/g, ' ')}; requests blocked by CORS: ${blocked.join(', ') || 'none'}`);
      }
    }
    if (at.origin !== origin && (at.protocol === 'http:' || at.protocol === 'https:')) {
      const form = page.locator('form').first();
      if ((await form.count().catch(() => 0)) > 0) {
        await step(page, 'authorization-form');
        for (const input of await form.locator('input[type=text], input[type=email], input:not([type])').all()) {
          if (!(await input.inputValue())) await input.fill('alice');
        }
        for (const input of await form.locator('input[type=password]').all()) {
          if (!(await input.inputValue())) await input.fill('alice');
        }
        await form.locator('button[type=submit], input[type=submit], button').first().click();
      }
    }
    await page.waitForTimeout(100);
  }
  throw new Error(`never came back to ${origin}/oauth/callback (at ${page.url()})`);
}

async function runProbes(page) {
  for (const p of spec.probes ?? []) {
    const r = await page.evaluate(
      async ({ target, p }) => {
        try {
          const res = await fetch(target, {
            method: p.method ?? 'POST',
            headers: p.headers ?? {},
            body: p.body ?? undefined,
            // No cookies or HTTP auth: the credentials are the headers the probe names.
            credentials: 'omit',
          });
          const text = await res.text();
          return {
            status: res.status,
            wwwAuthenticate: res.headers.get('www-authenticate'),
            retryAfter: res.headers.get('retry-after'),
            sessionId: res.headers.get('mcp-session-id'),
            contentType: res.headers.get('content-type'),
            body: text.slice(0, 2000),
          };
        } catch (e) {
          return { error: String(e) };
        }
      },
      { target: url.href, p },
    );
    out.probes.push({ name: p.name, ...r });
  }
}

async function main() {
  if (!['bearer', 'oauth', 'probe'].includes(mode)) throw new Error(`unknown mode ${mode}`);
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) throw new Error(`not a loopback URL: ${url.href}`);
  const port = await freePort();
  await startInspector(port);
  const pageOrigin = `http://localhost:${port}`;
  out.pageOrigin = pageOrigin;

  userDataDir = mkdtempSync(join(tmpdir(), 'mcp-auth-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    timeout: STEP_MS,
    // This script's own handlers close the browser on these signals.
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  context.setDefaultTimeout(STEP_MS);
  context.setDefaultNavigationTimeout(STEP_MS);
  const page = context.pages()[0] ?? (await context.newPage());
  const origins = new Set([url.origin, pageOrigin]);
  if (spec.issuer) origins.add(new URL(spec.issuer).origin);
  await observe(context, page, origins, pageOrigin);
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') {
      process.stderr.write(`page console ${m.type()}: ${redact(m.text())}\n`);
    }
  });

  // The Inspector asks its own proxy for defaults at load. No proxy runs: its address is
  // set (and kept in the page's storage, so it is the same after the OAuth redirect) to a
  // port browsers refuse to connect to, so that request never leaves the browser.
  const query = new URLSearchParams({
    transport: 'streamable-http',
    serverUrl: url.href,
    MCP_PROXY_FULL_ADDRESS: 'http://127.0.0.1:9',
  });
  await page.goto(`${pageOrigin}/?${query}`);
  await step(page, 'loaded');

  if (mode === 'probe') {
    await runProbes(page);
    out.ok = out.probes.every((p) => !p.error);
    return;
  }

  await configureDirect(page);
  if (mode === 'bearer') {
    await enterBearer(page, spec.token);
  }
  await step(page, 'configured');
  await page.getByRole('button', { name: 'Connect', exact: true }).click();
  if (mode === 'oauth') {
    // The 401 sends the page to the authorization server, and back to /oauth/callback.
    await completeAuthorization(page, pageOrigin);
    await step(page, 'callback');
    await page.waitForTimeout(1500);
    out.toasts = await page.locator('ol li').allInnerTexts().catch(() => []);
  }
  await waitConnected(page);
  await step(page, 'connected');
  await listAndCall(page);
  out.ok = true;
}

main()
  .then(async () => {
    await context?.close().catch(() => {});
    finish(out.ok ? 0 : 1);
  })
  .catch(async (e) => {
    out.error = String(e?.stack ?? e);
    if (context) {
      const page = context.pages()[0];
      if (page) await step(page, 'error');
      await context.close().catch(() => {});
    }
    finish(1);
  });
