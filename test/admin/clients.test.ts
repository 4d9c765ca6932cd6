import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { decodeJwt } from 'jose';
import { clientRead } from '../../src/admin/schemas/clients.ts';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';
import { adminClient, assertNoLeaks, assertProblem, call, clientToken, failingFields, type AdminClient } from './support.ts';

let db: TestDatabase;
let server: TestServer;
let admin: AdminClient;

before(async () => {
  db = await createTestDatabase();
  server = await startServer(db);
  admin = await adminClient(server);
  await server.keyward.roles.create({ name: 'orders-reader', permissions: ['orders:read'] });
  await server.keyward.resources.create({ identifier: 'https://orders.test', scopes: ['orders:read', 'orders:write'] });
});
after(async () => {
  await server?.stop();
  await db?.drop();
});

const service = { client_name: 'Orders worker', grant_types: ['client_credentials'], roles: ['orders-reader'] };

test('POST /clients registers a confidential client and returns its secret once (RFC 7591 §3.2.1)', async () => {
  const res = await call(server, admin.token, 'POST', '/clients', service);
  assert.equal(res.status, 201, res.text);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  assert.equal(res.body.client_name, 'Orders worker');
  assert.equal(res.body.token_endpoint_auth_method, 'client_secret_basic');
  assert.deepEqual(res.body.roles, ['orders-reader']);
  assert.ok(res.body.client_secret.length >= 43, 'at least 256 bits');
  const token = await clientToken(server, res.body.client_id, res.body.client_secret, 'https://orders.test');
  assert.equal(token.status, 200);

  const got = await call(server, admin.token, 'GET', `/clients/${res.body.client_id}`);
  assert.equal(got.status, 200);
  clientRead.strict().parse(got.body);
  assert.equal(got.body.client_secret, undefined);
  assert.ok(!got.text.includes(res.body.client_secret));
});

test('a public authorization-code client gets no secret; redirect URIs are kept exactly', async () => {
  const res = await call(server, admin.token, 'POST', '/clients', {
    client_name: 'SPA', grant_types: ['authorization_code', 'refresh_token'], token_endpoint_auth_method: 'none',
    redirect_uris: ['https://app.example.com/cb', 'http://127.0.0.1:8080/cb', 'http://[::1]/cb', 'http://localhost:3000/cb?x=1'],
  });
  assert.equal(res.status, 201, res.text);
  assert.equal(res.body.client_secret, undefined);
  assert.deepEqual(res.body.secrets, []);
  assert.equal(res.body.redirect_uris[3], 'http://localhost:3000/cb?x=1');
});

test('redirect URIs must be absolute, https (http only on loopback), without fragment, wildcard or script scheme', async () => {
  const bad = [
    'javascript:alert(1)', 'data:text/html,hi', 'http://example.com/cb', 'https://example.com/cb#frag', 'https://*.example.com/cb',
    '/relative/cb', 'cb', 'https://user:pw@example.com/cb', 'ftp://example.com/cb', ' https://example.com/cb', 'https://example.com/*',
  ];
  for (const uri of bad) {
    const res = await call(server, admin.token, 'POST', '/clients', { client_name: 'x', grant_types: ['authorization_code'], redirect_uris: [uri] });
    assertProblem(res, 400);
    assert.deepEqual(failingFields(res), ['redirect_uris[0]'], uri);
  }
});

test('validation failures name every failing field (RFC 9457 extension `errors`)', async () => {
  const res = await call(server, admin.token, 'POST', '/clients', {
    client_name: '', grant_types: ['password'], roles: ['Not A Role'], unknown_field: 1, first_party: 'yes',
  });
  assertProblem(res, 400);
  const fields = failingFields(res);
  for (const field of ['client_name', 'grant_types[0]', 'roles[0]', 'first_party', 'unknown_field']) assert.ok(fields.includes(field), `${field} in ${fields.join(', ')}`);
});

test('rules between fields: code needs a redirect URI, client_credentials needs authentication, private_key_jwt needs keys', async () => {
  const cases: [object, string][] = [
    [{ grant_types: ['authorization_code'] }, 'redirect_uris'],
    [{ grant_types: ['client_credentials'], token_endpoint_auth_method: 'none' }, 'token_endpoint_auth_method'],
    [{ grant_types: ['client_credentials'], token_endpoint_auth_method: 'private_key_jwt' }, 'jwks'],
    [{ grant_types: ['refresh_token'] }, 'grant_types'],
    [{ grant_types: ['client_credentials'], jwks: { keys: [{ kty: 'EC', crv: 'P-256', x: 'a', y: 'b', d: 'private' }] } }, 'jwks.keys[0]'],
  ];
  for (const [body, field] of cases) {
    const res = await call(server, admin.token, 'POST', '/clients', { client_name: 'x', ...body });
    assertProblem(res, 400);
    assert.ok(failingFields(res).includes(field), `${JSON.stringify(body)} → ${failingFields(res).join(', ')}`);
  }
});

test('unknown roles or resource server are a 400 naming the field', async () => {
  const roles = await call(server, admin.token, 'POST', '/clients', { ...service, roles: ['no-such-role'] });
  assertProblem(roles, 400, 'no-such-role');
  assert.deepEqual(failingFields(roles), ['roles']);
  const rs = await call(server, admin.token, 'POST', '/clients', { ...service, resource_server: 'https://nope.test' });
  assertProblem(rs, 400);
  assert.deepEqual(failingFields(rs), ['resource_server']);
});

test('PATCH changes metadata, null clears a field, and the merged result must still be valid', async () => {
  const created = await call(server, admin.token, 'POST', '/clients', { ...service, scope: 'orders:read' });
  const id = created.body.client_id as string;
  const patched = await call(server, admin.token, 'PATCH', `/clients/${id}`, { client_name: 'Renamed', scope: null, first_party: true });
  assert.equal(patched.status, 200, patched.text);
  assert.equal(patched.body.client_name, 'Renamed');
  assert.equal(patched.body.scope, undefined);
  assert.equal(patched.body.first_party, true);
  assert.deepEqual(patched.body.roles, ['orders-reader'], 'untouched fields stay');
  const invalid = await call(server, admin.token, 'PATCH', `/clients/${id}`, { token_endpoint_auth_method: 'none' });
  assertProblem(invalid, 400);
  assert.deepEqual(failingFields(invalid), ['token_endpoint_auth_method']);
  assertProblem(await call(server, admin.token, 'PATCH', '/clients/does-not-exist', { client_name: 'x' }), 404);
});

test('PUT /clients/{id}/roles replaces the roles, and the next token carries them at once', async () => {
  const created = await call(server, admin.token, 'POST', '/clients', { client_name: 'Roles', grant_types: ['client_credentials'] });
  const { client_id, client_secret } = created.body as { client_id: string; client_secret: string };
  const first = await (await clientToken(server, client_id, client_secret, 'https://orders.test')).json() as { access_token: string };
  assert.deepEqual(decodeJwt(first.access_token).roles, []);
  const put = await call(server, admin.token, 'PUT', `/clients/${client_id}/roles`, { roles: ['orders-reader'] });
  assert.equal(put.status, 200, put.text);
  assert.deepEqual(put.body.roles, ['orders-reader']);
  const second = await (await clientToken(server, client_id, client_secret, 'https://orders.test')).json() as { access_token: string; scope?: string };
  assert.deepEqual(decodeJwt(second.access_token).roles, ['orders-reader']);
  assertProblem(await call(server, admin.token, 'PUT', `/clients/${client_id}/roles`, { roles: ['ghost'] }), 400, 'ghost');
  assertProblem(await call(server, admin.token, 'PUT', '/clients/nobody/roles', { roles: [] }), 404);
  assertProblem(await call(server, admin.token, 'PUT', `/clients/${client_id}/roles`, { roles: 'admin' }), 400);
});

test('POST /clients/{id}/secrets rotates: both secrets work during the overlap, the old one until its expiry', async () => {
  const created = await call(server, admin.token, 'POST', '/clients', service);
  const { client_id, client_secret: old } = created.body as { client_id: string; client_secret: string };
  const rotated = await call(server, admin.token, 'POST', `/clients/${client_id}/secrets`, { previous_secret_expires_in: 600 });
  assert.equal(rotated.status, 201, rotated.text);
  const expiresAt = Date.parse(rotated.body.previous_secret_expires_at);
  assert.ok(Math.abs(expiresAt - (Date.now() + 600_000)) < 30_000);
  assert.equal((await clientToken(server, client_id, old, 'https://orders.test')).status, 200);
  assert.equal((await clientToken(server, client_id, rotated.body.client_secret, 'https://orders.test')).status, 200);
  const view = await call(server, admin.token, 'GET', `/clients/${client_id}`);
  assert.equal(view.body.secrets.length, 2);

  const immediate = await call(server, admin.token, 'POST', `/clients/${client_id}/secrets`, { previous_secret_expires_in: 0 });
  assert.equal(immediate.status, 201);
  assert.equal((await clientToken(server, client_id, rotated.body.client_secret, 'https://orders.test')).status, 401);
  assert.equal((await clientToken(server, client_id, immediate.body.client_secret, 'https://orders.test')).status, 200);

  const defaulted = await call(server, admin.token, 'POST', `/clients/${client_id}/secrets`);
  assert.equal(defaulted.status, 201, 'the body is optional');
  assertProblem(await call(server, admin.token, 'POST', `/clients/${client_id}/secrets`, { previous_secret_expires_in: -1 }), 400);
  assertProblem(await call(server, admin.token, 'POST', '/clients/missing/secrets', {}), 404);
  const spa = await call(server, admin.token, 'POST', '/clients', { client_name: 'p', grant_types: ['authorization_code'], redirect_uris: ['https://a.example/cb'] });
  assertProblem(await call(server, admin.token, 'POST', `/clients/${spa.body.client_id}/secrets`, {}), 400, 'secret');
});

test('DELETE /clients/{id} removes the client (204), then 404; its secret stops working', async () => {
  const created = await call(server, admin.token, 'POST', '/clients', service);
  const { client_id, client_secret } = created.body as { client_id: string; client_secret: string };
  const res = await call(server, admin.token, 'DELETE', `/clients/${client_id}`);
  assert.equal(res.status, 204);
  assert.equal(res.text, '');
  assertProblem(await call(server, admin.token, 'GET', `/clients/${client_id}`), 404);
  assertProblem(await call(server, admin.token, 'DELETE', `/clients/${client_id}`), 404);
  assert.equal((await clientToken(server, client_id, client_secret, 'https://orders.test')).status, 401);
  assertProblem(await call(server, admin.token, 'GET', '/clients/%E2%9C%93'), 404, 'no such');
});

test('GET /clients paginates with an opaque cursor: a walk sees every client exactly once', async () => {
  for (let i = 0; i < 7; i += 1) await call(server, admin.token, 'POST', '/clients', { ...service, client_name: `page ${i}` });
  const total = await server.keyward.store.prisma.client.count();
  const seen: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const res: Awaited<ReturnType<typeof call>> = await call(server, admin.token, 'GET', `/clients?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
    assert.equal(res.status, 200, res.text);
    assert.ok(res.body.items.length <= 3);
    seen.push(...res.body.items.map((c: { client_id: string }) => c.client_id));
    cursor = res.body.next_cursor;
    pages += 1;
  } while (cursor);
  assert.equal(seen.length, total);
  assert.equal(new Set(seen).size, total);
  assert.ok(pages >= 3);
  assertProblem(await call(server, admin.token, 'GET', '/clients?cursor=garbage'), 400, 'cursor');
  assertProblem(await call(server, admin.token, 'GET', '/clients?limit=0'), 400);
  assertProblem(await call(server, admin.token, 'GET', '/clients?limit=201'), 400);
  assertProblem(await call(server, admin.token, 'GET', '/clients?bogus=1'), 400);
  const users = await call(server, admin.token, 'GET', `/users?cursor=${Buffer.from(JSON.stringify({ l: 'clients', k: 'x' })).toString('base64url')}`);
  assertProblem(users, 400, 'cursor');
});

test('every client change is an admin.change audit event with actor, subject and IP, and no secret', async () => {
  const created = await call(server, admin.token, 'POST', '/clients', service);
  const id = created.body.client_id as string;
  await call(server, admin.token, 'POST', `/clients/${id}/secrets`, {});
  await call(server, admin.token, 'PATCH', `/clients/${id}`, { client_name: 'audited' });
  await call(server, admin.token, 'PUT', `/clients/${id}/roles`, { roles: [] });
  await call(server, admin.token, 'DELETE', `/clients/${id}`);
  await server.keyward.audit.flush();
  const rows = await server.keyward.store.prisma.auditEvent.findMany({ where: { type: 'admin.change', subject: id }, orderBy: { id: 'asc' } });
  assert.deepEqual(rows.map((r) => (r.details as { action: string }).action),
    ['createClient', 'rotateClientSecret', 'updateClient', 'setClientRoles', 'deleteClient']);
  for (const row of rows) {
    assert.equal(row.actor, admin.clientId);
    assert.equal(row.outcome, 'success');
    assert.equal(row.ip, '127.0.0.1');
  }
  assert.deepEqual((rows[0]!.details as { fields: string[] }).fields, ['client_name', 'grant_types', 'roles']);
  const failed = await call(server, admin.token, 'DELETE', `/clients/${id}`);
  assert.equal(failed.status, 404);
  await server.keyward.audit.flush();
  const failure = await server.keyward.store.prisma.auditEvent.findFirst({ where: { subject: id, outcome: 'failure' } });
  assert.deepEqual(failure?.details, { action: 'deleteClient', status: 404 });
});

test('no client secret or hash appears in any response after creation, nor in any log line', async () => {
  await assertNoLeaks(server);
});

test('issue 10 F11: client_name with control or bidirectional-override characters is refused (what a consent page would show)', async () => {
  for (const name of ['Good\u202Eevil', 'Pay\u2066ments\u2069', 'line\nbreak', 'tab\there', 'nul\u0001x', 'sep\u2028x']) {
    const res = await call(server, admin.token, 'POST', '/clients', { ...service, client_name: name });
    assertProblem(res, 400);
    assert.deepEqual(failingFields(res), ['client_name'], JSON.stringify(name));
  }
  const ok = await call(server, admin.token, 'POST', '/clients', { ...service, client_name: 'Café ☕ 注文 مرحبا' });
  assert.equal(ok.status, 201, ok.text);
});

test('issue 10 F11: a jwks_uri on a private or loopback address is refused with a clear problem (oidc-provider never fetches it), unless KEYWARD_ALLOW_PRIVATE_JWKS_URI', async () => {
  const keyClient = (jwks_uri: string) => ({ client_name: 'k', grant_types: ['client_credentials'], token_endpoint_auth_method: 'private_key_jwt', jwks_uri });
  for (const uri of ['http://127.0.0.1:9/jwks', 'https://10.1.2.3/jwks', 'https://192.168.0.10/jwks', 'https://[::1]/jwks', 'https://169.254.169.254/latest', 'http://localhost:8080/jwks', 'https://[::ffff:10.0.0.1]/jwks']) {
    const res = await call(server, admin.token, 'POST', '/clients', keyClient(uri));
    assertProblem(res, 400, 'KEYWARD_ALLOW_PRIVATE_JWKS_URI');
    assert.deepEqual(failingFields(res), ['jwks_uri'], uri);
  }
  assert.equal((await call(server, admin.token, 'POST', '/clients', keyClient('https://keys.example.com/jwks'))).status, 201);
  // Its own store: PGlite serves one process, and the setting is per deployment anyway.
  const otherDb = await createTestDatabase();
  const allowing = await startServer(otherDb, { KEYWARD_ALLOW_PRIVATE_JWKS_URI: 'true' });
  try {
    const other = await adminClient(allowing);
    const res = await call(allowing, other.token, 'POST', '/clients', keyClient('https://10.1.2.3/jwks'));
    assert.equal(res.status, 201, res.text);
  } finally {
    await allowing.stop();
    await otherDb.drop();
  }
});
