import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { generateKeyPair, importJWK, SignJWT, decodeProtectedHeader } from 'jose';
import * as oidc from 'openid-client';
import { TestClock } from '../support/clock.ts';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';
import { basic, ORDERS, postForm, relyingParty, seedOrders } from './service-fixtures.ts';
import { authorize, clientAuth, codeGrant, seedUserFlow, type UserFlow } from './user-flow.ts';

type Client = { id: string; secret: string };
let db: TestDatabase;
let server: TestServer;
// Running: the tokens it stamps are also checked by jose against the real time.
const clock = TestClock.running();
let owner: Client;
let api: Client;
let otherApi: Client;
let stranger: Client;

before(async () => {
  db = await createTestDatabase();
  server = await startServer(db, {}, { now: clock.now });
  await seedOrders(server.keyward, { ttl: 300 });
  await server.keyward.resources.ensure({ identifier: 'https://billing.internal', scopes: ['billing:read'] });
  owner = await client({ roles: ['orders-reader'] });
  api = await client({ resource_server: ORDERS });
  otherApi = await client({ resource_server: 'https://billing.internal' });
  stranger = await client({});
});
after(async () => {
  await server?.stop();
  await db?.drop();
});

async function client(input: { roles?: string[]; resource_server?: string }): Promise<Client> {
  const { client: created, client_secret } = await server.keyward.clients.create({
    client_name: 'introspection test', grant_types: ['client_credentials'], roles: input.roles ?? [],
    ...(input.resource_server ? { resource_server: input.resource_server } : {}),
  });
  return { id: created.client_id, secret: client_secret! };
}

async function issue(): Promise<string> {
  const res = await postForm(server.url, '/token', { grant_type: 'client_credentials', resource: ORDERS, scope: 'orders:read' }, { authorization: basic(owner.id, owner.secret) });
  assert.equal(res.status, 200, res.text);
  return res.json!.access_token as string;
}

async function introspect(as: Client, token: string): Promise<Record<string, unknown>> {
  const rp = await relyingParty(server.url, as.id, oidc.ClientSecretBasic(as.secret));
  return { ...(await oidc.tokenIntrospection(rp, token)) };
}

test('RFC 7662 §2.2: the client a JWT was issued to sees it active with its claims', async () => {
  const token = await issue();
  const result = await introspect(owner, token);
  assert.equal(result.active, true);
  assert.equal(result.client_id, owner.id);
  assert.equal(result.sub, owner.id);
  assert.equal(result.aud, ORDERS);
  assert.equal(result.iss, server.url);
  assert.equal(result.scope, 'orders:read');
  assert.equal(result.token_type, 'Bearer');
  assert.deepEqual(result.roles, ['orders-reader']);
  assert.equal(typeof result.jti, 'string');
  assert.equal((result.exp as number) - (result.iat as number), 300);
});

test('RFC 7662 §2.2: the API\'s own client (resource_server = aud) sees tokens addressed to its API', async () => {
  const result = await introspect(api, await issue());
  assert.equal(result.active, true);
  assert.equal(result.client_id, owner.id);
});

test('RFC 7662 §2.2: any other client, including another API\'s client, gets only {"active": false}', async () => {
  const token = await issue();
  assert.deepEqual(await introspect(stranger, token), { active: false });
  assert.deepEqual(await introspect(otherApi, token), { active: false });
});

test('RFC 7662 §2.2: an expired JWT introspects as inactive', async () => {
  const token = await issue();
  clock.advance(301_000);
  try {
    assert.deepEqual(await introspect(owner, token), { active: false });
  } finally {
    clock.advance(-301_000);
  }
});

test('RFC 7662 §2.2: a JWT with an altered payload (forged) introspects as inactive', async () => {
  const [header, payload, signature] = (await issue()).split('.') as [string, string, string];
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
  const forged = Buffer.from(JSON.stringify({ ...claims, scope: 'orders:read orders:admin' })).toString('base64url');
  assert.deepEqual(await introspect(owner, `${header}.${forged}.${signature}`), { active: false });
});

test('RFC 7662 §2.2: a JWT signed by a key not in the key set (same kid, same claims) introspects as inactive', async () => {
  const genuine = await issue();
  const { kid } = decodeProtectedHeader(genuine);
  const claims = JSON.parse(Buffer.from(genuine.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
  const { privateKey } = await generateKeyPair('ES256');
  const foreign = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', ...(kid ? { kid } : {}) }).sign(privateKey);
  assert.deepEqual(await introspect(owner, foreign), { active: false });
});

test('RFC 9068 §4: a JWT signed with Keyward\'s own key but not typed at+jwt (e.g. an ID token) is not an access token', async () => {
  const [key] = (await server.keyward.keys.loadUsable()).filter((k) => k.state === 'active' && k.alg === 'ES256');
  const privateKey = await importJWK(key!.privateJwk, 'ES256');
  const now = Math.floor(Date.now() / 1000);
  const idTokenLike = await new SignJWT({ client_id: owner.id, aud: ORDERS, sub: owner.id, jti: 'not-an-access-token' })
    .setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid: key!.kid }).setIssuer(server.url).setIssuedAt(now).setExpirationTime(now + 60).sign(privateKey);
  assert.deepEqual(await introspect(owner, idTokenLike), { active: false });
  // The same claims typed as an access token are accepted: the typ check is what refused it.
  const typed = await new SignJWT({ client_id: owner.id, aud: ORDERS, sub: owner.id, jti: 'typed' })
    .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: key!.kid }).setIssuer(server.url).setIssuedAt(now).setExpirationTime(now + 60).sign(privateKey);
  assert.equal((await introspect(owner, typed)).active, true);
});

test('RFC 7662 §2.2: an unsigned (alg none) token introspects as inactive', async () => {
  const claims = JSON.parse(Buffer.from((await issue()).split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
  const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.`;
  assert.deepEqual(await introspect(owner, none), { active: false });
});

test('RFC 7662 §2.2: an unknown opaque token introspects as inactive', async () => {
  assert.deepEqual(await introspect(owner, 'not-a-token-at-all'), { active: false });
});

test('RFC 7662 §2.1: introspection requires client authentication (401 invalid_client with WWW-Authenticate)', async () => {
  const token = await issue();
  // No credentials at all: oidc-provider answers 400 invalid_request ("no client authentication
  // mechanism provided") before any client is looked up; it never answers the token.
  const anonymous = await postForm(server.url, '/token/introspection', { token });
  assert.equal(anonymous.status, 400, anonymous.text);
  assert.equal(anonymous.json?.error, 'invalid_request');
  assert.equal(anonymous.json?.active, undefined);
  const wrong = await postForm(server.url, '/token/introspection', { token }, { authorization: basic(owner.id, 'wrong') });
  assert.equal(wrong.status, 401);
  assert.equal(wrong.json?.error, 'invalid_client');
  assert.match(wrong.headers.get('www-authenticate') ?? '', /^Basic /);
});

test('RFC 7662 §2.1: a request without `token` is 400 invalid_request', async () => {
  const res = await postForm(server.url, '/token/introspection', {}, { authorization: basic(owner.id, owner.secret) });
  assert.equal(res.status, 400);
  assert.equal(res.json?.error, 'invalid_request');
});

test('RFC 7662 §2.2: introspection follows a key reload (the verifier uses the current key set)', async () => {
  const token = await issue();
  await server.keyward.reloadKeys();
  assert.equal((await introspect(owner, token)).active, true);
});

test('RFC 7662 §4: the introspection response is not cacheable', async () => {
  const res = await postForm(server.url, '/token/introspection', { token: await issue() }, { authorization: basic(owner.id, owner.secret) });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('cache-control') ?? '', /no-store/);
});


/** A confidential user-flow client's opaque access token (userinfo only) and refresh token. */
async function opaqueTokens(): Promise<{ flow: UserFlow; accessToken: string; refreshToken: string }> {
  const flow = await seedUserFlow(server.keyward, { token_endpoint_auth_method: 'client_secret_basic' });
  const code = await authorize(server.url, flow);
  const res = await postForm(server.url, '/token', codeGrant(flow, code), clientAuth(flow));
  assert.equal(res.status, 200, res.text);
  const accessToken = res.json!.access_token as string;
  assert.equal(accessToken.split('.').length, 1, 'a userinfo-only access token is opaque');
  return { flow, accessToken, refreshToken: res.json!.refresh_token as string };
}

test('RFC 7662 §2.2: the client an opaque access or refresh token was issued to sees it active', async () => {
  const { flow, accessToken, refreshToken } = await opaqueTokens();
  const self = { id: flow.clientId, secret: flow.secret! };
  const at = await introspect(self, accessToken);
  assert.equal(at.active, true);
  assert.equal(at.client_id, flow.clientId);
  assert.equal(at.sub, flow.user.id);
  const rt = await introspect(self, refreshToken);
  assert.equal(rt.active, true);
  assert.equal(rt.client_id, flow.clientId);
});

test('RFC 7662 §2.2: another client, an API\'s client included, gets {"active": false} for an opaque access or refresh token', async () => {
  const { accessToken, refreshToken } = await opaqueTokens();
  for (const requester of [stranger, api, owner]) {
    assert.deepEqual(await introspect(requester, accessToken), { active: false });
    assert.deepEqual(await introspect(requester, refreshToken), { active: false });
  }
});
