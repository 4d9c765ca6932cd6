import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { ADMIN_ROLE } from '../../src/identity/admin-roles.ts';
import { createUser, startCallback, type Callback, type TestUser } from '../e2e/support.ts';
import { Device } from '../support/device.ts';
import { ORDERS, basic, postForm, seedOrders } from '../oidc/service-fixtures.ts';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';
import { adminClient, assertProblem, call, clientToken, failingFields, type AdminClient } from './support.ts';

/**
 * Issue 10, F1 and F9: the admin API's audience is reserved to admin consoles, every client
 * obtains tokens only for the resources it is allowed (RFC 8707 §2, RFC 9700 §2.3), and an
 * admin token is only as good as its user's and client's current record. Driven over plain
 * HTTP with a cookie jar, as a browser would, without one.
 */
let db: TestDatabase;
let server: TestServer;
let callback: Callback;
let admin: AdminClient;
let adminUser: TestUser;
let adminAud: string;

before(async () => {
  db = await createTestDatabase();
  server = await startServer(db);
  callback = await startCallback();
  admin = await adminClient(server);
  adminUser = await createUser(server.keyward, { roles: [ADMIN_ROLE] });
  adminAud = `${server.url}/admin`;
  await seedOrders(server.keyward);
  await server.keyward.resources.ensure({ identifier: 'https://billing.internal', name: 'Billing API', scopes: ['billing:read'] });
});
after(async () => {
  await callback?.close();
  await server?.stop();
  await db?.drop();
});

const csrfOf = (html: string) => /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? assert.fail('no csrf field on the page');

async function browserClient(options: { firstParty: boolean; adminConsole?: boolean; allowed?: string[] }): Promise<string> {
  const { client } = await server.keyward.clients.create({
    client_name: 'Some App',
    grant_types: ['authorization_code', 'refresh_token'],
    redirect_uris: [callback.redirectUri],
    token_endpoint_auth_method: 'none',
    first_party: options.firstParty,
    ...(options.adminConsole ? { admin_console: true } : {}),
    ...(options.allowed ? { allowed_resources: options.allowed } : {}),
  });
  return client.client_id;
}

function authorizationUrl(clientId: string, challenge: string, resource: string, extra: Record<string, string> = {}): string {
  return `${server.url}/auth?${new URLSearchParams({
    client_id: clientId, response_type: 'code', redirect_uri: callback.redirectUri, scope: 'openid',
    code_challenge: challenge, code_challenge_method: 'S256', state: 'st', resource, ...extra,
  }).toString()}`;
}

/** Signs `who` in at a first-party client asking for `resource`; returns the access token. */
async function userToken(clientId: string, who: TestUser, resource: string): Promise<string> {
  const device = new Device(callback);
  const verifier = oidc.randomPKCECodeVerifier();
  const login = await device.follow(authorizationUrl(clientId, await oidc.calculatePKCECodeChallenge(verifier), resource));
  const html = await login.res.text();
  assert.match(html, /Sign in/, login.url);
  const back = await device.follow(`${login.url}/login`, { method: 'POST', form: { username: who.username, password: who.password, csrf: csrfOf(html) } });
  const code = new URL(back.url).searchParams.get('code') ?? assert.fail(`no code: ${back.url}`);
  const token = await postForm(server.url, '/token', {
    grant_type: 'authorization_code', code, redirect_uri: callback.redirectUri, client_id: clientId, code_verifier: verifier, resource,
  });
  assert.equal(token.status, 200, token.text);
  return token.json!.access_token as string;
}

/** The authorization endpoint's answer, up to the redirect back to the client (or a page). */
async function authorize(clientId: string, resource: string): Promise<URL> {
  const challenge = await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier());
  const { url } = await new Device(callback).follow(authorizationUrl(clientId, challenge, resource));
  return new URL(url);
}

test('RFC 8707 §2 (issue 10 F1): a third-party client asking for the admin API gets invalid_target, not a sign-in page', async () => {
  const clientId = await browserClient({ firstParty: false });
  const answer = await authorize(clientId, adminAud);
  assert.ok(answer.href.startsWith(callback.redirectUri), `the request must be refused before any sign-in: ${answer.href}`);
  assert.equal(answer.searchParams.get('error'), 'invalid_target');
  assert.equal(answer.searchParams.get('state'), 'st');
});

test('RFC 8707 §2 (issue 10 F1): a first-party client that is not an admin console gets invalid_target for the admin API', async () => {
  const clientId = await browserClient({ firstParty: true });
  const answer = await authorize(clientId, adminAud);
  assert.equal(answer.searchParams.get('error'), 'invalid_target', answer.href);
});

test('RFC 8707 §2 (issue 10 F1): client credentials of a non-console client holding the admin role get invalid_target', async () => {
  const { client, client_secret } = await server.keyward.clients.create({
    client_name: 'admin by role only', grant_types: ['client_credentials'], roles: [ADMIN_ROLE],
  });
  const res = await clientToken(server, client.client_id, client_secret!);
  assert.equal(res.status, 400);
  assert.equal(((await res.json()) as { error: string }).error, 'invalid_target');
});

test('issue 10 F1: an admin console signs an admin user in and its token is accepted by the admin API', async () => {
  const clientId = await browserClient({ firstParty: true, adminConsole: true });
  const token = await userToken(clientId, adminUser, adminAud);
  assert.equal(decodeJwt(token).aud, adminAud);
  assert.equal((await call(server, token, 'GET', '/clients')).status, 200);
});

test('issue 10 F1: a token minted before the client stopped being an admin console is refused by the admin API', async () => {
  const console_ = await adminClient(server);
  assert.equal((await call(server, console_.token, 'GET', '/clients')).status, 200);
  const res = await call(server, admin.token, 'PATCH', `/clients/${console_.clientId}`, { admin_console: false });
  assert.equal(res.status, 200, res.text);
  assertProblem(await call(server, console_.token, 'GET', '/clients'), 401, 'admin console');
});

test('issue 10 F1: admin_console is refused on a third-party client, default_resource outside allowed_resources is refused', async () => {
  const base = { client_name: 'x', grant_types: ['client_credentials'] };
  const third = await call(server, admin.token, 'POST', '/clients', { ...base, admin_console: true });
  assertProblem(third, 400);
  assert.deepEqual(failingFields(third), ['admin_console']);
  const outside = await call(server, admin.token, 'POST', '/clients', { ...base, allowed_resources: [ORDERS], default_resource: 'https://billing.internal' });
  assertProblem(outside, 400);
  assert.deepEqual(failingFields(outside), ['default_resource']);
  const made = await call(server, admin.token, 'POST', '/clients', { ...base, allowed_resources: [ORDERS], default_resource: ORDERS });
  assert.equal(made.status, 201, made.text);
  assert.deepEqual(made.body.allowed_resources, [ORDERS]);
  const later = await call(server, admin.token, 'PATCH', `/clients/${made.body.client_id as string}`, { admin_console: true });
  assertProblem(later, 400);
});

test('RFC 8707 §2, RFC 9700 §2.3 (issue 10 F1): allowed_resources limits the token endpoint; unset allows every resource but the admin API', async () => {
  const { client, client_secret } = await server.keyward.clients.create({
    client_name: 'orders only', grant_types: ['client_credentials'], roles: ['orders-reader'], allowed_resources: [ORDERS],
  });
  const ok = await clientToken(server, client.client_id, client_secret!, ORDERS);
  assert.equal(ok.status, 200, await ok.clone().text());
  const other = await clientToken(server, client.client_id, client_secret!, 'https://billing.internal');
  assert.equal(other.status, 400);
  assert.equal(((await other.json()) as { error: string }).error, 'invalid_target');

  const open = await server.keyward.clients.create({ client_name: 'any api', grant_types: ['client_credentials'], roles: ['orders-reader'] });
  const billing = await postForm(server.url, '/token', { grant_type: 'client_credentials', resource: 'https://billing.internal' }, { authorization: basic(open.client.client_id, open.client_secret!) });
  assert.equal(billing.status, 200, billing.text);
});

test('RFC 8707 §2 (issue 10 F1): allowed_resources also limits the authorization endpoint', async () => {
  const clientId = await browserClient({ firstParty: true, allowed: [ORDERS] });
  const answer = await authorize(clientId, 'https://billing.internal');
  assert.equal(answer.searchParams.get('error'), 'invalid_target', answer.href);
});

test('issue 10 F9: a user admin token stops working when the admin role is removed, and when the user is disabled or deleted', async () => {
  const clientId = await browserClient({ firstParty: true, adminConsole: true });
  const who = await createUser(server.keyward, { roles: [ADMIN_ROLE] });
  const token = await userToken(clientId, who, adminAud);
  assert.deepEqual(decodeJwt(token).roles, [ADMIN_ROLE]);
  assert.equal((await call(server, token, 'GET', '/users')).status, 200);

  assert.equal((await call(server, admin.token, 'PUT', `/users/${who.id}/roles`, { roles: [] })).status, 200);
  assertProblem(await call(server, token, 'GET', '/users'), 403);

  assert.equal((await call(server, admin.token, 'PUT', `/users/${who.id}/roles`, { roles: [ADMIN_ROLE] })).status, 200);
  assert.equal((await call(server, token, 'GET', '/users')).status, 200, 'the role is back: so is the access');

  assert.equal((await call(server, admin.token, 'PATCH', `/users/${who.id}`, { disabled: true })).status, 200);
  assertProblem(await call(server, token, 'GET', '/users'), 401, 'disabled or deleted');

  const other = await createUser(server.keyward, { roles: [ADMIN_ROLE] });
  const otherToken = await userToken(clientId, other, adminAud);
  assert.equal((await call(server, otherToken, 'GET', '/users')).status, 200);
  assert.equal((await call(server, admin.token, 'DELETE', `/users/${other.id}`)).status, 204);
  assertProblem(await call(server, otherToken, 'GET', '/users'), 401, 'disabled or deleted');
});

test('issue 10 F9: a client admin token loses what its client no longer holds', async () => {
  const caller = await adminClient(server);
  assert.equal((await call(server, caller.token, 'POST', '/roles', { name: 'f9-probe' })).status, 201);
  assert.equal((await call(server, admin.token, 'PUT', `/clients/${caller.clientId}/roles`, { roles: ['admin:read'] })).status, 200);
  assertProblem(await call(server, caller.token, 'POST', '/roles', { name: 'f9-probe-2' }), 403);
  // admin:read was not in the token: the token cannot gain what it was not issued with.
  assertProblem(await call(server, caller.token, 'GET', '/roles'), 403);
});

test('RFC 9700 §2.3 (issue 10 F1): a third-party client asking an API token with none of its scopes is refused after sign-in (invalid_scope); with a scope, the consent page names the API', async () => {
  const clientId = await browserClient({ firstParty: false });
  const who = await createUser(server.keyward, { roles: ['orders-reader'] });
  const challenge = await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier());

  const bare = new Device(callback);
  const login = await bare.follow(authorizationUrl(clientId, challenge, ORDERS));
  const refused = await bare.follow(`${login.url}/login`, { method: 'POST', form: { username: who.username, password: who.password, csrf: csrfOf(await login.res.text()) } });
  assert.equal(new URL(refused.url).searchParams.get('error'), 'invalid_scope', refused.url);

  const device = new Device(callback);
  const again = await device.follow(authorizationUrl(clientId, challenge, ORDERS, { scope: 'openid orders:read' }));
  const consent = await device.follow(`${again.url}/login`, { method: 'POST', form: { username: who.username, password: who.password, csrf: csrfOf(await again.res.text()) } });
  const page = await consent.res.text();
  assert.match(page, /Allow access/, consent.url);
  assert.match(page, /Use Orders API with permission/);
  assert.ok(page.includes(ORDERS), 'the resource identifier is shown');
});
