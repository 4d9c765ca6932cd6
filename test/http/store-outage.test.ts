import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { basic, ORDERS, postForm, seedOrders } from '../oidc/service-fixtures.ts';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';
import { TcpProxy } from '../support/tcp-proxy.ts';

/**
 * Issue 11, items 2-4 and DESIGN "Running in production": while the database cannot be
 * reached (here: the network to it is cut), requests that need it fail fast with 503 and the
 * RFC's `temporarily_unavailable`, the admin API with problem+json, what needs no store keeps
 * working, /readyz follows the outage, and the same process serves everything again when the
 * database is back. The real-cluster version (stopped PostgreSQL, real processes) is in
 * test/faults/.
 */
const postgres = Boolean(process.env.DATABASE_URL);
const skip = postgres ? false : 'a database behind a network needs PostgreSQL (PGlite is in-process)';

let db: TestDatabase;
let proxy: TcpProxy;
let server: TestServer;
let warm: { id: string; secret: string };
let cold: { id: string; secret: string };
let browser: string;
let adminToken: string;
const ADMIN_ID = 'outage-admin';
const ADMIN_SECRET = randomBytes(32).toString('base64url');

before(async () => {
  if (!postgres) return;
  db = await createTestDatabase();
  const url = new URL(db.url!);
  proxy = await TcpProxy.start({ host: url.hostname, port: Number(url.port || 5432) });
  url.host = `127.0.0.1:${proxy.port}`;
  server = await startServer(db, {
    DATABASE_URL: url.toString(), KEYWARD_BOOTSTRAP_ADMIN_CLIENT_ID: ADMIN_ID, KEYWARD_BOOTSTRAP_ADMIN_CLIENT_SECRET: ADMIN_SECRET,
  });
  await seedOrders(server.keyward);
  const service = async (name: string) => {
    const { client, client_secret } = await server.keyward.clients.create({
      client_name: name, grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic', roles: ['orders-reader'],
    });
    return { id: client.client_id, secret: client_secret! };
  };
  warm = await service('warm');
  cold = await service('cold');
  const { client } = await server.keyward.clients.create({
    client_name: 'browser app', grant_types: ['authorization_code'], token_endpoint_auth_method: 'none', redirect_uris: ['https://app.example/cb'],
  });
  browser = client.client_id;
  const admin = await postForm(server.url, '/token', { grant_type: 'client_credentials', resource: `${server.url}/admin` }, { authorization: basic(ADMIN_ID, ADMIN_SECRET) });
  adminToken = admin.json!.access_token as string;
});
after(async () => {
  await proxy?.restore().catch(() => undefined);
  await server?.stop();
  await proxy?.close();
  await db?.drop();
});

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - started };
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < timeoutMs) {
    if (await check()) return performance.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

const token = (client: { id: string; secret: string }) =>
  postForm(server.url, '/token', { grant_type: 'client_credentials', resource: ORDERS, scope: 'orders:read' }, { authorization: basic(client.id, client.secret) });

test('store unreachable: 503 temporarily_unavailable within 3 s where the store is needed, warm tokens, JWKS and discovery keep answering, /readyz 503 within 5 s; all back after', { skip }, async () => {
  const before = await token(warm);
  assert.equal(before.status, 200, before.text);
  const issued = before.json!.access_token as string;

  await proxy.cut();
  try {
    const readyMs = await until('/readyz 503', async () => (await fetch(`${server.url}/readyz`)).status === 503, 5_000);
    const ready = await fetch(`${server.url}/readyz`);
    assert.deepEqual(((await ready.json()) as { checks: unknown }).checks, { store: 'unreachable', keys: 'ok' });
    assert.ok(readyMs < 5_000);
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);

    // RFC 6749 §5.2 / §4.1.2.1: a client whose record is not cached cannot be authenticated now.
    const coldToken = await timed(() => token(cold));
    assert.equal(coldToken.value.status, 503, coldToken.value.text);
    assert.equal(coldToken.value.json?.error, 'temporarily_unavailable');
    assert.equal(coldToken.value.headers.get('retry-after'), '2');
    assert.ok(coldToken.ms < 3_000, `${coldToken.ms} ms`);

    // A JWT's revocation state lives in the store: introspection and revocation cannot answer.
    for (const path of ['/token/introspection', '/token/revocation']) {
      const res = await timed(() => postForm(server.url, path, { token: issued }, { authorization: basic(warm.id, warm.secret) }));
      assert.equal(res.value.status, 503, `${path}: ${res.value.text}`);
      assert.equal(res.value.json?.error, 'temporarily_unavailable', path);
      assert.ok(res.ms < 3_000, `${path} ${res.ms} ms`);
    }

    // The authorization endpoint for a client not in the cache: no redirect target is known.
    const verifier = randomBytes(32).toString('base64url');
    const auth = await timed(() => fetch(`${server.url}/auth?${new URLSearchParams({
      client_id: browser, response_type: 'code', redirect_uri: 'https://app.example/cb', scope: 'openid',
      code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256',
    })}`, { redirect: 'manual', headers: { accept: 'application/json' } }));
    assert.equal(auth.value.status, 503, await auth.value.text());
    assert.ok(auth.ms < 3_000);

    const admin = await timed(() => fetch(`${server.url}/admin/v1/clients`, { headers: { authorization: `Bearer ${adminToken}` } }));
    assert.equal(admin.value.status, 503);
    assert.match(admin.value.headers.get('content-type') ?? '', /application\/problem\+json/);
    assert.equal(((await admin.value.json()) as { status: number }).status, 503);
    assert.ok(admin.ms < 3_000);

    // Needs no round trip: the warm client's next token, the key set, discovery.
    assert.equal((await token(warm)).status, 200);
    assert.equal((await fetch(`${server.url}/jwks`)).status, 200);
    assert.equal((await fetch(`${server.url}/.well-known/openid-configuration`)).status, 200);

    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /keyward_store_errors_total\{kind="request"\} [1-9]/);
  } finally {
    await proxy.restore();
  }

  const readyAgainMs = await until('/readyz 200', async () => (await fetch(`${server.url}/readyz`)).status === 200, 5_000);
  assert.ok(readyAgainMs < 5_000);
  await until('everything served again', async () => {
    const [c, admin] = await Promise.all([
      token(cold),
      fetch(`${server.url}/admin/v1/clients`, { headers: { authorization: `Bearer ${adminToken}` } }),
    ]);
    return c.status === 200 && admin.status === 200;
  }, 15_000);
  // LISTEN comes back on its own schedule (backoff up to 2 s), not necessarily before the pool.
  await until('LISTEN re-established', async () =>
    /keyward_listen_reconnects_total\{channel="changes"\} [1-9]/.test(await (await fetch(`${server.url}/metrics`)).text()), 5_000);
});
