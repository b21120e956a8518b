// A headless authorization server for mcp-auth's end-to-end tests (loopback only).
//
// - client_credentials for `cc-client` / `cc-secret` (client_secret_basic and _post);
// - RFC 8707 resource indicators: a token requested with `resource=R` is an RS256 JWT with
//   `aud` = R (an opaque token with `aud` = R for `cc-opaque-client`); a token requested
//   without `resource` is opaque;
// - `rs-client` / `rs-secret`: the resource server's own credentials, for introspection;
// - discovery, JWKS, dynamic client registration, PKCE, introspection, revocation;
// - authentication context classes `urn:mcp:loa:1` (default) and `urn:mcp:loa:2` (asked for
//   with `acr_values`): access tokens from a user's login carry `acr` and `auth_time`
//   (RFC 9470 step-up tests);
// - RFC 8693 token exchange for `mcp-server` / `mcp-server-secret`: a subject token this
//   server issued for the MCP server (`aud` = IDP_MCP_RESOURCE) becomes a token for the
//   requested `resource`/`audience` with `act: {sub: "mcp-server"}`; any other subject token is
//   refused (`invalid_grant`). Exchanges are counted at GET /test/exchanges;
// - DPoP (RFC 9449): a token request with a `DPoP` proof gets a DPoP-bound token
//   (`token_type: DPoP`, `cnf.jkt` in the JWT and in introspection answers).
// - IDP_OWN_KEY=1: sign with a fresh RSA key of this instance (kid IDP_KID, default
//   `own-<port>`) instead of oidc-provider's development keys, which every instance shares,
//   and print it as "signing-key <base64 of the PKCS#8 PEM>" (so a test can forge a token
//   with one instance's key in another's name).
//
// Usage: IDP_PORT=4000 node server.mjs   (prints "listening <issuer>" when ready)
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';
import ResourceServer from 'oidc-provider/lib/helpers/resource_server.js';
import * as jose from 'jose';

const port = Number(process.env.IDP_PORT || 4000);
const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
let exchanges = 0;
const ISSUER = `http://127.0.0.1:${port}`;
const SCOPES = ['data:read', 'data:write', 'data:admin'];

const ownKey = {};
if (process.env.IDP_OWN_KEY) {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = process.env.IDP_KID || `own-${port}`;
  ownKey.jwks = { keys: [{ ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' }] };
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' });
  console.log(`signing-key ${Buffer.from(pem).toString('base64')}`);
}

const provider = new Provider(ISSUER, {
  ...ownKey,
  clients: [
    {
      client_id: 'cc-client',
      client_secret: 'cc-secret',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    {
      client_id: 'cc-opaque-client',
      client_secret: 'cc-opaque-secret',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    {
      client_id: 'rs-client',
      client_secret: 'rs-secret',
      grant_types: [],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    {
      client_id: 'mcp-server',
      client_secret: 'mcp-server-secret',
      grant_types: ['urn:ietf:params:oauth:grant-type:token-exchange'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    {
      client_id: 'cc-post-client',
      client_secret: 'cc-post-secret',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_post',
    },
  ],
  scopes: ['openid', 'offline_access', ...SCOPES],
  acrValues: ['urn:mcp:loa:1', 'urn:mcp:loa:2'],
  // The login behind a user's access token: how (acr) and when (auth_time) the user
  // authenticated, for resource servers that ask for step-up (RFC 9470).
  extraTokenClaims: async (ctx, token) => {
    // A token made by exchange names the MCP server that asked for it as the actor.
    if (ctx?.oidc?.params?.grant_type === EXCHANGE) return { act: { sub: ctx.oidc.client.clientId } };
    if (token.kind !== 'AccessToken') return undefined;
    const login = ctx.oidc.entities.AuthorizationCode || ctx.oidc.entities.RefreshToken;
    if (!login) return undefined;
    return { acr: login.acr, auth_time: login.authTime };
  },
  findAccount: async (_ctx, id) => ({ accountId: id, claims: async () => ({ sub: id }) }),
  features: {
    devInteractions: { enabled: false },
    registration: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    clientCredentials: { enabled: true },
    dPoP: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => undefined,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, resource, client) => ({
        scope: SCOPES.join(' '),
        audience: resource,
        accessTokenTTL: 300,
        accessTokenFormat: client.clientId === 'cc-opaque-client' ? 'opaque' : 'jwt',
        ...(client.clientId === 'cc-opaque-client' ? {} : { jwt: { sign: { alg: 'RS256' } } }),
      }),
    },
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
});

// A registration's `scope` would pin a dynamically registered client to the scopes of its
// first request; MCP clients step up to more scopes later (403 insufficient_scope), so the
// test server lets registered clients ask for any of the resource scopes.
// Browser-based MCP clients (the MCP Inspector's web client) register from their own origin;
// oidc-provider's registration endpoint answers no CORS, so the test server does (discovery,
// token and revocation have oidc-provider's own).
provider.use(async (ctx, next) => {
  if (ctx.path !== '/reg' || !ctx.get('Origin')) return next();
  ctx.vary('Origin');
  ctx.set('Access-Control-Allow-Origin', ctx.get('Origin'));
  if (ctx.method === 'OPTIONS') {
    ctx.set('Access-Control-Allow-Methods', 'POST');
    ctx.set('Access-Control-Allow-Headers', ctx.get('Access-Control-Request-Headers') || 'content-type');
    ctx.status = 204;
    return undefined;
  }
  return next();
});
provider.use(async (ctx, next) => {
  if (ctx.method === 'POST' && ctx.path === '/reg' && ctx.is('application/json')) {
    const chunks = [];
    for await (const chunk of ctx.req) chunks.push(chunk);
    const body = JSON.parse(Buffer.concat(chunks).toString() || '{}');
    delete body.scope;
    ctx.request.body = body;
  }
  return next();
});


// RFC 8693 token exchange: the MCP server trades its caller's token (issued for the MCP
// server) for a token for an upstream API, on behalf of the same subject.
provider.registerGrantType(EXCHANGE, async (ctx) => {
  const { client, params } = ctx.oidc;
  exchanges += 1;
  const refuse = (error, description) => {
    ctx.status = 400;
    ctx.body = { error, error_description: description };
  };
  if (client.clientId !== 'mcp-server') return refuse('unauthorized_client', 'not an MCP server');
  if (params.subject_token_type !== ACCESS_TOKEN_TYPE) return refuse('invalid_request', 'subject_token_type');
  const target = params.resource || params.audience;
  if (!target) return refuse('invalid_target', 'resource or audience required');
  let subject;
  try {
    const jwks = jose.createLocalJWKSet(await (await fetch(`${ISSUER}/jwks`)).json());
    ({ payload: subject } = await jose.jwtVerify(params.subject_token, jwks, {
      issuer: ISSUER,
      audience: process.env.IDP_MCP_RESOURCE,
    }));
  } catch {
    return refuse('invalid_grant', 'the subject token was not issued for this MCP server');
  }
  // An access token for the caller (`sub` = the subject token's), asked for by the MCP server.
  const token = new provider.AccessToken({
    accountId: subject.sub,
    client,
    gty: 'token_exchange',
    scope: params.scope || undefined,
  });
  token.resourceServer = new ResourceServer(target, {
    audience: target,
    scope: SCOPES.join(' '),
    accessTokenTTL: 300,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: 'RS256' } },
  });
  const value = await token.save();
  ctx.body = {
    access_token: value,
    issued_token_type: ACCESS_TOKEN_TYPE,
    token_type: 'Bearer',
    expires_in: token.expiration,
    scope: token.scope,
  };
  return undefined;
}, ['subject_token', 'subject_token_type', 'actor_token', 'actor_token_type', 'audience', 'resource', 'scope', 'requested_token_type']);
provider.use(async (ctx, next) => {
  if (ctx.path !== '/test/exchanges') return next();
  ctx.body = { exchanges };
  return undefined;
});

// Headless login ("alice") and consent, for authorization-code flows.
provider.use(async (ctx, next) => {
  if (!/^\/interaction\/[^/]+$/.test(ctx.path)) return next();
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  if (details.prompt.name === 'login') {
    // A stronger login when the client asks for it (`acr_values`).
    const asked = String(details.params.acr_values || '').split(' ');
    const acr = asked.includes('urn:mcp:loa:2') ? 'urn:mcp:loa:2' : 'urn:mcp:loa:1';
    return provider.interactionFinished(ctx.req, ctx.res, { login: { accountId: 'alice', acr, amr: ['pwd'] } }, { mergeWithLastSubmission: false });
  }
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
  const missing = details.prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  for (const [resource, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(resource, scopes.join(' '));
  }
  const grantId = await grant.save();
  return provider.interactionFinished(ctx.req, ctx.res, { consent: { grantId } }, { mergeWithLastSubmission: true });
});

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`listening ${ISSUER}`);
});
// Node closes idle keep-alive connections after 5 s; an SDK client that reuses a pooled
// connection just as Node closes it sees "server disconnected without a response" (seen on a
// loaded CI machine, where the steps of one OAuth flow can sit more than 5 s apart). Keep idle
// connections longer than any flow takes.
server.keepAliveTimeout = 120_000;
server.headersTimeout = 121_000;
