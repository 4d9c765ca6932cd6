import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { verifyPassword } from '../../src/identity/passwords.ts';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';
import { adminClient, assertNoLeaks, assertProblem, call, failingFields, type AdminClient, type Call } from './support.ts';

let db: TestDatabase;
let server: TestServer;
let admin: AdminClient;
const PASSWORD = 'correct horse battery staple';
const NEW_PASSWORD = 'another long passphrase 42';

before(async () => {
  db = await createTestDatabase();
  server = await startServer(db);
  admin = await adminClient(server);
});
after(async () => {
  await server?.stop();
  await db?.drop();
});

async function walk(path: string, limit: number): Promise<unknown[]> {
  const items: unknown[] = [];
  let cursor: string | null = null;
  do {
    const res: Call = await call(server, admin.token, 'GET', `${path}?limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
    assert.equal(res.status, 200, res.text);
    items.push(...res.body.items);
    cursor = res.body.next_cursor;
  } while (cursor);
  return items;
}

test('roles: create (201), read, list, patch permissions, duplicate 409, unknown 404', async () => {
  const created = await call(server, admin.token, 'POST', '/roles', { name: 'orders-reader', description: 'Reads orders', permissions: ['orders:read'] });
  assert.equal(created.status, 201, created.text);
  assert.deepEqual({ ...created.body, created_at: 0, updated_at: 0 }, { name: 'orders-reader', description: 'Reads orders', permissions: ['orders:read'], resource: null, created_at: 0, updated_at: 0 });
  assertProblem(await call(server, admin.token, 'POST', '/roles', { name: 'orders-reader' }), 409, 'already exists');
  assert.equal((await call(server, admin.token, 'GET', '/roles/orders-reader')).body.description, 'Reads orders');
  const patched = await call(server, admin.token, 'PATCH', '/roles/orders-reader', { permissions: ['orders:read', 'orders:list'] });
  assert.deepEqual(patched.body.permissions, ['orders:read', 'orders:list']);
  assertProblem(await call(server, admin.token, 'GET', '/roles/ghost'), 404);
  assertProblem(await call(server, admin.token, 'PATCH', '/roles/ghost', { description: 'x' }), 404);
  assertProblem(await call(server, admin.token, 'GET', '/roles/NOT_VALID'), 404);
  const invalid = await call(server, admin.token, 'POST', '/roles', { name: 'Bad Name', permissions: ['has space'] });
  assertProblem(invalid, 400);
  assert.deepEqual(failingFields(invalid).sort(), ['name', 'permissions[0]']);
  assertProblem(await call(server, admin.token, 'POST', '/roles', { name: 'many', permissions: Array.from({ length: 101 }, (_, i) => `p${i}`) }), 400);
});

test('roles: the built-in admin roles cannot be deleted (409); others can (204, then 404)', async () => {
  assertProblem(await call(server, admin.token, 'DELETE', '/roles/admin'), 409, 'built in');
  assertProblem(await call(server, admin.token, 'DELETE', '/roles/admin:read'), 409);
  await call(server, admin.token, 'POST', '/roles', { name: 'temp' });
  assert.equal((await call(server, admin.token, 'DELETE', '/roles/temp')).status, 204);
  assertProblem(await call(server, admin.token, 'DELETE', '/roles/temp'), 404);
});

test('users: create hashes the password with argon2id and never returns it', async () => {
  const res = await call(server, admin.token, 'POST', '/users', { username: 'alice', email: 'alice@example.com', name: 'Alice', password: PASSWORD, roles: ['orders-reader'] });
  assert.equal(res.status, 201, res.text);
  assert.match(res.body.id, /^[0-9a-f-]{36}$/);
  assert.deepEqual(res.body.roles, ['orders-reader']);
  assert.equal(res.body.password, undefined);
  assert.ok(!res.text.includes('argon2'));
  const row = await server.keyward.store.prisma.user.findUniqueOrThrow({ where: { id: res.body.id } });
  assert.match(row.passwordHash, /^\$argon2id\$/);
  assert.ok(await verifyPassword(row.passwordHash, PASSWORD));
  assertProblem(await call(server, admin.token, 'POST', '/users', { username: 'alice', password: PASSWORD }), 409);
  const invalid = await call(server, admin.token, 'POST', '/users', { username: 'bob', password: 'short', email: 'not-an-email' });
  assertProblem(invalid, 400);
  assert.deepEqual(failingFields(invalid).sort(), ['email', 'password']);
  assertProblem(await call(server, admin.token, 'POST', '/users', { username: 'carol', password: PASSWORD, roles: ['ghost'] }), 400, 'ghost');
});

test('users: read, patch (password re-hashed, null clears), PUT roles, delete; bad ids are 404', async () => {
  const { body: user } = await call(server, admin.token, 'POST', '/users', { username: 'dave', password: PASSWORD, email: 'd@example.com' });
  assert.equal((await call(server, admin.token, 'GET', `/users/${user.id}`)).body.username, 'dave');
  const patched = await call(server, admin.token, 'PATCH', `/users/${user.id}`, { email: null, name: 'Dave', password: NEW_PASSWORD, disabled: true });
  assert.equal(patched.status, 200, patched.text);
  assert.equal(patched.body.email, null);
  assert.equal(patched.body.disabled, true);
  const row = await server.keyward.store.prisma.user.findUniqueOrThrow({ where: { id: user.id } });
  assert.ok(await verifyPassword(row.passwordHash, NEW_PASSWORD));
  assertProblem(await call(server, admin.token, 'PATCH', `/users/${user.id}`, { username: 'alice' }), 409);
  const roles = await call(server, admin.token, 'PUT', `/users/${user.id}/roles`, { roles: ['orders-reader', 'admin:read'] });
  assert.deepEqual(roles.body.roles, ['admin:read', 'orders-reader']);
  assert.deepEqual(await server.keyward.users.rolesOf(user.id), ['admin:read', 'orders-reader']);
  assertProblem(await call(server, admin.token, 'PUT', `/users/${user.id}/roles`, { roles: ['ghost'] }), 400);
  assert.equal((await call(server, admin.token, 'DELETE', `/users/${user.id}`)).status, 204);
  for (const id of [user.id, 'not-a-uuid', '00000000-0000-0000-0000-000000000000']) {
    assertProblem(await call(server, admin.token, 'GET', `/users/${id}`), 404);
    assertProblem(await call(server, admin.token, 'PATCH', `/users/${id}`, { name: 'x' }), 404);
    assertProblem(await call(server, admin.token, 'PUT', `/users/${id}/roles`, { roles: [] }), 404);
    assertProblem(await call(server, admin.token, 'DELETE', `/users/${id}`), 404);
  }
});

test('issue 10 F4: usernames are case-insensitive: stored lowercased, a name differing only by case is 409 on create and on rename', async () => {
  const created = await call(server, admin.token, 'POST', '/users', { username: 'Erin.Case', password: PASSWORD });
  assert.equal(created.status, 201, created.text);
  assert.equal(created.body.username, 'erin.case');
  assertProblem(await call(server, admin.token, 'POST', '/users', { username: 'ERIN.case', password: PASSWORD }), 409, 'erin.case');
  const { body: other } = await call(server, admin.token, 'POST', '/users', { username: 'frank', password: PASSWORD });
  assertProblem(await call(server, admin.token, 'PATCH', `/users/${other.id}`, { username: 'Erin.CASE' }), 409);
  const renamed = await call(server, admin.token, 'PATCH', `/users/${other.id}`, { username: 'Frank.Ocean' });
  assert.equal(renamed.status, 200, renamed.text);
  assert.equal(renamed.body.username, 'frank.ocean');
  const rows = await server.keyward.store.prisma.user.findMany({ where: { id: { in: [created.body.id, other.id] } }, select: { username: true }, orderBy: { username: 'asc' } });
  assert.deepEqual(rows.map((r) => r.username), ['erin.case', 'frank.ocean']);
});

test('resources: create, read, patch, duplicate identifier 409, delete; the admin API itself is protected', async () => {
  const created = await call(server, admin.token, 'POST', '/resources', { identifier: 'https://orders.internal', name: 'Orders', scopes: ['orders:read'], access_token_ttl: 300, signing_alg: 'RS256' });
  assert.equal(created.status, 201, created.text);
  assert.equal(created.body.signing_alg, 'RS256');
  assert.equal(created.body.access_token_ttl, 300);
  assertProblem(await call(server, admin.token, 'POST', '/resources', { identifier: 'https://orders.internal' }), 409);
  const id = created.body.id as string;
  assert.equal((await call(server, admin.token, 'GET', `/resources/${id}`)).body.identifier, 'https://orders.internal');
  const patched = await call(server, admin.token, 'PATCH', `/resources/${id}`, { scopes: ['orders:read', 'orders:write'] });
  assert.deepEqual(patched.body.scopes, ['orders:read', 'orders:write']);
  assert.deepEqual((await server.keyward.resources.byIdentifier('https://orders.internal'))?.scopes, ['orders:read', 'orders:write'], 'the token-endpoint cache follows');
  for (const identifier of ['not a uri', 'https://x.example/#frag', 'javascript:alert(1)', 'https://*.example']) {
    const res = await call(server, admin.token, 'POST', '/resources', { identifier });
    assertProblem(res, 400);
    assert.deepEqual(failingFields(res), ['identifier']);
  }
  assertProblem(await call(server, admin.token, 'POST', '/resources', { identifier: 'https://a.example', access_token_ttl: 10 ** 9, signing_alg: 'HS256' }), 400);
  const adminResource = (await server.keyward.store.prisma.resourceServer.findUniqueOrThrow({ where: { identifier: `${server.url}/admin` } })).id;
  assertProblem(await call(server, admin.token, 'DELETE', `/resources/${adminResource}`), 409, 'admin');
  assertProblem(await call(server, admin.token, 'PATCH', `/resources/${adminResource}`, { identifier: 'https://x.example' }), 409);
  assert.equal((await call(server, admin.token, 'DELETE', `/resources/${id}`)).status, 204);
  assertProblem(await call(server, admin.token, 'GET', `/resources/${id}`), 404);
  assert.equal(await server.keyward.resources.byIdentifier('https://orders.internal'), undefined);
});

test('users, roles and resources paginate: a walk sees every item exactly once', async () => {
  for (let i = 0; i < 5; i += 1) {
    await call(server, admin.token, 'POST', '/users', { username: `walker${i}`, password: PASSWORD });
    await call(server, admin.token, 'POST', '/roles', { name: `walker-${i}` });
    await call(server, admin.token, 'POST', '/resources', { identifier: `https://walker${i}.example` });
  }
  const prisma = server.keyward.store.prisma;
  for (const [path, count, key] of [
    ['/users', await prisma.user.count(), 'id'], ['/roles', await prisma.role.count(), 'name'], ['/resources', await prisma.resourceServer.count(), 'id'],
  ] as const) {
    const items = (await walk(path, 2)) as Record<string, string>[];
    assert.equal(items.length, count, path);
    assert.equal(new Set(items.map((i) => i[key])).size, count, path);
  }
});

test('changes to users, roles and resources are audited with the acting client as actor', async () => {
  await server.keyward.audit.flush();
  const rows = await server.keyward.store.prisma.auditEvent.findMany({ where: { type: 'admin.change', outcome: 'success' } });
  const actions = new Set(rows.map((r) => (r.details as { action: string }).action));
  for (const action of ['createRole', 'updateRole', 'deleteRole', 'createUser', 'updateUser', 'setUserRoles', 'deleteUser', 'createResource', 'updateResource', 'deleteResource']) {
    assert.ok(actions.has(action), action);
  }
  assert.ok(rows.every((r) => r.actor === admin.clientId));
  assert.ok(rows.every((r) => !JSON.stringify(r.details).includes(PASSWORD)));
});

test('no password, hash or secret appears in any response or log line', async () => {
  await assertNoLeaks(server, [PASSWORD, NEW_PASSWORD]);
});
