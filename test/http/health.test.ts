import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';

let db: TestDatabase;
let server: TestServer;

before(async () => {
  db = await createTestDatabase();
  server = await startServer(db);
});
after(async () => {
  await server?.stop();
  await db?.drop();
});

test('/healthz answers 200 while the process is up', async () => {
  const res = await fetch(`${server.url}/healthz`);
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { status: 'ok' });
});

test('/readyz reports the store reachable and keys loaded', async () => {
  const res = await fetch(`${server.url}/readyz`);
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { status: 'ready', checks: { store: 'ok', keys: 'ok' } });
});

test('/readyz is 503 while the served key set has no active (signing) key, and 200 again once one is loaded', async () => {
  const { keyward } = server;
  // Behind the services' back, as a broken rotation would leave it: every live key retired.
  await keyward.store.sql.query("UPDATE signing_keys SET state = 'retired', retired_at = now(), encrypted_jwk = NULL WHERE state <> 'retired'");
  try {
    await keyward.reloadKeys();
    const res = await fetch(`${server.url}/readyz`);
    assert.equal(res.status, 503);
    const missing = keyward.config.signingAlgs.join(', ');
    assert.deepEqual(await res.json(), { status: 'not ready', checks: { store: 'ok', keys: `no active key for ${missing}` } });
  } finally {
    for (const alg of keyward.config.signingAlgs) await keyward.keys.create(alg, 'active', () => new Date());
    await keyward.reloadKeys();
  }
  const res = await fetch(`${server.url}/readyz`);
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { status: 'ready', checks: { store: 'ok', keys: 'ok' } });
});

test('/readyz is 503 when one configured algorithm has no active key in the running provider, even though another still signs', async () => {
  const { keyward } = server;
  assert.ok(keyward.config.signingAlgs.includes('ES256') && keyward.config.signingAlgs.length > 1);
  // Only ES256 loses its signing key; RS256 keeps signing, so "some key is active" is not enough.
  await keyward.store.sql.query("UPDATE signing_keys SET state = 'retired', retired_at = now(), encrypted_jwk = NULL WHERE alg = 'ES256' AND state = 'active'");
  try {
    await keyward.reloadKeys();
    const res = await fetch(`${server.url}/readyz`);
    assert.equal(res.status, 503);
    assert.deepEqual(await res.json(), { status: 'not ready', checks: { store: 'ok', keys: 'no active key for ES256' } });
  } finally {
    await keyward.keys.create('ES256', 'active', () => new Date());
    await keyward.reloadKeys();
  }
  assert.equal((await fetch(`${server.url}/readyz`)).status, 200);
});

test('/readyz follows the running provider: a stored active key not yet loaded does not make it ready', async () => {
  const { keyward } = server;
  await keyward.store.sql.query("UPDATE signing_keys SET state = 'retired', retired_at = now(), encrypted_jwk = NULL WHERE alg = 'RS256' AND state = 'active'");
  await keyward.reloadKeys();
  assert.equal((await fetch(`${server.url}/readyz`)).status, 503);
  // In the store again, but the provider serving requests was built without it.
  await keyward.keys.create('RS256', 'active', () => new Date());
  assert.equal((await fetch(`${server.url}/readyz`)).status, 503);
  await keyward.reloadKeys();
  assert.equal((await fetch(`${server.url}/readyz`)).status, 200);
});

test('/metrics serves Prometheus text with process metrics and the request histogram by route and status', async () => {
  await fetch(`${server.url}/.well-known/openid-configuration`);
  const res = await fetch(`${server.url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
  const text = await res.text();
  assert.match(text, /keyward_process_resident_memory_bytes/);
  assert.match(text, /keyward_http_request_duration_seconds_bucket\{[^}]*route="\/\.well-known\/openid-configuration"[^}]*status="200"/);
});

test('issue 10 F11: /metrics shows no version details, and with KEYWARD_METRICS_TOKEN answers only that bearer token', async () => {
  assert.doesNotMatch(await (await fetch(`${server.url}/metrics`)).text(), /version_info|version="/);
  const token = 'metrics-scraper-token-0123456789';
  const guardedDb = await createTestDatabase(); // PGlite serves one process per store
  const guarded = await startServer(guardedDb, { KEYWARD_METRICS_TOKEN: token });
  try {
    for (const authorization of [undefined, 'Bearer wrong-token-0123456789abcd', `Basic ${Buffer.from(`scraper:${token}`).toString('base64')}`, `Bearer ${token}x`]) {
      const res = await fetch(`${guarded.url}/metrics`, { headers: authorization ? { authorization } : {} });
      assert.equal(res.status, 401, authorization);
      assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/);
      assert.doesNotMatch(await res.text(), /keyward_/);
    }
    const res = await fetch(`${guarded.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    assert.match(await res.text(), /keyward_process_resident_memory_bytes/);
  } finally {
    await guarded.stop();
    await guardedDb.drop();
  }
});

test('/metrics shows the database pool, store errors, LISTEN reconnects and the signing keys\' age and next rotation', async () => {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  for (const alg of server.keyward.config.signingAlgs) {
    assert.match(text, new RegExp(`keyward_signing_key_age_seconds\\{alg="${alg}"\\} \\d`));
    assert.match(text, new RegExp(`keyward_signing_key_next_rotation_seconds\\{alg="${alg}"\\} \\d`));
  }
  assert.match(text, /# TYPE keyward_store_errors_total counter/);
  assert.match(text, /# TYPE keyward_listen_reconnects_total counter/);
  if (db.kind === 'postgres') {
    assert.match(text, /keyward_db_pool_connections\{state="idle"\} \d+/);
    assert.match(text, /keyward_db_pool_connections\{state="in_use"\} \d+/);
    assert.match(text, /keyward_db_pool_connections\{state="waiting"\} 0/);
  }
});
