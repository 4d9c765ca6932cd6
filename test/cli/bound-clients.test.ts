import assert from 'node:assert/strict';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { run } from '../../src/cli/run.ts';
import type { Store } from '../../src/store/store.ts';
import { createTestDatabase, openTestStore, startServer, TEST_KEK, type TestDatabase } from '../support/harness.ts';
import { TestPki } from '../support/pki.ts';

/** `clients create` registers clients bound to a key with the admin API's own validation (RFC 8705, RFC 9449). */
let db: TestDatabase;
let store: Store;
let pki: TestPki;

before(async () => {
  db = await createTestDatabase();
  const server = await startServer(db);
  await server.stop();
  store = await openTestStore(db);
  pki = new TestPki();
});
after(async () => {
  await store?.close();
  await db?.drop();
  pki?.remove();
});

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string; json: any }> {
  let stdout = '';
  let stderr = '';
  const code = await run(args, {
    stdout: { write: (text: string) => { stdout += text; } },
    stderr: new Writable({ write(chunk: Buffer, _enc, done) { stderr += chunk.toString(); done(); } }),
    stdin: Readable.from([]),
    env: { KEYWARD_KEK: TEST_KEK, KEYWARD_KEK_FILE: path.join(db.dir, 'kek'), KEYWARD_DATA_DIR: path.join(db.dir, 'pgdata'), ...(db.url ? { DATABASE_URL: db.url } : {}) },
  }, { store });
  let json: unknown;
  try { json = JSON.parse(stdout); } catch { json = undefined; }
  return { code, stdout, stderr, json };
}

test('RFC 8705 §2.1.2: clients create --tls-san-dns selects tls_client_auth; certificate- and DPoP-bound tokens; no secret printed', async () => {
  const res = await cli(['clients', 'create', '--name', 'mtls job', '--tls-san-dns', 'job.internal.test', '--certificate-bound-tokens', '--dpop-bound-tokens', '--json']);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.json.token_endpoint_auth_method, 'tls_client_auth');
  assert.equal(res.json.tls_client_auth_san_dns, 'job.internal.test');
  assert.equal(res.json.tls_client_certificate_bound_access_tokens, true);
  assert.equal(res.json.dpop_bound_access_tokens, true);
  assert.equal(res.json.client_secret, undefined);
});

test('RFC 8705 §2.2: --self-signed-certificate registers the certificate as jwks with x5c', async () => {
  const cert = pki.issue('job', '/CN=job');
  const res = await cli(['clients', 'create', '--name', 'self-signed job', '--self-signed-certificate', cert.certFile, '--json']);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.json.token_endpoint_auth_method, 'self_signed_tls_client_auth');
  assert.equal(res.json.jwks.keys[0].x5c.length, 1);
});

test('the CLI refuses what the admin API refuses: two subject fields, a malformed IP', async () => {
  const two = await cli(['clients', 'create', '--name', 'x', '--tls-san-dns', 'a.test', '--tls-san-ip', '10.0.0.1']);
  assert.equal(two.code, 2);
  assert.match(two.stderr, /exactly one of/);
  const ip = await cli(['clients', 'create', '--name', 'x', '--tls-san-ip', '10.0.0.999']);
  assert.equal(ip.code, 2);
  assert.match(ip.stderr, /tls_client_auth_san_ip/);
});
