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
    assert.deepEqual(await res.json(), { status: 'not ready', checks: { store: 'ok', keys: 'not loaded' } });
  } finally {
    for (const alg of keyward.config.signingAlgs) await keyward.keys.create(alg, 'active', () => new Date());
    await keyward.reloadKeys();
  }
  const res = await fetch(`${server.url}/readyz`);
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { status: 'ready', checks: { store: 'ok', keys: 'ok' } });
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
