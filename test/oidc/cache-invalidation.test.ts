import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';
import { basic, ORDERS, postForm, seedOrders } from './service-fixtures.ts';

// Two Keyward processes' worth of state (each its own pool, caches and LISTEN connection) on
// one PostgreSQL database. PGlite is an in-process, single-instance store: nothing to share.
const postgres = !!process.env.DATABASE_URL;
let db: TestDatabase;
let a: TestServer;
let b: TestServer;

before(async () => {
  if (!postgres) return;
  db = await createTestDatabase();
  a = await startServer(db);
  b = await startServer(db);
  await seedOrders(a.keyward);
});
after(async () => {
  await b?.stop();
  await a?.stop();
  await db?.drop();
});

async function grant(server: TestServer, client: { id: string; secret: string }, params: Record<string, string>): Promise<Awaited<ReturnType<typeof postForm>>> {
  return postForm(server.url, '/token', { grant_type: 'client_credentials', ...params }, { authorization: basic(client.id, client.secret) });
}

/** Polls until `check` holds; NOTIFY is asynchronous but arrives within milliseconds. */
async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    if (await check()) return;
    await sleep(100);
  }
  assert.fail(`not observed within 5 s: ${what}`);
}

// On PGlite there is no second instance to reach: registered anyway and reported as skipped.
const pgTest = (name: string, fn: () => Promise<void>): void => {
  test(name, { skip: postgres ? false : 'needs PostgreSQL (LISTEN/NOTIFY across instances)' }, fn);
};

pgTest('hot path across instances: a client disabled on one instance is refused by the other (LISTEN/NOTIFY)', async () => {
  const { client, client_secret } = await a.keyward.clients.create({ client_name: 'svc', grant_types: ['client_credentials'], roles: ['orders-reader'] });
  const svc = { id: client.client_id, secret: client_secret! };
  assert.equal((await grant(b, svc, { resource: ORDERS })).status, 200);

  await a.keyward.store.prisma.client.update({ where: { clientId: svc.id }, data: { disabled: true } });
  assert.equal((await grant(b, svc, { resource: ORDERS })).status, 200, 'instance B serves its cached record until told');
  await a.keyward.changes.publish({ kind: 'client', id: svc.id });
  await eventually(async () => (await grant(b, svc, { resource: ORDERS })).status === 401, 'B refuses the disabled client');
});

pgTest('hot path across instances: role permissions and new resource servers reach the other instance', async () => {
  const { client, client_secret } = await a.keyward.clients.create({ client_name: 'svc2', grant_types: ['client_credentials'], roles: ['orders-writer'] });
  const svc = { id: client.client_id, secret: client_secret! };
  assert.equal((await grant(b, svc, { resource: ORDERS, scope: 'orders:read orders:write' })).json?.scope, 'orders:write');

  await a.keyward.store.prisma.role.update({ where: { name: 'orders-writer' }, data: { permissions: ['orders:write', 'orders:read'] } });
  await a.keyward.changes.publish({ kind: 'role', id: 'orders-writer' });
  await eventually(async () => (await grant(b, svc, { resource: ORDERS, scope: 'orders:read orders:write' })).json?.scope === 'orders:read orders:write', 'B grants the new permission');

  assert.equal((await grant(b, svc, { resource: 'https://shipping.internal' })).json?.error, 'invalid_target');
  await a.keyward.resources.ensure({ identifier: 'https://shipping.internal', scopes: [] });
  await eventually(async () => (await grant(b, svc, { resource: 'https://shipping.internal' })).status === 200, 'B knows the new API');
});
