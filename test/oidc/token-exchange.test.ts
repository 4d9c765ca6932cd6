import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { TOKEN_EXCHANGE } from '../../src/identity/clients/index.ts';
import { adminClient, call } from '../admin/support.ts';
import { TestClock } from '../support/clock.ts';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';
import { auditEvents, basic, postForm, relyingParty, verifyAccessToken } from './service-fixtures.ts';
import { authorize, clientAuth, codeGrant, refreshGrant, seedUserFlow, type UserFlow } from './user-flow.ts';

/**
 * RFC 8693 token exchange and roles per API, end to end: a user signs in to `web`, which calls
 * `orders` on the user's behalf, which calls `billing` (user → web → orders → billing).
 */
const WEB = 'https://web.internal';
const ORDERS = 'https://orders.internal';
const BILLING = 'https://billing.internal';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

type Client = { id: string; secret: string };
let db: TestDatabase;
let server: TestServer;
const clock = TestClock.running();
let web: UserFlow;
let orders: Client;
let billing: Client;
let stranger: Client;

before(async () => {
  db = await createTestDatabase();
  server = await startServer(db, {}, { now: clock.now });
  const { keyward } = server;
  await keyward.resources.create({ identifier: WEB, scopes: ['web:use', 'orders:read', 'orders:write', 'billing:read'], access_token_ttl: 600 });
  await keyward.resources.create({ identifier: ORDERS, scopes: ['orders:read', 'orders:write', 'billing:read'], access_token_ttl: 300 });
  await keyward.resources.create({ identifier: BILLING, scopes: ['billing:read', 'billing:write'], access_token_ttl: 900, signing_alg: 'RS256' });
  await keyward.roles.create({ name: 'shopper', permissions: ['web:use', 'orders:read', 'billing:read'] });
  await keyward.roles.create({ name: 'orders-clerk', permissions: ['orders:write'], resource: ORDERS });
  await keyward.roles.create({ name: 'billing-auditor', permissions: ['billing:write'], resource: BILLING });
  web = await seedUserFlow(keyward, {
    grant_types: ['authorization_code', 'refresh_token', TOKEN_EXCHANGE], token_endpoint_auth_method: 'client_secret_basic',
    token_exchange_audiences: [ORDERS],
  });
  await keyward.users.setRoles(web.user.id, ['shopper', 'orders-clerk', 'billing-auditor']);
  orders = await service({ resource_server: ORDERS, token_exchange_audiences: [BILLING] });
  billing = await service({ resource_server: BILLING });
  stranger = await service({ token_exchange_audiences: [ORDERS, BILLING] });
});
after(async () => {
  await server?.stop();
  await db?.drop();
});

async function service(input: { resource_server?: string; token_exchange_audiences?: string[]; grant_types?: ('client_credentials' | typeof TOKEN_EXCHANGE)[]; roles?: string[] }): Promise<Client> {
  const { client, client_secret } = await server.keyward.clients.create({
    client_name: 'exchange test', grant_types: input.grant_types ?? [TOKEN_EXCHANGE], token_endpoint_auth_method: 'client_secret_basic',
    ...(input.resource_server ? { resource_server: input.resource_server } : {}),
    ...(input.token_exchange_audiences ? { token_exchange_audiences: input.token_exchange_audiences } : {}),
    ...(input.roles ? { roles: input.roles } : {}),
  });
  return { id: client.client_id, secret: client_secret! };
}

/** The user's tokens at `web`: an access token for the web API, a refresh token and an ID token. */
async function signIn(): Promise<{ accessToken: string; refreshToken: string; idToken: string }> {
  const code = await authorize(server.url, web, { resource: WEB, scope: 'openid offline_access roles web:use orders:read orders:write billing:read' });
  const res = await postForm(server.url, '/token', codeGrant(web, code, { resource: WEB }), clientAuth(web));
  assert.equal(res.status, 200, res.text);
  return { accessToken: res.json!.access_token as string, refreshToken: res.json!.refresh_token as string, idToken: res.json!.id_token as string };
}

/** A token exchange through openid-client, as a service would send it. */
async function exchange(actor: Client, subjectToken: string, params: Record<string, string>): Promise<oidc.TokenEndpointResponse> {
  const rp = await relyingParty(server.url, actor.id, oidc.ClientSecretBasic(actor.secret));
  return oidc.genericGrantRequest(rp, TOKEN_EXCHANGE, { subject_token: subjectToken, subject_token_type: ACCESS_TOKEN_TYPE, ...params });
}

/** A raw token-exchange request, for the errors (openid-client throws them). */
function rawExchange(actor: Client, params: Record<string, string>): ReturnType<typeof postForm> {
  return postForm(server.url, '/token', { grant_type: TOKEN_EXCHANGE, subject_token_type: ACCESS_TOKEN_TYPE, ...params }, { authorization: basic(actor.id, actor.secret) });
}

function assertError(res: Awaited<ReturnType<typeof postForm>>, error: string, description?: RegExp): void {
  assert.equal(res.status, 400, res.text);
  assert.equal(res.json?.error, error, res.text);
  if (description) assert.match(String(res.json?.error_description), description);
}

async function introspect(requester: Client, token: string): Promise<Record<string, unknown>> {
  const res = await postForm(server.url, '/token/introspection', { token }, { authorization: basic(requester.id, requester.secret) });
  assert.equal(res.status, 200, res.text);
  return res.json!;
}

const webClient = (): Client => ({ id: web.clientId, secret: web.secret! });

test('RFC 8693 §2.1, §2.2.1, §4.1: a three-hop chain user → web → orders → billing, claim by claim', async () => {
  const { accessToken } = await signIn();
  const t0 = decodeJwt(accessToken);
  assert.equal(t0.aud, WEB);
  assert.deepEqual(t0.roles, ['shopper'], 'roles per API: a token for web carries no role scoped to orders or billing');
  assert.equal(t0.scope, 'web:use orders:read billing:read', 'orders:write comes only from a role scoped to orders');

  // Hop 1: web exchanges the user's token for one to call orders.
  const r1 = await exchange(webClient(), accessToken, { resource: ORDERS });
  assert.equal(r1.issued_token_type, ACCESS_TOKEN_TYPE);
  assert.equal(r1.token_type.toLowerCase(), 'bearer');
  const { payload: t1, header: h1 } = await verifyAccessToken(server.url, r1.access_token, ORDERS);
  assert.equal(h1.typ, 'at+jwt');
  assert.equal(t1.sub, web.user.id, 'sub stays the user');
  assert.equal(t1.client_id, web.clientId);
  assert.deepEqual(t1.act, { sub: web.clientId });
  assert.equal(t1.aud, ORDERS);
  assert.equal(t1.scope, 'orders:read billing:read', 'subject scope ∩ orders scopes ∩ permitted (orders:write was never in the subject token)');
  assert.deepEqual([...(t1.roles as string[])].sort(), ['orders-clerk', 'shopper'], 'global roles + roles scoped to orders');
  assert.ok(t1.exp! <= t0.exp!, 'never outlives the subject token');
  assert.equal(t1.exp! - t1.iat!, 300, 'the target API TTL when the subject lives longer');
  assert.equal(r1.scope, 'orders:read billing:read');

  // Hop 2: orders, which received t1 as its API, exchanges it for billing, narrowed to billing:read.
  const r2 = await exchange(orders, r1.access_token, { audience: BILLING, scope: 'billing:read' });
  const { payload: t2, header: h2 } = await verifyAccessToken(server.url, r2.access_token, BILLING);
  assert.equal(h2.alg, 'RS256', 'signed with the target API algorithm');
  assert.equal(t2.sub, web.user.id);
  assert.equal(t2.client_id, orders.id);
  assert.deepEqual(t2.act, { sub: orders.id, act: { sub: web.clientId } }, 'the current actor outermost, prior actors nested');
  assert.equal(t2.aud, BILLING);
  assert.equal(t2.scope, 'billing:read');
  assert.deepEqual([...(t2.roles as string[])].sort(), ['billing-auditor', 'shopper'], 'global roles + roles scoped to billing, never orders-clerk');
  assert.ok(t2.exp! <= t1.exp!, 'billing TTL is 900 s, but the token ends with its subject');
  assert.equal(r2.expires_in, t2.exp! - t2.iat!);

  // Billing, the API's own client, sees the whole actor chain at introspection.
  const seen = await introspect(billing, r2.access_token);
  assert.equal(seen.active, true);
  assert.deepEqual(seen.act, t2.act);

  const audited = (await auditEvents(server.keyward, 'token.exchanged')).filter((e) => e.details.jti === t2.jti);
  assert.equal(audited.length, 1);
  assert.equal(audited[0]!.actor, orders.id);
  assert.equal(audited[0]!.subject, web.user.id);
  assert.equal(audited[0]!.details.subject_jti, t1.jti);
  assert.equal(audited[0]!.details.aud, BILLING);
});

test('RFC 8693 §2.1 + RFC 6749 §5.2: a scope beyond the subject token, the target or the roles is invalid_scope', async () => {
  const { accessToken } = await signIn();
  // orders:write is accepted by orders and permitted there by orders-clerk, but the subject token never held it.
  assertError(await rawExchange(webClient(), { subject_token: accessToken, resource: ORDERS, scope: 'orders:write' }), 'invalid_scope');
  const r1 = await exchange(webClient(), accessToken, { resource: ORDERS, scope: 'billing:read' });
  assert.equal(decodeJwt(r1.access_token).scope, 'billing:read', 'a requested scope narrows');
  // Narrowed to billing:read, the next hop cannot widen back to orders:read.
  assertError(await rawExchange(orders, { subject_token: r1.access_token, resource: BILLING, scope: 'billing:write' }), 'invalid_scope');
});

test('RFC 8693 §2.2.2: an invalid, foreign, expired-looking or malformed subject_token is invalid_request', async () => {
  const { accessToken } = await signIn();
  const [header, payload] = accessToken.split('.');
  const forged = `${header}.${payload}.${Buffer.alloc(64, 1).toString('base64url')}`;
  for (const subject of ['not-a-jwt', forged, `${accessToken}x`]) {
    assertError(await rawExchange(webClient(), { subject_token: subject, resource: ORDERS }), 'invalid_request', /subject_token is invalid or expired/);
  }
  // A valid token neither issued to the caller nor addressed to its API.
  assertError(await rawExchange(stranger, { subject_token: accessToken, resource: ORDERS }), 'invalid_request', /neither issued to this client nor addressed/);
});

test('RFC 8693 §2.2.2: an expired subject_token is invalid_request', async () => {
  const SHORT = 'https://short.internal';
  await server.keyward.resources.create({ identifier: SHORT, scopes: ['billing:read'], access_token_ttl: 1 });
  const short = await service({ grant_types: ['client_credentials', TOKEN_EXCHANGE], token_exchange_audiences: [BILLING], roles: ['shopper'] });
  const rp = await relyingParty(server.url, short.id, oidc.ClientSecretBasic(short.secret));
  const own = await oidc.clientCredentialsGrant(rp, { resource: SHORT, scope: 'billing:read' });
  assert.equal(decodeJwt(own.access_token).exp! - decodeJwt(own.access_token).iat!, 1);
  await new Promise((resolve) => setTimeout(resolve, 2100));
  assertError(await rawExchange(short, { subject_token: own.access_token, resource: BILLING }), 'invalid_request', /invalid or expired/);
});

test('RFC 8693 §2.2.2: missing or unsupported token types and actor_token are invalid_request', async () => {
  const { accessToken } = await signIn();
  const client = webClient();
  const auth = { authorization: basic(client.id, client.secret) };
  assertError(await postForm(server.url, '/token', { grant_type: TOKEN_EXCHANGE, subject_token_type: ACCESS_TOKEN_TYPE, resource: ORDERS }, auth), 'invalid_request', /subject_token/);
  assertError(await postForm(server.url, '/token', { grant_type: TOKEN_EXCHANGE, subject_token: accessToken, resource: ORDERS }, auth), 'invalid_request', /subject_token_type/);
  for (const type of ['urn:ietf:params:oauth:token-type:id_token', 'urn:ietf:params:oauth:token-type:refresh_token', 'urn:ietf:params:oauth:token-type:jwt']) {
    assertError(await rawExchange(client, { subject_token: accessToken, subject_token_type: type, resource: ORDERS }), 'invalid_request', /unsupported subject_token_type/);
  }
  assertError(await rawExchange(client, { subject_token: accessToken, resource: ORDERS, requested_token_type: 'urn:ietf:params:oauth:token-type:refresh_token' }), 'invalid_request', /requested_token_type/);
  assertError(await rawExchange(client, { subject_token: accessToken, resource: ORDERS, actor_token: accessToken, actor_token_type: ACCESS_TOKEN_TYPE }), 'invalid_request', /actor_token is not supported/);
});

test('RFC 8693 §2.2.2: a target the client may not exchange for is invalid_target', async () => {
  const { accessToken } = await signIn();
  // web's token_exchange_audiences is [orders]: billing, an unknown API, the admin API, none and two are refused.
  for (const target of <Record<string, string>[]>[{ resource: BILLING }, { audience: BILLING }, { resource: 'https://unknown.internal' }, { resource: `${server.url}/admin` }, {}]) {
    assertError(await rawExchange(webClient(), { subject_token: accessToken, ...target }), 'invalid_target');
  }
  assertError(await rawExchange(webClient(), { subject_token: accessToken, resource: ORDERS, audience: BILLING }), 'invalid_target', /exactly one/);
  // A client with no token_exchange_audiences at all.
  const none = await service({ resource_server: ORDERS });
  const r1 = await exchange(webClient(), accessToken, { resource: ORDERS });
  assertError(await rawExchange(none, { subject_token: r1.access_token, resource: BILLING }), 'invalid_target');
});

test('RFC 8693 §2.1: a client without the grant type is unauthorized_client; a public client cannot be registered for it', async () => {
  const { accessToken } = await signIn();
  const ccOnly = await service({ grant_types: ['client_credentials'] });
  assertError(await rawExchange(ccOnly, { subject_token: accessToken, resource: ORDERS }), 'unauthorized_client');
  await assert.rejects(server.keyward.clients.create({ client_name: 'public', grant_types: [TOKEN_EXCHANGE], token_endpoint_auth_method: 'none' }), /token exchange requires an authenticating client/);
  await assert.rejects(server.keyward.clients.create({ client_name: 'bad', grant_types: [TOKEN_EXCHANGE], token_exchange_audiences: ['https://nowhere.internal'] }), /unknown resource server/);
});

test('RFC 8693 §2.2.2 + RFC 7009: revoking the subject grant or a subject token makes every exchanged token inactive', async () => {
  // The user's grant: revoking the refresh token revokes it (RFC 7009 §2.1).
  const other = await signIn();
  const otherExchanged = await exchange(webClient(), other.accessToken, { resource: ORDERS });
  const { accessToken, refreshToken } = await signIn();
  assert.equal(typeof decodeJwt(accessToken).grant_id, 'string', 'a user\'s JWT access token names its grant');
  assert.notEqual(decodeJwt(accessToken).grant_id, decodeJwt(other.accessToken).grant_id);
  const r1 = await exchange(webClient(), accessToken, { resource: ORDERS });
  const r2 = await exchange(orders, r1.access_token, { resource: BILLING });
  assert.equal((await introspect(billing, r2.access_token)).active, true);
  const revoked = await postForm(server.url, '/token/revocation', { token: refreshToken, token_type_hint: 'refresh_token' }, clientAuth(web));
  assert.equal(revoked.status, 200, revoked.text);
  assert.deepEqual(await introspect(orders, r1.access_token), { active: false });
  assert.deepEqual(await introspect(billing, r2.access_token), { active: false }, 'two hops down the chain');
  assert.equal((await introspect(orders, otherExchanged.access_token)).active, true, 'the same user\'s other grant (another sign-in) is untouched');
  assertError(await rawExchange(orders, { subject_token: r1.access_token, resource: BILLING }), 'invalid_request', /revoked/);
  assertError(await rawExchange(webClient(), { subject_token: accessToken, resource: ORDERS }), 'invalid_request', /revoked/);
  // A still-valid refresh of a new sign-in works again (the chain is bound to a live grant).
  const again = await signIn();
  const refreshed = await postForm(server.url, '/token', refreshGrant(web, again.refreshToken, { resource: WEB }), clientAuth(web));
  assert.equal(refreshed.status, 200, refreshed.text);

  // A subject token revoked on its own (RFC 7009 for the JWT): its descendants die, its ancestors live.
  const s1 = await exchange(webClient(), again.accessToken, { resource: ORDERS });
  const s2 = await exchange(orders, s1.access_token, { resource: BILLING });
  const revokeS1 = await postForm(server.url, '/token/revocation', { token: s1.access_token }, { authorization: basic(orders.id, orders.secret) });
  assert.equal(revokeS1.status, 200);
  assert.deepEqual(await introspect(billing, s2.access_token), { active: false });
  assert.equal((await introspect(webClient(), again.accessToken)).active, true, 'the token it came from is untouched');
});

test('Roles per API: client credentials tokens for two APIs and the ID token carry global roles plus that API\'s only', async () => {
  const cc = await service({ grant_types: ['client_credentials'], roles: ['shopper', 'orders-clerk', 'billing-auditor'] });
  const rp = await relyingParty(server.url, cc.id, oidc.ClientSecretBasic(cc.secret));
  const forOrders = decodeJwt((await oidc.clientCredentialsGrant(rp, { resource: ORDERS, scope: 'orders:write billing:write' })).access_token);
  assert.deepEqual(forOrders.roles, ['orders-clerk', 'shopper']);
  assert.equal(forOrders.scope, 'orders:write', 'billing-auditor permits billing:write only at billing');
  const forBilling = decodeJwt((await oidc.clientCredentialsGrant(rp, { resource: BILLING, scope: 'billing:write orders:write' })).access_token);
  assert.deepEqual(forBilling.roles, ['billing-auditor', 'shopper']);
  assert.equal(forBilling.scope, 'billing:write');

  const { idToken } = await signIn();
  assert.deepEqual(decodeJwt(idToken).roles, ['shopper'], 'ID tokens carry global roles only');
});

test('Roles per API: admin API creates a scoped role, refuses an unknown API, and shows the client allowlist', async () => {
  const admin = await adminClient(server);
  const created = await call(server, admin.token, 'POST', '/roles', { name: 'orders-auditor', permissions: ['orders:read'], resource: ORDERS });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  assert.equal((created.body as { resource: string }).resource, ORDERS);
  const global = await call(server, admin.token, 'POST', '/roles', { name: 'plain-role', permissions: [] });
  assert.equal((global.body as { resource: unknown }).resource, null);
  const unknown = await call(server, admin.token, 'POST', '/roles', { name: 'ghost-role', resource: 'https://nowhere.internal' });
  assert.equal(unknown.status, 400, JSON.stringify(unknown.body));
  const client = await call(server, admin.token, 'GET', `/clients/${encodeURIComponent(orders.id)}`);
  assert.deepEqual((client.body as { token_exchange_audiences: string[] }).token_exchange_audiences, [BILLING]);
  // Deleting the API deletes the roles scoped to it (never widening them to global roles).
  const temp = await server.keyward.resources.create({ identifier: 'https://temp.internal', scopes: ['t:x'] });
  await server.keyward.roles.create({ name: 'temp-role', resource: 'https://temp.internal' });
  await server.keyward.resources.delete(temp.id);
  await assert.rejects(server.keyward.roles.get('temp-role'), /does not exist/);
});

test('Token size: a token larger than 4 KB is logged (client_id, audience, size; never the token) and shown on the client', async () => {
  const many = Array.from({ length: 80 }, (_, i) => `bulk-role-${String(i).padStart(2, '0')}-${'x'.repeat(48)}`);
  for (const name of many) await server.keyward.roles.create({ name, permissions: [] });
  const big = await service({ grant_types: ['client_credentials'], roles: many });
  const rp = await relyingParty(server.url, big.id, oidc.ClientSecretBasic(big.secret));
  const { access_token: token } = await oidc.clientCredentialsGrant(rp, { resource: ORDERS });
  assert.ok(token.length > 4096, `token is ${token.length} bytes`);
  const line = server.logs.lines.find((l) => l.includes('larger than 4 KB') && l.includes(big.id));
  assert.ok(line, 'a warning was logged');
  const fields = JSON.parse(line) as Record<string, unknown>;
  assert.equal(fields['log.level'], 'warn');
  assert.equal(fields.audience, ORDERS);
  assert.equal(fields.size, Buffer.byteLength(token));
  assert.ok(!line.includes(token.split('.')[1]!), 'the token itself is never logged');
  const admin = await adminClient(server);
  const shown = await call(server, admin.token, 'GET', `/clients/${encodeURIComponent(big.id)}`);
  const warning = (shown.body as { token_size_warning: Record<string, unknown> | null }).token_size_warning;
  assert.equal(warning?.token, 'access_token');
  assert.equal(warning?.audience, ORDERS);
  assert.equal(warning?.size, Buffer.byteLength(token));
  const small = await call(server, admin.token, 'GET', `/clients/${encodeURIComponent(orders.id)}`);
  assert.equal((small.body as { token_size_warning: unknown }).token_size_warning, null);
});
