import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import type { Browser, Page } from 'playwright-core';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';
import { authRequest, createPublicClient, createUser, exchange, launchBrowser, rp, startCallback, submitLogin, type Callback, type TestUser } from './support.ts';

let db: TestDatabase;
let server: TestServer;
let browser: Browser;
let callback: Callback;
let thirdParty: oidc.Configuration;
let firstParty: oidc.Configuration;
const API = 'https://orders.internal';

before(async () => {
  db = await createTestDatabase();
  server = await startServer(db);
  browser = await launchBrowser();
  callback = await startCallback();
  await server.keyward.resources.create({ identifier: API, name: 'Orders API', scopes: ['orders:read'] });
  // User tokens carry only the API scopes the user's roles permit (issue 10, finding 7).
  await server.keyward.roles.ensure({ name: 'orders-reader', permissions: ['orders:read'] });
  thirdParty = await rp(server.url, await createPublicClient(server.keyward, callback, { name: 'Acme Reports', firstParty: false }));
  firstParty = await rp(server.url, await createPublicClient(server.keyward, callback, { name: 'Keyward Console', firstParty: true }));
});
after(async () => {
  await browser?.close();
  await callback?.close();
  await server?.stop();
  await db?.drop();
});

async function toConsent(page: Page, user: TestUser, extra: Record<string, string> = {}) {
  const request = await authRequest(thirdParty, callback, extra);
  await page.goto(request.url.href);
  await submitLogin(page, user.username, user.password);
  return request;
}

test('a third-party client gets a consent page naming the client and the scopes in plain words; deny returns access_denied to the client', async () => {
  const user = await createUser(server.keyward);
  const context = await browser.newContext();
  const page = await context.newPage();
  const consentResponse = page.waitForResponse((r) => r.url().includes('/interaction/') && r.request().method() === 'GET' && r.status() === 200);
  const request = await toConsent(page, user);
  const headers = (await consentResponse).headers();
  assert.match(headers['content-security-policy'] ?? '', /frame-ancestors 'none'/);
  assert.equal(headers['cache-control'], 'no-store');

  assert.match(await page.locator('.lead').innerText(), /Acme Reports wants to access your Keyward account/);
  const text = await page.locator('.scopes').innerText();
  for (const words of ['See your email address', 'See your name and username', 'See the roles assigned to you', 'Keep access while you are not using it']) {
    assert.ok(text.includes(words), `${words} in ${text}`);
  }
  assert.equal(await page.getByRole('button').count(), 2);
  await Promise.all([page.waitForURL((url) => url.href.startsWith(callback.redirectUri)), page.getByRole('button', { name: 'Deny' }).click()]);
  const landed = new URL(page.url());
  assert.equal(landed.searchParams.get('error'), 'access_denied');
  assert.equal(landed.searchParams.get('state'), request.state);
  assert.equal(landed.searchParams.get('iss'), server.url);
  await context.close();
});

test('allow issues the code; consent is remembered per user and client, in this session and in a new one, until prompt=consent asks again', async () => {
  const user = await createUser(server.keyward, { roles: ['auditor'] });
  const context = await browser.newContext();
  const page = await context.newPage();
  const request = await toConsent(page, user);
  await Promise.all([page.waitForURL((url) => url.href.startsWith(callback.redirectUri)), page.getByRole('button', { name: 'Allow' }).click()]);
  const tokens = await exchange(thirdParty, page.url(), request);
  assert.deepEqual(tokens.claims()?.roles, ['auditor']);

  // Same session: straight back to the client.
  await page.goto((await authRequest(thirdParty, callback, { prompt: '', scope: 'openid email profile roles' })).url.href);
  assert.ok(page.url().startsWith(callback.redirectUri), page.url());

  // A new browser (new session): sign in, no consent page.
  const other = await browser.newContext();
  const page2 = await other.newPage();
  await toConsent(page2, user, { prompt: 'login', scope: 'openid email profile roles' });
  assert.ok(page2.url().startsWith(callback.redirectUri), page2.url());

  // prompt=consent always asks.
  await page2.goto((await authRequest(thirdParty, callback, { prompt: 'consent', scope: 'openid email' })).url.href);
  assert.match(page2.url(), /\/interaction\//);
  assert.equal(await page2.getByRole('button', { name: 'Allow' }).count(), 1);

  // A different user of the same browser-less client has not consented.
  const stranger = await createUser(server.keyward);
  const third = await browser.newContext();
  const page3 = await third.newPage();
  await toConsent(page3, stranger, { prompt: 'login', scope: 'openid email profile roles' });
  assert.match(page3.url(), /\/interaction\//);
  await Promise.all([context.close(), other.close(), third.close()]);
});

test('consent lists API scopes by API name; the access token for the API is a JWT carrying the user roles', async () => {
  const user = await createUser(server.keyward, { roles: ['orders-reader'] });
  const context = await browser.newContext();
  const page = await context.newPage();
  const request = await toConsent(page, user, { scope: 'openid roles orders:read', resource: API });
  assert.match(await page.locator('.scopes').innerText(), /Use Orders API with permission “orders:read”/);
  await Promise.all([page.waitForURL((url) => url.href.startsWith(callback.redirectUri)), page.getByRole('button', { name: 'Allow' }).click()]);
  const tokens = await oidc.authorizationCodeGrant(thirdParty, new URL(page.url()), {
    pkceCodeVerifier: request.verifier, expectedState: request.state, expectedNonce: request.nonce,
  }, { resource: API });
  const { payload, protectedHeader } = await jwtVerify(tokens.access_token, createRemoteJWKSet(new URL(`${server.url}/jwks`)), { issuer: server.url, audience: API });
  assert.equal(protectedHeader.typ, 'at+jwt');
  assert.equal(payload.sub, user.id);
  assert.deepEqual(payload.roles, ['orders-reader']);
  assert.match(String(payload.scope), /orders:read/);
  await context.close();
});

test('the consent form refuses a POST without its CSRF token (403)', async () => {
  const user = await createUser(server.keyward);
  const context = await browser.newContext();
  const page = await context.newPage();
  await toConsent(page, user);
  const res = await context.request.post(`${page.url()}/consent`, { form: { decision: 'allow' }, maxRedirects: 0 });
  assert.equal(res.status(), 403);
  await context.close();
});

test('a first-party client skips consent even with prompt=consent', async () => {
  const user = await createUser(server.keyward);
  const context = await browser.newContext();
  const page = await context.newPage();
  const request = await authRequest(firstParty, callback, { prompt: 'consent' });
  await page.goto(request.url.href);
  await submitLogin(page, user.username, user.password);
  assert.ok(page.url().startsWith(callback.redirectUri), page.url());
  const tokens = await exchange(firstParty, page.url(), request);
  assert.ok(tokens.refresh_token);
  await context.close();
});
