/**
 * Keyward's cache of oidc-provider Client objects (src/oidc/client-instances.ts, served through
 * overrides/client-find.ts): one Client per client across requests and past oidc-provider's own
 * 100, coherent with every client change at once on this instance, and carried over to the
 * provider a key rotation builds. Across instances: test/oidc/cache-invalidation.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import Router from '@koa/router';
import { directProviderPaths } from '../../src/http/routes.ts';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';
import { basic, ORDERS, postForm, seedOrders } from './service-fixtures.ts';

let db: TestDatabase;
let server: TestServer;

before(async () => {
  db = await createTestDatabase();
  server = await startServer(db);
  await seedOrders(server.keyward);
});
after(async () => {
  await server?.stop();
  await db?.drop();
});

interface Svc {
  id: string;
  secret: string;
}

async function service(name: string): Promise<Svc> {
  const { client, client_secret } = await server.keyward.clients.create({ client_name: name, grant_types: ['client_credentials'], roles: ['orders-reader'] });
  return { id: client.client_id, secret: client_secret! };
}

function token(svc: Svc): ReturnType<typeof postForm> {
  return postForm(server.url, '/token', { grant_type: 'client_credentials', resource: ORDERS, scope: 'orders:read' }, { authorization: basic(svc.id, svc.secret) });
}

test('RFC 6749 §4.4: 120 clients round-robin (past oidc-provider\'s own 100) each build their Client once, then every token reuses it', async () => {
  const svcs: Svc[] = [];
  for (let i = 0; i < 120; i += 20) svcs.push(...await Promise.all(Array.from({ length: 20 }, (_, j) => service(`fleet-${i + j}`))));
  for (const svc of svcs) assert.equal((await token(svc)).status, 200);
  // On a loaded machine the change feed may miss its own probe and revalidate every cache
  // (store/changes.ts), which rightly empties this one too: such a round is run again.
  let revalidated = false;
  server.keyward.changes.subscribe((change) => { if (change.kind === 'client') revalidated = true; });
  let warm = server.keyward.clientInstances.stats();
  let after = warm;
  for (let attempt = 0; attempt < 3; attempt++) {
    revalidated = false;
    warm = server.keyward.clientInstances.stats();
    for (const svc of svcs) assert.equal((await token(svc)).status, 200);
    after = server.keyward.clientInstances.stats();
    if (!revalidated) break;
  }
  assert.equal(revalidated, false, 'three rounds in a row saw the caches revalidated');
  assert.equal(after.misses, warm.misses, 'no Client built again on the second round');
  assert.ok(after.hits - warm.hits >= 120, `every token found its Client cached (${after.hits - warm.hits} hits)`);
  assert.ok(after.size >= 120);
});

test('RFC 6749 §5.2: a client disabled, or its grant types changed, is refused by the very next request on this instance', async () => {
  const svc = await service('changing');
  assert.equal((await token(svc)).status, 200);
  assert.equal((await token(svc)).status, 200, 'cached');

  await server.keyward.clients.update(svc.id, { disabled: true });
  const refused = await token(svc);
  assert.equal(refused.status, 401);
  assert.equal(refused.json?.error, 'invalid_client');

  await server.keyward.clients.update(svc.id, { disabled: false });
  assert.equal((await token(svc)).status, 200, 'enabled again at once');

  await server.keyward.clients.update(svc.id, { grant_types: ['authorization_code'], redirect_uris: ['https://app.example/cb'] });
  const denied = await token(svc);
  assert.equal(denied.status, 400);
  assert.equal(denied.json?.error, 'unauthorized_client', 'the new metadata, not the cached Client, decides');
});

test('a key rotation hands the new provider the clients the old one served: its first token builds no Client', async () => {
  const svc = await service('rotating');
  assert.equal((await token(svc)).status, 200);
  const before = server.keyward.provider.current;
  await server.keyward.reloadKeys();
  assert.notEqual(server.keyward.provider.current, before, 'a new Provider instance serves');
  const warmed = server.keyward.clientInstances.stats();
  assert.ok(warmed.size >= 1, 'the new provider\'s cache is filled before it serves');
  assert.equal((await token(svc)).status, 200);
  assert.equal(server.keyward.clientInstances.stats().misses, warmed.misses, 'the first token after the rotation found its Client');

  // And a change still reaches the new instance's cache.
  await server.keyward.clients.update(svc.id, { disabled: true });
  assert.equal((await token(svc)).status, 401);
});

test('the token endpoints go straight to oidc-provider unless a Keyward router has a layer on their path', () => {
  assert.deepEqual([...directProviderPaths([])], ['/token', '/token/introspection', '/token/revocation']);
  const claiming = new Router();
  claiming.get('/token/revocation', (ctx) => { ctx.body = 'mine'; });
  const everywhere = new Router();
  everywhere.use((_ctx, next) => next());
  assert.deepEqual([...directProviderPaths([claiming])], ['/token', '/token/introspection']);
  assert.deepEqual([...directProviderPaths([everywhere])], []);
});
