import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createPublicClient, startCallback, type Callback } from '../e2e/support.ts';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';

/**
 * oidc-provider's own pages (error, logout) are rendered by src/interaction/provider-pages.ts,
 * handed to the provider as a configuration part by app.ts. Checked over plain HTTP.
 */
let db: TestDatabase;
let server: TestServer;
let callback: Callback;
let clientId: string;

before(async () => {
  db = await createTestDatabase();
  server = await startServer(db);
  callback = await startCallback();
  clientId = await createPublicClient(server.keyward, callback, { name: 'Acme Reports' });
});
after(async () => {
  await callback?.close();
  await server?.stop();
  await db?.drop();
});

test('an unregistered redirect_uri renders Keyward\'s error page (no redirect) with the page headers', async () => {
  const url = new URL('/auth', server.url);
  url.search = new URLSearchParams({
    client_id: clientId, redirect_uri: 'https://evil.example/cb', response_type: 'code', scope: 'openid',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256',
  }).toString();
  const res = await fetch(url, { redirect: 'manual' });
  assert.equal(res.status, 400);
  assert.equal(res.headers.get('location'), null);
  assert.match(res.headers.get('content-type') ?? '', /text\/html/);
  assert.match(res.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
  assert.match(await res.text(), /Cannot return to the application/);
});

test('RP-initiated logout ends on Keyward\'s signed-out page, with the page headers', async () => {
  const res = await fetch(new URL('/session/end/success', server.url), { redirect: 'manual' });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'none'/);
  assert.match(await res.text(), /You are signed out/);
});
