import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { z } from 'zod';
import { adminRouteTable } from '../../src/admin/router.ts';
import type { AdminRoute } from '../../src/admin/route.ts';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';
import { adminClient, call, type AdminClient } from './support.ts';

let db: TestDatabase;
let server: TestServer;
let admin: AdminClient;
let routes: AdminRoute[];
const ids: Record<string, string> = {};

before(async () => {
  db = await createTestDatabase();
  server = await startServer(db);
  admin = await adminClient(server);
  const { keyward } = server;
  routes = adminRouteTable({ ...keyward, issuer: server.url, logger: server.logs.logger, now: () => new Date() })
    .filter((r) => r.body);
  // Targets of their own, so that a random valid body cannot disable the admin client.
  await keyward.roles.create({ name: 'fuzz-role' });
  ids.client_id = (await keyward.clients.create({ client_name: 'fuzz target', grant_types: ['client_credentials'] })).client.client_id;
  ids.userId = (await keyward.users.create({ username: 'fuzz-user', password: 'fuzz target password' })).id;
  ids.resourceId = (await keyward.resources.create({ identifier: 'https://fuzz.example' })).id;
});
after(async () => {
  await server?.stop();
  await db?.drop();
});

function pathOf(route: AdminRoute): string {
  return route.path
    .replace('{client_id}', ids.client_id!)
    .replace('{name}', 'fuzz-role')
    .replace('{id}', route.path.startsWith('/users') ? ids.userId! : ids.resourceId!);
}

/** Random JSON, and objects built from the route's own field names with random values. */
function shapes(route: AdminRoute): fc.Arbitrary<string> {
  const schema = z.toJSONSchema(route.body!, { io: 'input', unrepresentable: 'any' }) as { properties?: Record<string, unknown> };
  const fields = Object.keys(schema.properties ?? {});
  const value = fc.oneof(
    fc.jsonValue({ maxDepth: 3 }),
    fc.string({ maxLength: 3000 }),
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.webUrl({ withFragments: true, withQueryParameters: true }),
    fc.constantFrom('javascript:alert(1)', 'http://evil.example/cb', 'admin', '', -1, 1e308, null, ['admin'], { keys: [] }),
    fc.array(fc.oneof(fc.string(), fc.webUrl(), fc.integer()), { maxLength: 60 }),
  );
  const keys = fc.constantFrom(...fields, '__proto__', 'constructor', 'client_secret', 'password_hash');
  return fc.oneof(
    fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
    fc.dictionary(keys, value, { maxKeys: 8 }).map((v) => JSON.stringify(v)),
    fc.string({ maxLength: 200 }),
  );
}

test('random JSON shapes at every POST/PATCH/PUT route: a 4xx problem+json whenever the schema refuses it, never a 5xx', async () => {
  assert.ok(routes.length >= 12);
  for (const route of routes) {
    await fc.assert(
      fc.asyncProperty(shapes(route), async (raw) => {
        let parsed: unknown;
        try {
          // An empty body reads as {} (every field of some bodies is optional).
          parsed = raw.trim() === '' ? {} : JSON.parse(raw);
        } catch {
          parsed = undefined;
        }
        const valid = parsed !== undefined && route.body!.safeParse(parsed).success;
        // A valid rotation would really rotate (an emergency one would retire the admin's own key).
        fc.pre(!(valid && route.operationId === 'rotateKeys'));
        const res = await call(server, admin.token, route.method.toUpperCase(), pathOf(route), raw);
        assert.ok(res.status < 500, `${route.operationId} ${raw} → ${res.status} ${res.text}`);
        if (!valid) {
          assert.equal(res.status, 400, `${route.operationId} ${raw} → ${res.status} ${res.text}`);
        }
        if (res.status >= 400) {
          assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
          assert.equal(res.body.status, res.status);
        }
      }),
      { numRuns: 30 },
    );
  }
  const errors = server.logs.errors();
  assert.deepEqual(errors, [], 'no request failed unexpectedly');
});
