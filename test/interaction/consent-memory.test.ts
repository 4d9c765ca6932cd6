import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as oidc from 'openid-client';
import { createPublicClient, createUser, rp, startCallback, type Callback, type TestUser } from '../e2e/support.ts';
import { Device } from '../support/device.ts';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';

/**
 * The consent page is skipped when the person already allowed the same scopes to the same
 * client in another live grant (src/interaction/consent.ts previouslyAllowed, answered by the
 * indexed account_id/client_id lookup in src/store/oidc-grants.ts). Driven over plain HTTP with
 * a cookie jar per "device" (test/support/device.ts), so it runs without a browser.
 */
let db: TestDatabase;
let server: TestServer;
let callback: Callback;
let config: oidc.Configuration;
let user: TestUser;

before(async () => {
  db = await createTestDatabase();
  server = await startServer(db);
  callback = await startCallback();
  config = await rp(server.url, await createPublicClient(server.keyward, callback, { name: 'Acme Reports', firstParty: false }));
  user = await createUser(server.keyward);
});
after(async () => {
  await callback?.close();
  await server?.stop();
  await db?.drop();
});

const csrfOf = (html: string) => /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? assert.fail('no csrf field on the page');

async function signIn(device: Device, who: TestUser = user): Promise<{ url: string; html: string }> {
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: callback.redirectUri, scope: 'openid email',
    code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256',
  });
  const after = await device.signIn(url, who);
  return { url: after.url, html: after.url.startsWith(callback.redirectUri) ? '' : await after.res.text() };
}

test('consent given on one device is remembered on another for the same scopes (no second consent page)', async () => {
  const laptop = new Device(callback);
  const first = await signIn(laptop);
  assert.ok(!first.url.startsWith(callback.redirectUri), 'the first sign-in asks for consent');
  assert.match(first.html, /Acme Reports/);
  const allowed = await laptop.follow(`${first.url}/consent`, { method: 'POST', form: { decision: 'allow', csrf: csrfOf(first.html) } });
  assert.ok(new URL(allowed.url).searchParams.get('code'), `allow returns a code to the client: ${allowed.url}`);

  const phone = new Device(callback);
  const second = await signIn(phone);
  assert.ok(second.url.startsWith(callback.redirectUri), `no consent page on the second device: ${second.url}`);
  assert.ok(new URL(second.url).searchParams.get('code'));
});

test('a grant of another person does not count as consent', async () => {
  const page = await signIn(new Device(callback), await createUser(server.keyward));
  assert.ok(!page.url.startsWith(callback.redirectUri), 'a person who never allowed the client sees the consent page');
});
