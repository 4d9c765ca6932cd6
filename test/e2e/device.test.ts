/**
 * RFC 8628, the device authorization grant, end to end: the device is openid-client
 * (initiateDeviceAuthorization + pollDeviceAuthorizationGrant, or raw token requests where a
 * single answer is under test), the person is Debian's chromium on Keyward's pages.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as oidc from 'openid-client';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { DEVICE_CODE_GRANT } from '../../src/identity/clients/metadata.ts';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';
import { auditEvents, ORDERS, postForm, seedOrders, verifyAccessToken } from '../oidc/service-fixtures.ts';
import { createUser, launchBrowser, rp, submitLogin, type TestUser } from './support.ts';

let db: TestDatabase;
let server: TestServer;
let browser: Browser;
let user: TestUser;
let tv: oidc.Configuration;
let player: oidc.Configuration;

before(async () => {
  db = await createTestDatabase();
  // A 1 s interval keeps the polling tests fast; the default is RFC 8628's 5 s.
  server = await startServer(db, { KEYWARD_DEVICE_POLL_INTERVAL: '1s' });
  browser = await launchBrowser();
  await seedOrders(server.keyward);
  user = await createUser(server.keyward, { roles: ['orders-reader'] });
  const device = (name: string, firstParty: boolean) => server.keyward.clients.create({
    client_name: name, grant_types: [DEVICE_CODE_GRANT], token_endpoint_auth_method: 'none',
    first_party: firstParty, default_resource: ORDERS, scope: 'openid profile roles orders:read',
  });
  tv = await rp(server.url, (await device('Living Room TV', true)).client.client_id);
  player = await rp(server.url, (await device('Acme Player', false)).client.client_id);
});
after(async () => {
  await browser?.close();
  await server?.stop();
  await db?.drop();
});

const SCOPE = 'openid roles orders:read';

async function person(): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext();
  return { context, page: await context.newPage() };
}

/** One raw token request for a device code (what a single poll is answered). */
function poll(config: oidc.Configuration, deviceCode: string) {
  return postForm(server.url, '/token', { grant_type: DEVICE_CODE_GRANT, device_code: deviceCode, client_id: config.clientMetadata().client_id });
}

async function enterCode(page: Page, code: string): Promise<void> {
  await page.getByLabel('Device code').fill(code);
  await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: 'Continue' }).click()]);
  await page.waitForLoadState('load');
}

/** The device's verification_uri_complete, opened in the person's browser (the code is posted for them). */
async function openCompleteUri(page: Page, uri: string): Promise<void> {
  await page.goto(uri);
  await page.waitForLoadState('load');
}

async function clickAndLoad(page: Page, name: string): Promise<void> {
  await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name }).click()]);
  await page.waitForLoadState('load');
}

test('RFC 8628 §4: discovery advertises the device authorization endpoint and grant type', async () => {
  const metadata = tv.serverMetadata();
  assert.equal(metadata.device_authorization_endpoint, `${server.url}/device/auth`);
  assert.ok(metadata.grant_types_supported?.includes(DEVICE_CODE_GRANT));
});

test('RFC 8628 §3.2: the response carries a base-20 XXXX-XXXX user code, both verification URIs, expires_in and interval', async () => {
  const response = await oidc.initiateDeviceAuthorization(tv, { scope: SCOPE });
  assert.match(response.user_code, /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
  assert.equal(response.verification_uri, `${server.url}/device`);
  assert.equal(response.verification_uri_complete, `${server.url}/device?user_code=${response.user_code}`);
  assert.equal(response.expires_in, 600);
  assert.equal(response.interval, 1);
  const requested = await auditEvents(server.keyward, 'device.requested');
  assert.equal(requested.at(-1)?.actor, tv.clientMetadata().client_id);
  assert.ok(!JSON.stringify(requested).includes(response.device_code) && !JSON.stringify(requested).includes(response.user_code));
});

test('RFC 8628 §3.3-3.5: the person types the code, confirms, signs in; the polling device gets tokens with the user\'s roles', async () => {
  const response = await oidc.initiateDeviceAuthorization(tv, { scope: SCOPE });
  const tokens = oidc.pollDeviceAuthorizationGrant(tv, response);
  const { context, page } = await person();
  const first = await page.goto(response.verification_uri);
  const headers = first!.headers();
  assert.match(headers['content-security-policy'] ?? '', /frame-ancestors 'none'/);
  assert.match(headers['content-security-policy'] ?? '', /default-src 'none'/);
  assert.equal(headers['cache-control'], 'no-store');
  assert.equal(headers['x-frame-options'], 'DENY');
  assert.equal(await page.locator('input[name=user_code]').count(), 1);
  assert.equal(await page.getByRole('button').count(), 1);

  // Typed in lower case without the dash: oidc-provider normalizes it.
  await enterCode(page, response.user_code.replace('-', '').toLowerCase());
  assert.equal(await page.locator('h1').innerText(), 'Connect this device?');
  assert.match(await page.locator('.lead').innerText(), /Living Room TV/);
  assert.equal(await page.locator('.user-code-shown').innerText(), response.user_code);
  await clickAndLoad(page, 'Continue');
  await submitLogin(page, user.username, user.password);
  // First-party: no consent page.
  assert.equal(await page.locator('h1').innerText(), 'Device connected');
  assert.match(await page.locator('.lead').innerText(), /Living Room TV/);

  const result = await tokens;
  const { payload } = await verifyAccessToken(server.url, result.access_token, ORDERS);
  assert.deepEqual(payload.roles, ['orders-reader']);
  assert.equal(payload.sub, user.id);
  assert.equal(payload.scope, 'orders:read');
  assert.equal(result.claims()?.sub, user.id);
  await context.close();

  const entered = await auditEvents(server.keyward, 'device.code_entered');
  assert.ok(entered.some((e) => e.outcome === 'success' && e.subject === tv.clientMetadata().client_id));
  const approved = await auditEvents(server.keyward, 'device.approved');
  assert.ok(approved.some((e) => e.actor === user.id && e.subject === tv.clientMetadata().client_id));
  const issued = await auditEvents(server.keyward, 'token.issued');
  assert.ok(issued.some((e) => e.outcome === 'success' && e.subject === user.id && e.details.grant_type === DEVICE_CODE_GRANT));
  // Pending polls are not audit events; no code value is.
  assert.ok(!issued.some((e) => e.details.error === 'authorization_pending'));
  assert.deepEqual(server.logs.errors(), []);
});

test('RFC 8628 §3.3.1: verification_uri_complete fills the code in but still asks; a third-party client then gets consent', async () => {
  const response = await oidc.initiateDeviceAuthorization(player, { scope: SCOPE });
  const { context, page } = await person();
  await openCompleteUri(page, response.verification_uri_complete!);
  // The auto-submitted code lands on the confirmation page naming the client: nothing approved yet.
  assert.equal(await page.locator('h1').innerText(), 'Connect this device?');
  assert.match(await page.locator('.lead').innerText(), /Acme Player/);
  assert.equal((await poll(player, response.device_code)).json?.error, 'authorization_pending');

  const tokens = oidc.pollDeviceAuthorizationGrant(player, response);
  await clickAndLoad(page, 'Continue');
  await submitLogin(page, user.username, user.password);
  assert.equal(await page.locator('h1').innerText(), 'Allow access?');
  assert.match(await page.locator('.scopes').innerText(), /See the roles assigned to you/);
  await clickAndLoad(page, 'Allow');
  assert.equal(await page.locator('h1').innerText(), 'Device connected');
  const { payload } = await verifyAccessToken(server.url, (await tokens).access_token, ORDERS);
  assert.deepEqual(payload.roles, ['orders-reader']);
  await context.close();
});

test('RFC 8628 §3.5: the approval belongs to the device: signing out of the browser that gave it, before the device polls, undoes nothing', async () => {
  const response = await oidc.initiateDeviceAuthorization(tv, { scope: SCOPE });
  const { context, page } = await person();
  await openCompleteUri(page, response.verification_uri_complete!);
  await clickAndLoad(page, 'Continue');
  await submitLogin(page, user.username, user.password);
  assert.equal(await page.locator('h1').innerText(), 'Device connected');
  // The browser session ends (RP-initiated logout confirmed by the person) before the first poll.
  const sessions = () => server.keyward.store.prisma.oidcArtifact.count({ where: { model: 'Session', accountId: user.id } });
  const before = await sessions();
  await page.goto(`${server.url}/session/end`);
  await clickAndLoad(page, 'Sign out');
  assert.equal(await sessions(), before - 1);
  const answer = await poll(tv, response.device_code);
  assert.equal(answer.status, 200, JSON.stringify(answer.json));
  const { payload } = await verifyAccessToken(server.url, String(answer.json?.access_token), ORDERS);
  assert.equal(payload.sub, user.id);
  await context.close();
});

test('RFC 8628 §3.5 access_denied: the person denies at consent; the device is told access_denied', async () => {
  // Someone who has not allowed this client before (consent is remembered per user and client).
  const other = await createUser(server.keyward, { roles: ['orders-reader'] });
  const response = await oidc.initiateDeviceAuthorization(player, { scope: SCOPE });
  const { context, page } = await person();
  await page.goto(response.verification_uri);
  await enterCode(page, response.user_code);
  await clickAndLoad(page, 'Continue');
  await submitLogin(page, other.username, other.password);
  await clickAndLoad(page, 'Deny');
  assert.equal(await page.locator('h1').innerText(), 'Device not connected');
  const refusal = await oidc.pollDeviceAuthorizationGrant(player, response).then(() => undefined, (error: unknown) => error);
  assert.ok(refusal instanceof oidc.ResponseBodyError, String(refusal));
  assert.equal(refusal.error, 'access_denied');
  const denied = await auditEvents(server.keyward, 'device.denied');
  assert.ok(denied.some((e) => e.actor === other.id && e.subject === player.clientMetadata().client_id), JSON.stringify(denied));
  await context.close();
});

test('RFC 8628 §3.5 access_denied: Cancel on the confirmation page denies without signing in', async () => {
  const response = await oidc.initiateDeviceAuthorization(tv, { scope: SCOPE });
  const { context, page } = await person();
  await openCompleteUri(page, response.verification_uri_complete!);
  await clickAndLoad(page, 'Cancel');
  assert.equal(await page.locator('h1').innerText(), 'Device not connected');
  assert.equal((await poll(tv, response.device_code)).json?.error, 'access_denied');
  await context.close();
});

test('the code form is CSRF-protected: a post without the browser session\'s xsrf value confirms nothing', async () => {
  const response = await oidc.initiateDeviceAuthorization(tv, { scope: SCOPE });
  const form = { user_code: response.user_code, confirm: 'yes', xsrf: 'guessed' };
  // A cross-site post (no session cookie): back to the code page, never a 5xx.
  const forged = await fetch(`${server.url}/device`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form), redirect: 'manual',
  });
  assert.equal(forged.status, 303);
  assert.equal(forged.headers.get('location'), '/device');
  // With the person's own session but a wrong xsrf value: refused on the code page.
  const { context, page } = await person();
  await page.goto(response.verification_uri);
  // (Sent with the browser context's cookies; the page's CSP allows no script to send it.)
  const refused = await context.request.post(`${server.url}/device`, { form });
  assert.equal(refused.status(), 400);
  const html = await refused.text();
  assert.match(html, /Connect a device/);
  assert.doesNotMatch(html, /Connect this device\?/);
  assert.equal((await poll(tv, response.device_code)).json?.error, 'authorization_pending');
  await context.close();
});

test('RFC 8628 §3.5 authorization_pending and slow_down: a device polling faster than the interval is told to slow down', async () => {
  const response = await oidc.initiateDeviceAuthorization(tv, { scope: SCOPE });
  const pending = await poll(tv, response.device_code);
  assert.equal(pending.status, 400);
  assert.equal(pending.json?.error, 'authorization_pending');
  const tooSoon = await poll(tv, response.device_code);
  assert.equal(tooSoon.status, 400);
  assert.equal(tooSoon.json?.error, 'slow_down');
  await new Promise((resolve) => setTimeout(resolve, 1100));
  assert.equal((await poll(tv, response.device_code)).json?.error, 'authorization_pending');
});

test('RFC 8628 §3.5 expired_token: an expired device code is refused at the token endpoint and on the page', async () => {
  const response = await oidc.initiateDeviceAuthorization(tv, { scope: SCOPE });
  // oidc-provider judges expiry by the code's own `exp`: move it into the past.
  const prisma = server.keyward.store.prisma;
  const row = (await prisma.oidcArtifact.findMany({ where: { model: 'DeviceCode', clientId: tv.clientMetadata().client_id } }))
    .find((r) => (r.payload as { userCode?: string }).userCode === response.user_code.replace('-', ''))!;
  await prisma.oidcArtifact.update({
    where: { model_id: { model: 'DeviceCode', id: row.id } },
    data: { payload: { ...(row.payload as object), exp: Math.floor(Date.now() / 1000) - 1 } },
  });
  const answer = await poll(tv, response.device_code);
  assert.equal(answer.status, 400);
  assert.equal(answer.json?.error, 'expired_token');

  const { context, page } = await person();
  await page.goto(response.verification_uri);
  await enterCode(page, response.user_code);
  assert.match(await page.locator('.alert').innerText(), /expired/);
  await context.close();
});

test('RFC 8628 §5.1: a wrong code is refused on the page; after 10 wrong codes from one address entry is blocked (429), on every instance', async () => {
  const prisma = server.keyward.store.prisma;
  await prisma.rateLimit.deleteMany({});
  const response = await oidc.initiateDeviceAuthorization(tv, { scope: SCOPE });
  const { context, page } = await person();
  await page.goto(response.verification_uri);
  await enterCode(page, 'BBBB-BBBB');
  assert.equal(await page.locator('h1').innerText(), 'Connect a device');
  assert.match(await page.locator('.alert').innerText(), /not valid/);
  // A right code gives its attempt back: it does not count against the address.
  await enterCode(page, response.user_code);
  assert.equal(await page.locator('h1').innerText(), 'Connect this device?');
  await page.goto(response.verification_uri);
  for (let i = 1; i < 10; i++) await enterCode(page, `BBBB-BBB${'CDFGHJKLM'[i - 1]}`);

  // The counter lives in the store: a second instance on the same store refuses too.
  const second = await startServer(db, { KEYWARD_DEVICE_POLL_INTERVAL: '1s' }, { store: server.keyward.store });
  try {
    for (const url of [server.url, second.url]) {
      const res = await page.goto(`${url}/device`);
      assert.equal(res!.status(), 200);
      const answer = page.waitForResponse((r) => r.request().method() === 'POST');
      await enterCode(page, response.user_code);
      const refused = await answer;
      assert.equal(refused.status(), 429);
      assert.ok(Number(refused.headers()['retry-after']) > 0);
      assert.match(refused.headers()['content-security-policy'] ?? '', /frame-ancestors 'none'/);
      assert.equal(await page.locator('h1').innerText(), 'Too many attempts');
    }
  } finally {
    await second.stop();
  }
  const failures = await auditEvents(server.keyward, 'device.code_entered');
  assert.ok(failures.some((e) => e.outcome === 'failure' && e.details.reason === 'not_found'));
  assert.ok(failures.some((e) => e.outcome === 'failure' && e.details.reason === 'throttled'));
  await context.close();
});
