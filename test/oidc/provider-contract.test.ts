/**
 * The contract with oidc-provider: each assumption src/oidc/overrides/ makes about its
 * internals, asserted directly (mostly against a bare Provider, where Keyward's overrides
 * cannot hide what oidc-provider itself does). When an upgrade breaks one, the failing test
 * names the override to revisit.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import Provider, { type ClientMetadata, type Configuration, type JWKS, type KoaContextWithOIDC } from 'oidc-provider';
import { deviceFormFields, SECRET_PLACEHOLDER } from '../../src/oidc/overrides/index.ts';
import { pinIssuerOrigin } from '../../src/oidc/overrides/issuer-origin.ts';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';
import { auditEvents, basic, postForm } from './service-fixtures.ts';

const API = 'https://api.contract.test';
const OPAQUE_API = 'https://opaque.contract.test';
const SECRET = 'the-stored-secret';

const clients: ClientMetadata[] = [
  { client_id: 'service', client_secret: SECRET, grant_types: ['client_credentials'], response_types: [], redirect_uris: [] },
  { client_id: 'poster', client_secret: SECRET, grant_types: ['client_credentials'], response_types: [], redirect_uris: [], token_endpoint_auth_method: 'client_secret_post' },
  { client_id: 'web', client_secret: SECRET, grant_types: ['authorization_code'], response_types: ['code'], redirect_uris: ['https://app.example/cb'] },
  { client_id: 'scoped', client_secret: SECRET, grant_types: ['client_credentials'], response_types: [], redirect_uris: [], scope: 'openid' },
];

/** oidc-provider's default algorithms are RS256, so one RS256 key satisfies every client. */
let jwks: JWKS;

/** A Provider used only to look clients up (no server). */
function lookupProvider(staticClients: ClientMetadata[]): Provider {
  return new Provider('http://127.0.0.1:1', { clients: staticClients, jwks, features: { devInteractions: { enabled: false } } });
}

/** Per-test observation points of the bare provider (reset by `observe()`). */
interface Probe {
  beforeRoute: unknown[];
  afterRoute: { route: string | undefined; client: string | undefined; params: Record<string, unknown> | undefined; body: unknown }[];
  order: string[];
  allowedPolicy: string[];
  onResourceServerInfo?: (ctx: KoaContextWithOIDC) => void;
}

let probe: Probe;
function observe(): Probe {
  probe = { beforeRoute: [], afterRoute: [], order: [], allowedPolicy: [] };
  return probe;
}

interface Bare {
  provider: Provider;
  url: string;
  close(): Promise<void>;
}

/** A Provider with none of Keyward's overrides, a static client list and an in-memory store. */
async function bareProvider(): Promise<Bare> {
  // Bound first on port 0 (no race for a port), so the issuer can carry the real port.
  let handler: ReturnType<Provider['callback']> | undefined;
  const server: Server = createServer((req, res) => void handler!(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const configuration: Configuration = {
    clients,
    jwks,
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true, allowedPolicy: async (ctx) => { probe.allowedPolicy.push(ctx.oidc.route ?? ''); return true; } },
      revocation: { enabled: true, allowedPolicy: async (ctx) => { probe.allowedPolicy.push(ctx.oidc.route ?? ''); return true; } },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => API,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (ctx, resource) => {
          probe.onResourceServerInfo?.(ctx);
          return { scope: 'api:read api:write', audience: resource, accessTokenFormat: resource === OPAQUE_API ? 'opaque' : 'jwt' };
        },
      },
    },
  };
  const provider = new Provider(url, configuration);
  provider.use(async (ctx, next) => {
    probe.beforeRoute.push((ctx as KoaContextWithOIDC).oidc);
    await next();
    const oidc = (ctx as KoaContextWithOIDC).oidc as KoaContextWithOIDC['oidc'] | undefined;
    probe.order.push('middleware');
    probe.afterRoute.push({ route: oidc?.route, client: oidc?.client?.clientId, params: oidc?.params, body: ctx.body });
  });
  provider.on('grant.error', (ctx: KoaContextWithOIDC) => {
    probe.order.push(`grant.error:${(ctx.body as { error?: string }).error}`);
  });
  handler = provider.callback();
  return { provider, url, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

let bare: Bare;
let db: TestDatabase;
let keyward: TestServer;

before(async () => {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  jwks = { keys: [{ ...(await exportJWK(privateKey)), alg: 'RS256', use: 'sig', kid: 'contract' }] };
  observe();
  bare = await bareProvider();
  db = await createTestDatabase();
  keyward = await startServer(db);
});
after(async () => {
  await bare?.close();
  await keyward?.stop();
  await db?.drop();
});

function token(params: Record<string, string>, headers: Record<string, string> = { authorization: basic('service', SECRET) }): ReturnType<typeof postForm> {
  return postForm(bare.url, '/token', params, headers);
}

async function issueAccessToken(resource = API): Promise<string> {
  const res = await token({ grant_type: 'client_credentials', resource, scope: 'api:read' });
  assert.equal(res.status, 200, res.text);
  return res.json!.access_token as string;
}

test('the installed oidc-provider is the 9.13 minor the overrides were verified against (src/oidc/overrides/index.ts)', async () => {
  const pkg = JSON.parse(await readFile(new URL('../../node_modules/oidc-provider/package.json', import.meta.url), 'utf8')) as { version: string };
  assert.match(pkg.version, /^9\.13\./, 're-verify every assumption in src/oidc/overrides/index.ts, then update this test and the header');
});

// --- client-find.ts ----------------------------------------------------------------------

test('oidc-provider 9.x: Client.find answers the same Client object for unchanged adapter metadata, a new one once it changes (why client-find.ts may keep Clients)', async () => {
  let metadata: ClientMetadata = { client_id: 'dyn', client_secret: SECRET, grant_types: ['client_credentials'], response_types: [], redirect_uris: [] };
  const memory = new Map<string, unknown>();
  const provider = new Provider('http://127.0.0.1:1', {
    jwks,
    features: { devInteractions: { enabled: false }, clientCredentials: { enabled: true } },
    adapter: (name: string) => ({
      find: async (id: string) => (name === 'Client' ? (id === 'dyn' ? { ...metadata } : undefined) : memory.get(`${name}:${id}`)),
      upsert: async (id: string, payload: unknown) => { memory.set(`${name}:${id}`, payload); },
      findByUid: async () => undefined, findByUserCode: async () => undefined, consume: async () => undefined,
      destroy: async () => undefined, revokeByGrantId: async () => undefined,
    }) as never,
  });
  const first = await provider.Client.find('dyn');
  assert.ok(first);
  assert.equal(await provider.Client.find('dyn'), first, 'oidc-provider itself reuses one Client across lookups');
  metadata = { ...metadata, grant_types: ['authorization_code'], response_types: ['code'], redirect_uris: ['https://app.example/cb'] };
  const changed = await provider.Client.find('dyn');
  assert.notEqual(changed, first);
  assert.deepEqual(changed?.grantTypes, ['authorization_code']);
  assert.equal(await provider.Client.find('missing'), undefined);
});

test('oidc-provider 9.x: client authentication at the token endpoint looks the client up through provider.Client.find, awaited (what client-find.ts replaces)', async () => {
  observe();
  const Client = bare.provider.Client;
  const original = Object.getOwnPropertyDescriptor(Client, 'find');
  assert.equal(typeof original?.value, 'function');
  const asked: string[] = [];
  const find = Client.find.bind(Client);
  Client.find = async (id: string) => {
    asked.push(id);
    return find(id);
  };
  try {
    assert.equal((await token({ grant_type: 'client_credentials', resource: API })).status, 200);
    assert.deepEqual(asked, ['service']);
    Client.find = async () => undefined;
    assert.equal((await token({ grant_type: 'client_credentials', resource: API })).status, 401, 'nothing else is consulted: no client found, no token');
  } finally {
    Object.defineProperty(Client, 'find', original!);
  }
});

// --- client-secret.ts --------------------------------------------------------------------

test('oidc-provider 9.x: Client.prototype.compareClientSecret exists and is what client_secret_basic and client_secret_post authentication calls, awaited', async () => {
  observe();
  const { prototype } = bare.provider.Client;
  const original = Object.getOwnPropertyDescriptor(prototype, 'compareClientSecret');
  assert.equal(typeof original?.value, 'function');
  const calls: string[] = [];
  prototype.compareClientSecret = function (this: { clientId: string }, actual: string) {
    calls.push(`${this.clientId}:${actual}`);
    return Promise.resolve(actual === 'from-the-registry');
  };
  try {
    assert.equal((await token({ grant_type: 'client_credentials', resource: API }, { authorization: basic('service', 'from-the-registry') })).status, 200);
    // The stored metadata secret no longer authenticates: only the replacement decides, and its
    // Promise<false> is awaited (an un-awaited Promise would be truthy and let anyone in).
    assert.equal((await token({ grant_type: 'client_credentials', resource: API }, { authorization: basic('service', SECRET) })).status, 401);
    assert.equal((await token({ grant_type: 'client_credentials', resource: API, client_id: 'poster', client_secret: 'from-the-registry' }, {})).status, 200);
    assert.deepEqual(calls, ['service:from-the-registry', `service:${SECRET}`, 'poster:from-the-registry']);
  } finally {
    Object.defineProperty(prototype, 'compareClientSecret', original!);
  }
});

test('oidc-provider 9.x: provider.Client is a class of its own per Provider, so patching its prototype never reaches another instance', async () => {
  const other = lookupProvider(clients);
  assert.notEqual(other.Client, bare.provider.Client);
  assert.notEqual(other.Client.prototype, bare.provider.Client.prototype);
});

test('oidc-provider 9.x: a client_secret_basic client without client_secret metadata is refused (why SECRET_PLACEHOLDER exists)', async () => {
  const provider = lookupProvider([
    { client_id: 'no-secret', grant_types: ['client_credentials'], response_types: [], redirect_uris: [], token_endpoint_auth_method: 'client_secret_basic' },
  ]);
  await assert.rejects(provider.Client.find('no-secret'), (err: Error & { error?: string; error_description?: string }) => {
    assert.equal(err.error, 'invalid_client_metadata');
    assert.match(err.error_description ?? '', /client_secret/);
    return true;
  });
});

test('Keyward discovery offers no HS* algorithm, no client_secret_jwt and no symmetric encryption, so SECRET_PLACEHOLDER is never key material', async () => {
  const res = await fetch(`${keyward.url}/.well-known/openid-configuration`);
  const discovery = (await res.json()) as Record<string, unknown>;
  const algs = Object.entries(discovery)
    .filter(([key]) => key.endsWith('_alg_values_supported') || key.endsWith('_enc_values_supported'))
    .flatMap(([, values]) => values as string[]);
  assert.ok(algs.length > 0);
  for (const alg of algs) {
    assert.ok(!alg.startsWith('HS'), `${alg} would take the placeholder as an HMAC key`);
    assert.ok(!/^(A\d{3}(GCM)?KW|dir|PBES2.*)$/.test(alg), `${alg} would derive an encryption key from the placeholder`);
  }
  const authMethods = Object.entries(discovery)
    .filter(([key]) => key.endsWith('_auth_methods_supported'))
    .flatMap(([, values]) => values as string[]);
  assert.ok(authMethods.includes('client_secret_basic'));
  assert.ok(!authMethods.includes('client_secret_jwt'));
});

test('Keyward: SECRET_PLACEHOLDER itself does not authenticate a confidential client', async () => {
  const { client, client_secret } = await keyward.keyward.clients.create({ client_name: 'contract', grant_types: ['client_credentials'], roles: [] });
  const res = await postForm(keyward.url, '/token', { grant_type: 'client_credentials' }, { authorization: basic(client.client_id, SECRET_PLACEHOLDER) });
  assert.equal(res.status, 401, res.text);
  assert.notEqual(client_secret, SECRET_PLACEHOLDER);
});

// --- unauthorized-client.ts and token-audit.ts ----------------------------------------------

test('oidc-provider 9.x: a grant type the client lacks is refused with 400 invalid_request after client authentication (the body we rewrite)', async () => {
  observe();
  const res = await token({ grant_type: 'client_credentials', resource: API }, { authorization: basic('web', SECRET) });
  assert.equal(res.status, 400, res.text);
  assert.deepEqual(res.json, { error: 'invalid_request', error_description: 'requested grant type is not allowed for this client' });
  const seen = probe.afterRoute.at(-1)!;
  assert.equal(seen.route, 'token');
  assert.equal(seen.client, 'web', 'the client is authenticated when the refusal is rendered');
  assert.equal(seen.params?.grant_type, 'client_credentials');
  const web = await bare.provider.Client.find('web');
  assert.equal(web?.grantTypeAllowed('client_credentials'), false, 'the refusal follows Client#grantTypeAllowed');
  assert.equal((await token({ grant_type: 'client_credentials' }, { authorization: basic('web', 'wrong') })).status, 401, 'authentication comes first');
});

test('oidc-provider 9.x: an unsupported grant type is refused as unsupported_grant_type before the per-client check (never rewritten)', async () => {
  const res = await token({ grant_type: 'urn:example:unknown' }, { authorization: basic('web', SECRET) });
  assert.equal(res.status, 400, res.text);
  assert.equal(res.json?.error, 'unsupported_grant_type');
});

test('oidc-provider 9.x: grant.error fires with the rendered body before a provider.use middleware resumes (why token audit asks tokenErrorAnswered)', async () => {
  observe();
  await token({ grant_type: 'client_credentials', resource: API }, { authorization: basic('web', SECRET) });
  assert.deepEqual(probe.order, ['grant.error:invalid_request', 'middleware']);
});

test('oidc-provider 9.x: ctx.oidc does not exist in a provider.use middleware before the route runs (no pre-route hook for any override)', async () => {
  observe();
  await token({ grant_type: 'client_credentials', resource: API });
  assert.deepEqual(probe.beforeRoute, [undefined]);
  assert.equal(probe.afterRoute.at(-1)?.route, 'token');
});

test('Keyward: the client and the token audit see the same error for a refused grant type (one decision, tokenErrorAnswered)', async () => {
  const { client, client_secret } = await keyward.keyward.clients.create({
    client_name: 'web', grant_types: ['authorization_code'], redirect_uris: ['https://app.example/cb'], token_endpoint_auth_method: 'client_secret_basic', roles: [],
  });
  const auth = { authorization: basic(client.client_id, client_secret!) };
  const refused = await postForm(keyward.url, '/token', { grant_type: 'client_credentials' }, auth);
  const unsupported = await postForm(keyward.url, '/token', { grant_type: 'urn:example:unknown' }, auth);
  assert.equal(refused.json?.error, 'unauthorized_client', refused.text);
  assert.equal(unsupported.json?.error, 'unsupported_grant_type', unsupported.text);
  const audited = (await auditEvents(keyward.keyward, 'token.issued')).filter((e) => e.actor === client.client_id);
  assert.deepEqual(audited.map((e) => e.details.error).sort(), ['unauthorized_client', 'unsupported_grant_type']);
});

// --- client-challenge.ts ---------------------------------------------------------------------

test('oidc-provider 9.x: a 401 carries WWW-Authenticate only when the Authorization header was used (the gap client-challenge fills)', async () => {
  const viaHeader = await token({ grant_type: 'client_credentials' }, { authorization: basic('service', 'wrong') });
  assert.equal(viaHeader.status, 401);
  assert.match(viaHeader.headers.get('www-authenticate') ?? '', /^Basic /);
  const viaBody = await token({ grant_type: 'client_credentials', client_id: 'poster', client_secret: 'wrong' }, {});
  assert.equal(viaBody.status, 401);
  assert.equal(viaBody.headers.get('www-authenticate'), null);
});

// --- jwt-token-refusal.ts ------------------------------------------------------------------------

for (const route of ['introspection', 'revocation'] as const) {
  const path = route === 'introspection' ? '/token/introspection' : '/token/revocation';

  test(`oidc-provider 9.x: ${route} answers 400 unsupported_token_type for a JWT access token, after authenticating the client and without asking allowedPolicy (the answer we replace)`, async () => {
    const jwt = await issueAccessToken();
    observe();
    const res = await postForm(bare.url, path, { token: jwt }, { authorization: basic('service', SECRET) });
    assert.equal(res.status, 400, res.text);
    assert.equal(res.json?.error, 'unsupported_token_type');
    const seen = probe.afterRoute.at(-1)!;
    assert.equal(seen.route, route);
    assert.equal(seen.client, 'service', 'the client is authenticated when the refusal is rendered');
    assert.equal(seen.params?.token, jwt);
    assert.deepEqual(probe.allowedPolicy, [], 'allowedPolicy is never consulted for a JWT: no supported hook');
    const unauthenticated = await postForm(bare.url, path, { token: jwt }, { authorization: basic('service', 'wrong') });
    assert.equal(unauthenticated.status, 401, 'authentication comes first');
  });

  test(`oidc-provider 9.x: ${route} of an opaque token consults allowedPolicy (the supported hook JWTs never reach)`, async () => {
    const opaque = await issueAccessToken(OPAQUE_API);
    observe();
    const res = await postForm(bare.url, path, { token: opaque }, { authorization: basic('service', SECRET) });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(probe.allowedPolicy, [route]);
  });

  test(`oidc-provider 9.x: any JWT-shaped token, even one not signed by the provider, is refused by ${route} as unsupported_token_type`, async () => {
    const { privateKey } = await generateKeyPair('ES256');
    const foreign = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt' }).sign(privateKey);
    const res = await postForm(bare.url, path, { token: foreign }, { authorization: basic('service', SECRET) });
    assert.equal(res.status, 400, res.text);
    assert.equal(res.json?.error, 'unsupported_token_type');
  });
}

// --- requested-scope.ts ------------------------------------------------------------------------

test('oidc-provider 9.x: client_credentials refuses an OIDC scope outside the client\'s scope metadata (what narrowing avoids)', async () => {
  observe();
  const res = await token({ grant_type: 'client_credentials', resource: API, scope: 'offline_access api:read' }, { authorization: basic('scoped', SECRET) });
  assert.equal(res.status, 400, res.text);
  assert.equal(res.json?.error, 'invalid_scope');
});

test('oidc-provider 9.x: client_credentials calls getResourceServerInfo before validateClientScope, and both read ctx.oidc.params.scope', async () => {
  const seen: unknown[] = [];
  observe().onResourceServerInfo = (ctx) => {
    seen.push(ctx.oidc.params?.scope);
    (ctx.oidc.params as { scope?: string }).scope = 'api:read';
  };
  const res = await token({ grant_type: 'client_credentials', resource: API, scope: 'offline_access api:read api:write' }, { authorization: basic('scoped', SECRET) });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(seen, ['offline_access api:read api:write']);
  assert.equal(res.json?.scope, 'api:read', 'the token carries the narrowed scope');
});

// --- clients.ts (ClientAdapter hands over only the provider's own scopes) ----------------------

test('oidc-provider 9.x: client metadata whose scope names a scope the provider does not know is refused (why ClientAdapter splits scope)', async () => {
  const provider = lookupProvider([
    { client_id: 'api-scoped', client_secret: SECRET, grant_types: ['client_credentials'], response_types: [], redirect_uris: [], scope: 'openid api:read' },
  ]);
  await assert.rejects(provider.Client.find('api-scoped'), (err: Error & { error?: string }) => {
    assert.equal(err.error, 'invalid_client_metadata');
    return true;
  });
});

test('oidc-provider 9.x: PushedAuthorizationRequest.find is called only by the request_uri load and by respond, which tolerates nothing found (one-time-request-uri.ts)', async () => {
  const lib = new URL('../../node_modules/oidc-provider/lib/', import.meta.url);
  const { readdir } = await import('node:fs/promises');
  const files = (await readdir(lib, { recursive: true })).filter((f) => f.endsWith('.js'));
  const callers: string[] = [];
  for (const file of files) {
    const text = await readFile(new URL(file, lib), 'utf8');
    if (/PushedAuthorizationRequest\.find\(/.test(text)) callers.push(file);
  }
  assert.deepEqual(callers.sort(), ['actions/authorization/pushed_authorization_requests.js', 'actions/authorization/respond.js']);
  const respond = await readFile(new URL('actions/authorization/respond.js', lib), 'utf8');
  assert.match(respond, /if \(pushedAuthorizationRequest\?\.consumed\)/);
  assert.match(respond, /await pushedAuthorizationRequest\?\.consume\(\)/);
});

test('oidc-provider 9.x: discovery builds endpoint URLs from the request\'s Host, and replacing provider.request\'s getters pins them (issuer-origin.ts)', async () => {
  // node:http, because fetch does not send a chosen Host.
  const discover = (target: Bare): Promise<Record<string, unknown>> => new Promise((resolve, reject) => {
    const { hostname, port } = new URL(target.url);
    const req = httpRequest({ host: hostname, port, path: '/.well-known/openid-configuration', headers: { host: 'attacker.example' }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { body += chunk; });
      res.on('end', () => { try { resolve(JSON.parse(body) as Record<string, unknown>); } catch (e) { reject(e as Error); } });
    });
    req.on('error', reject);
    req.end();
  });
  const unpinned = await discover(bare);
  assert.equal(unpinned.issuer, bare.url);
  assert.match(String(unpinned.token_endpoint), /^http:\/\/attacker\.example\//, 'oidc-provider itself follows Host (the gap issuer-origin fills)');

  const pinned = await bareProvider();
  try {
    pinIssuerOrigin(pinned.provider, pinned.url);
    const doc = await discover(pinned);
    assert.equal(doc.token_endpoint, `${pinned.url}/token`);
    assert.equal(doc.jwks_uri, `${pinned.url}/jwks`);
  } finally {
    await pinned.close();
  }
});

test('oidc-provider 9.x: fetchRequest puts its SSRF-guarded dispatcher in options.dispatcher, then calls the fetch configuration with those options (private-fetch.ts)', async () => {
  const source = await readFile(new URL('../../node_modules/oidc-provider/lib/helpers/fetch_request.js', import.meta.url), 'utf8');
  const body = source.slice(source.indexOf('export default async function fetchRequest'));
  assert.match(body, /options\.dispatcher = dispatcher;/);
  assert.match(body, /return instance\(provider\)\.configuration\.fetch\(url, options\);/);
  assert.ok(body.indexOf('options.dispatcher = dispatcher') < body.indexOf('configuration.fetch(url, options)'));
});

test('oidc-provider 9.x: form_post renders one inline <script> and a <form action>, with no hook; resume sets the Interaction entity before its end-session form_post (html-pages.ts)', async () => {
  const lib = new URL('../../node_modules/oidc-provider/lib/', import.meta.url);
  const formPost = await readFile(new URL('response_modes/form_post.js', lib), 'utf8');
  assert.equal(formPost.match(/<script>/g)?.length, 1);
  assert.match(formPost, /<form method="post" action="\$\{htmlSafe\(action\)\}">/);
  const resume = await readFile(new URL('actions/authorization/resume.js', lib), 'utf8');
  const entity = resume.indexOf("ctx.oidc.entity('Interaction', interactionSession)");
  assert.ok(entity > 0 && entity < resume.indexOf('formPost(ctx'), 'Interaction entity set before the form_post');
});

// --- federated-jwt.ts --------------------------------------------------------------------

/**
 * A bare Provider with one private_key_jwt client (as ClientAdapter presents a federated_jwt
 * client), served through a handler that may consume the body and hand on another one in
 * `req.body`, as Keyward's edge and federated-jwt.ts do.
 */
async function bareAssertionProvider(rewrite?: (body: string) => string): Promise<Bare & { sign(sub: string, iss?: string): Promise<string> }> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'internal', alg: 'ES256', use: 'sig' };
  let handler: ReturnType<Provider['callback']> | undefined;
  const server: Server = createServer((req, res) => {
    if (!rewrite) return void handler!(req, res);
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      (req as typeof req & { body?: Buffer }).body = Buffer.from(rewrite(Buffer.concat(chunks).toString('utf8')));
      void handler!(req, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const provider = new Provider(url, {
    clients: [{
      client_id: 'fed', grant_types: ['client_credentials'], response_types: [], redirect_uris: [],
      token_endpoint_auth_method: 'private_key_jwt', token_endpoint_auth_signing_alg: 'ES256', jwks: { keys: [jwk] },
    }],
    jwks,
    features: { devInteractions: { enabled: false }, clientCredentials: { enabled: true }, introspection: { enabled: true }, revocation: { enabled: true } },
  });
  handler = provider.callback();
  return {
    provider, url,
    close: () => new Promise((resolve) => server.close(() => resolve())),
    sign: (sub, iss = sub) => new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'internal' }).setIssuer(iss).setSubject(sub)
      .setAudience(url).setJti(crypto.randomUUID()).setIssuedAt().setExpirationTime('60s').sign(privateKey),
  };
}

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

test('oidc-provider 9.x: client authentication takes an assertion\'s client id from its sub, so an external token (sub = the workload) cannot be presented as is (federated-jwt.ts)', async () => {
  const bareFed = await bareAssertionProvider();
  try {
    const external = await bareFed.sign('system:serviceaccount:payments:invoicer', 'https://k8s.example');
    const res = await postForm(bareFed.url, '/token', { grant_type: 'client_credentials', client_id: 'fed', client_assertion_type: JWT_BEARER, client_assertion: external });
    assert.equal(res.status, 400, res.text);
    assert.equal(res.json?.error_description, 'client_id mismatch');
    // Without client_id the sub is looked up as a client: unknown.
    const alone = await postForm(bareFed.url, '/token', { grant_type: 'client_credentials', client_assertion_type: JWT_BEARER, client_assertion: external });
    assert.equal(alone.status, 401, alone.text);
  } finally {
    await bareFed.close();
  }
});

test('oidc-provider 9.x: a private_key_jwt client registered with jwks authenticates with an assertion whose aud is the issuer, and with no other key (federated-jwt.ts)', async () => {
  const bareFed = await bareAssertionProvider();
  try {
    const ok = await postForm(bareFed.url, '/token', { grant_type: 'client_credentials', client_id: 'fed', client_assertion_type: JWT_BEARER, client_assertion: await bareFed.sign('fed') });
    assert.equal(ok.status, 200, ok.text);
    const forged = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'internal' }).setIssuer('fed').setSubject('fed').setAudience(bareFed.url)
      .setJti('forged').setIssuedAt().setExpirationTime('60s').sign((await generateKeyPair('ES256')).privateKey);
    const refusedForged = await postForm(bareFed.url, '/token', { grant_type: 'client_credentials', client_id: 'fed', client_assertion_type: JWT_BEARER, client_assertion: forged });
    assert.equal(refusedForged.status, 401, refusedForged.text);
    const noAssertion = await postForm(bareFed.url, '/token', { grant_type: 'client_credentials', client_id: 'fed' });
    assert.equal(noAssertion.status, 401, noAssertion.text);
  } finally {
    await bareFed.close();
  }
});

test('oidc-provider 9.x: the urlencoded parser reads req.body when the request stream was consumed, so a body rewritten before the route is what the route sees (federated-jwt.ts)', async () => {
  let signed = '';
  const bareFed = await bareAssertionProvider((body) => {
    const params = new URLSearchParams(body);
    if (params.get('client_assertion') === 'replace-me') params.set('client_assertion', signed);
    return params.toString();
  });
  try {
    signed = await bareFed.sign('fed');
    const res = await postForm(bareFed.url, '/token', { grant_type: 'client_credentials', client_id: 'fed', client_assertion_type: JWT_BEARER, client_assertion: 'replace-me' });
    assert.equal(res.status, 200, res.text);
  } finally {
    await bareFed.close();
  }
});

test('oidc-provider 9.x: Provider#pathFor names the client-authenticating routes and throws for a route not enabled (federated-jwt.ts)', () => {
  assert.equal(bare.provider.pathFor('token'), '/token');
  assert.equal(bare.provider.pathFor('introspection'), '/token/introspection');
  assert.equal(bare.provider.pathFor('revocation'), '/token/revocation');
  assert.equal(bare.provider.pathFor('pushed_authorization_request'), '/request');
  assert.throws(() => bare.provider.pathFor('backchannel_authentication'));
});

test('oidc-provider 9.x: ReplayDetection.unique looks its id up as sha256(iss + jti) base64url, find then upsert (internalAssertionReplay, federated-jwt.ts)', async () => {
  const calls: string[] = [];
  class Recording {
    async find(id: string) { calls.push(`find:${id}`); return undefined; }
    async upsert(id: string) { calls.push(`upsert:${id}`); }
    async destroy() {}
    async consume() {}
    async findByUid() { return undefined; }
    async findByUserCode() { return undefined; }
    async revokeByGrantId() {}
  }
  const provider = new Provider('http://127.0.0.1:1', { jwks, adapter: Recording, features: { devInteractions: { enabled: false } } });
  const ReplayDetection = (provider as unknown as { ReplayDetection: { unique(iss: string, jti: string, exp: number): Promise<boolean> } }).ReplayDetection;
  assert.equal(await ReplayDetection.unique('client-1', 'jti-1', Math.floor(Date.now() / 1000) + 60), true);
  const id = createHash('sha256').update('client-1jti-1').digest('base64url');
  assert.deepEqual(calls, [`find:${id}`, `upsert:${id}`]);
});

test('oidc-provider 9.x: ReplayDetection.unique(iss, jti, exp) is true once and false after, per iss, through the store adapter (admin/binding.ts)', async () => {
  const exp = Math.floor(Date.now() / 1000) + 300;
  for (const provider of [bare.provider, keyward.keyward.provider.current]) {
    assert.equal(await provider.ReplayDetection.unique('keyward-admin:a', 'contract-jti', exp), true);
    assert.equal(await provider.ReplayDetection.unique('keyward-admin:a', 'contract-jti', exp), false);
    assert.equal(await provider.ReplayDetection.unique('keyward-admin:b', 'contract-jti', exp), true);
  }
  // Keyward's instance keeps them in the store, where every other instance sees them.
  assert.ok(await keyward.keyward.store.prisma.oidcArtifact.count({ where: { model: 'ReplayDetection' } }) >= 2);
});
// --- device-forms.ts and device-polling.ts ------------------------------------------------------

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

/** A bare Provider with the device flow on, recording what its user-code input source is handed. */
async function bareDeviceProvider(seen: { form: string; error: string | undefined }[], around?: Parameters<Provider['use']>[0]): Promise<Bare> {
  let handler: ReturnType<Provider['callback']> | undefined;
  const server: Server = createServer((req, res) => void handler!(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const provider = new Provider(url, {
    clients: [
      { client_id: 'tv', grant_types: [DEVICE_GRANT], response_types: [], redirect_uris: [], token_endpoint_auth_method: 'none' },
      { client_id: 'web', grant_types: ['authorization_code'], response_types: ['code'], redirect_uris: ['https://web.example/cb'], token_endpoint_auth_method: 'none' },
    ],
    jwks,
    features: {
      devInteractions: { enabled: false },
      deviceFlow: {
        enabled: true,
        userCodeInputSource(ctx, form, _out, err) {
          seen.push({ form, error: err?.name });
          ctx.body = form;
        },
      },
    },
  });
  if (around) provider.use(around);
  handler = provider.callback();
  return { provider, url, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

test('oidc-provider 9.x: the user-code form carries its action and xsrf as attributes, and a re-post of them is accepted (device-forms.ts)', async () => {
  const seen: { form: string; error: string | undefined }[] = [];
  const device = await bareDeviceProvider(seen);
  try {
    const page = await fetch(`${device.url}/device`);
    const cookies = page.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    const fields = deviceFormFields(seen[0]!.form);
    assert.ok(fields, seen[0]!.form);
    assert.equal(fields.action, `${device.url}/device`);
    assert.ok(fields.xsrf.length > 10);
    // The values re-posted from Keyward's own form reach the code lookup (an unknown code),
    // whose error names the page relies on.
    const res = await fetch(fields.action, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: cookies },
      body: new URLSearchParams({ xsrf: fields.xsrf, user_code: 'BBBB-BBBB' }),
    });
    assert.equal(res.status, 200, JSON.stringify({ cookies, seen: seen.at(-1) }));
    assert.equal(seen.at(-1)?.error, 'NotFoundError');
    // The re-rendered form holds the xsrf value to post next.
    const again = deviceFormFields(seen.at(-1)!.form)!;
    const noCode = await fetch(again.action, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: cookies },
      body: new URLSearchParams({ xsrf: again.xsrf }),
    });
    assert.equal(noCode.status, 200);
    assert.equal(seen.at(-1)?.error, 'NoCodeError');
  } finally {
    await device.close();
  }
});

test('oidc-provider 9.x: device authorization by a client without the device grant is refused with 400 invalid_request after client authentication (unauthorized-client.ts)', async () => {
  const device = await bareDeviceProvider([]);
  try {
    const res = await postForm(device.url, '/device/auth', { client_id: 'web', scope: 'openid' });
    assert.equal(res.status, 400, res.text);
    assert.equal(res.json!.error, 'invalid_request');
    assert.match(String(res.json!.error_description), /device_code is not allowed for this client/);
    assert.equal((await postForm(device.url, '/device/auth', { client_id: 'nobody', scope: 'openid' })).json!.error, 'invalid_client');
  } finally {
    await device.close();
  }
});

test('oidc-provider 9.x: the device flow sends no interval and never answers slow_down, only authorization_pending (device-polling.ts)', async () => {
  const device = await bareDeviceProvider([]);
  try {
    const started = await postForm(device.url, '/device/auth', { client_id: 'tv', scope: 'openid' });
    assert.equal(started.status, 200, started.text);
    assert.equal(started.json!.interval, undefined);
    for (let i = 0; i < 3; i++) {
      const res = await postForm(device.url, '/token', { client_id: 'tv', grant_type: DEVICE_GRANT, device_code: started.json!.device_code as string });
      assert.equal(res.status, 400);
      assert.deepEqual(Object.keys(res.json!).sort(), ['error', 'error_description']);
      assert.equal(res.json!.error, 'authorization_pending');
    }
  } finally {
    await device.close();
  }
});

// --- device-session.ts ---------------------------------------------------------------------------

test('oidc-provider 9.x: a failed POST /device without a live session ends in the "previously persisted Sessions" TypeError (device-session.ts)', async () => {
  const thrown: unknown[] = [];
  const device = await bareDeviceProvider([], async (_ctx, next) => {
    try {
      await next();
    } catch (error) {
      thrown.push(error);
      throw error;
    }
  });
  try {
    const res = await fetch(`${device.url}/device`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ user_code: 'BBBB-BBBB', xsrf: 'guessed' }),
    });
    assert.equal(res.status, 500);
    assert.ok(thrown.some((e) => e instanceof TypeError && e.message === 'persist can only be called on previously persisted Sessions'), String(thrown));
  } finally {
    await device.close();
  }
});
