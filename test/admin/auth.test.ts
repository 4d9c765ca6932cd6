import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';
import { adminClient, assertProblem, call, clientToken, readOnlyRoles, type AdminClient } from './support.ts';

let db: TestDatabase;
let server: TestServer;
let admin: AdminClient;
let clock = new Date();

before(async () => {
  db = await createTestDatabase();
  // The admin API checks expiry against Keyward's clock, so the test can move it forward.
  server = await startServer(db, {}, { now: () => clock });
  admin = await adminClient(server);
});
after(async () => {
  await server?.stop();
  await db?.drop();
});

test('RFC 6750 §3: no token answers 401 with a bare Bearer challenge', async () => {
  const res = await call(server, undefined, 'GET', '/clients');
  assertProblem(res, 401);
  assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="keyward-admin"');
});

test('RFC 6750 §3.1: a malformed or forged token answers 401 invalid_token', async () => {
  for (const header of ['Basic YWJjOmRlZg==', 'Bearer', 'Bearer not a token', 'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.']) {
    const res = await call(server, undefined, 'GET', '/clients', undefined, { authorization: header });
    assertProblem(res, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer realm="keyward-admin"(, error="invalid_token".*)?$/);
  }
  // A real token with one signature byte changed.
  const [h, p, s] = admin.token.split('.');
  const forged = `${h}.${p}.${s!.slice(0, -2)}${s!.endsWith('AA') ? 'BB' : 'AA'}`;
  const res = await call(server, forged, 'GET', '/clients');
  assertProblem(res, 401);
  assert.match(res.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
});

test('a token of this issuer for another audience is refused (401)', async () => {
  await server.keyward.resources.create({ identifier: 'https://orders.test', scopes: ['orders:read'] });
  const res = await clientToken(server, admin.clientId, admin.secret, 'https://orders.test');
  assert.equal(res.status, 200);
  const { access_token } = (await res.json()) as { access_token: string };
  assert.equal(decodeJwt(access_token).aud, 'https://orders.test');
  const denied = await call(server, access_token, 'GET', '/clients');
  assertProblem(denied, 401, 'aud');
});

test('the admin token is an RFC 9068 JWT (typ at+jwt) with the admin role, and it is accepted', async () => {
  assert.equal(decodeProtectedHeader(admin.token).typ, 'at+jwt');
  assert.deepEqual(decodeJwt(admin.token).roles, ['admin']);
  const res = await call(server, admin.token, 'GET', '/clients');
  assert.equal(res.status, 200);
});

test('role admin:read may GET but a change answers 403 insufficient_scope', async () => {
  const reader = await adminClient(server, readOnlyRoles);
  assert.equal((await call(server, reader.token, 'GET', '/roles')).status, 200);
  assert.equal((await call(server, reader.token, 'GET', '/audit')).status, 200);
  for (const [method, path, body] of [
    ['POST', '/roles', { name: 'sneaky' }],
    ['PATCH', '/roles/admin', { description: 'x' }],
    ['DELETE', '/roles/admin:read', undefined],
    ['PUT', `/clients/${reader.clientId}/roles`, { roles: ['admin'] }],
    ['POST', '/keys/rotate', {}],
  ] as const) {
    const res = await call(server, reader.token, method, path, body);
    assertProblem(res, 403, 'admin');
    assert.match(res.headers.get('www-authenticate') ?? '', /insufficient_scope/);
  }
  assert.deepEqual((await server.keyward.clients.get(reader.clientId)).roles, ['admin:read']);
});

test('a client without an admin role gets 403 even on GET', async () => {
  const nobody = await adminClient(server, []);
  assertProblem(await call(server, nobody.token, 'GET', '/clients'), 403);
});

test('an expired token answers 401 invalid_token', async () => {
  const caller = await adminClient(server);
  const exp = decodeJwt(caller.token).exp!;
  clock = new Date((exp + 5) * 1000);
  try {
    const res = await call(server, caller.token, 'GET', '/clients');
    assertProblem(res, 401, 'expired');
  } finally {
    clock = new Date();
  }
});

test('a token revoked at the revocation endpoint (RFC 7009) is refused', async () => {
  const caller = await adminClient(server);
  assert.equal((await call(server, caller.token, 'GET', '/clients')).status, 200);
  const res = await fetch(`${server.url}/token/revocation`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${caller.clientId}:${caller.secret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ token: caller.token, token_type_hint: 'access_token' }),
  });
  assert.equal(res.status, 200);
  assertProblem(await call(server, caller.token, 'GET', '/clients'), 401, 'revoked');
});

test('disabling the calling client stops its live tokens at once', async () => {
  const caller = await adminClient(server);
  const res = await call(server, admin.token, 'PATCH', `/clients/${caller.clientId}`, { disabled: true });
  assert.equal(res.status, 200);
  assertProblem(await call(server, caller.token, 'GET', '/clients'), 401, 'disabled');
});

test('verification follows key rotation without restart: a token signed by the new key is accepted', async () => {
  const before = decodeProtectedHeader(admin.token).kid;
  const rotated = await call(server, admin.token, 'POST', '/keys/rotate', { emergency: true });
  assert.equal(rotated.status, 200, rotated.text);
  const fresh = await adminClient(server);
  const kid = decodeProtectedHeader(fresh.token).kid;
  assert.notEqual(kid, before);
  assert.ok((rotated.body.items as { kid: string; state: string }[]).some((k) => k.kid === kid && k.state === 'active'));
  assert.equal((await call(server, fresh.token, 'GET', '/keys')).status, 200);
  // The emergency retired the key that signed the old token: it is no longer accepted.
  assertProblem(await call(server, admin.token, 'GET', '/keys'), 401);
  admin = fresh;
});
