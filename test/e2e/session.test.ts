import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as oidc from 'openid-client';
import type { Browser } from 'playwright-core';
import { TestClock } from '../support/clock.ts';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';
import { authRequest, createPublicClient, createUser, exchange, launchBrowser, rp, startCallback, submitLogin, type Callback } from './support.ts';

let db: TestDatabase;
let server: TestServer;
let browser: Browser;
let callback: Callback;
let config: oidc.Configuration;
/** The server's clock: real time until a test stops it, then moved by the test instead of sleeping. */
const clock = TestClock.running();

before(async () => {
  db = await createTestDatabase();
  server = await startServer(db, {}, { now: clock.now });
  browser = await launchBrowser();
  callback = await startCallback();
  config = await rp(server.url, await createPublicClient(server.keyward, callback));
});
after(async () => {
  await browser?.close();
  await callback?.close();
  await server?.stop();
  await db?.drop();
});

test('RP-initiated logout: a Keyward confirmation page, back to the registered post_logout_redirect_uri, then prompt=none gives login_required', async () => {
  const user = await createUser(server.keyward);
  const context = await browser.newContext();
  const page = await context.newPage();
  const request = await authRequest(config, callback);
  await page.goto(request.url.href);
  await submitLogin(page, user.username, user.password);
  const tokens = await exchange(config, page.url(), request);

  const end = oidc.buildEndSessionUrl(config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: callback.postLogoutUri, state: 'bye-state' });
  const confirm = await page.goto(end.href);
  assert.equal(new URL(page.url()).origin, server.url);
  assert.match(await page.locator('h1').innerText(), /Sign out\?/);
  const headers = confirm!.headers();
  assert.match(headers['content-security-policy'] ?? '', /frame-ancestors 'none'/);
  assert.equal(headers['x-frame-options'], 'DENY');
  assert.equal(headers['referrer-policy'], 'no-referrer');
  assert.equal(headers['cache-control'], 'no-store');

  await Promise.all([page.waitForURL((url) => url.href.startsWith(callback.postLogoutUri)), page.getByRole('button', { name: 'Sign out' }).click()]);
  assert.equal(new URL(page.url()).searchParams.get('state'), 'bye-state');

  const silent = await authRequest(config, callback, { prompt: 'none' });
  await page.goto(silent.url.href);
  const landed = new URL(page.url());
  assert.equal(landed.origin + landed.pathname, callback.redirectUri);
  assert.equal(landed.searchParams.get('error'), 'login_required');
  // OIDC Core §11: offline_access is access while the user is not signed in, so
  // oidc-provider keeps that grant (persistsLogout); the session itself is gone.
  assert.ok((await oidc.refreshTokenGrant(config, tokens.refresh_token!)).access_token);
  await context.close();
});

test('logout to an unregistered post_logout_redirect_uri is refused on an error page', async () => {
  const user = await createUser(server.keyward);
  const context = await browser.newContext();
  const page = await context.newPage();
  const request = await authRequest(config, callback);
  await page.goto(request.url.href);
  await submitLogin(page, user.username, user.password);
  const tokens = await exchange(config, page.url(), request);
  const end = oidc.buildEndSessionUrl(config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: 'https://evil.example/bye' });
  const res = await page.goto(end.href);
  assert.equal(res!.status(), 400);
  assert.equal(new URL(page.url()).origin, server.url);
  assert.match(await page.locator('details').textContent() ?? '', /post_logout_redirect_uri/);
  await context.close();
});

test('brute force: delays after 3 failures, a 15-minute lock (429) at 10, audited, then the right password works again', async () => {
  const user = await createUser(server.keyward);
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto((await authRequest(config, callback)).url.href);
  clock.stop();
  const attempt = async (password: string) => {
    const response = page.waitForResponse((r) => r.request().method() === 'POST');
    await submitLogin(page, user.username, password);
    const r = await response;
    return { status: r.status(), retryAfter: r.headers()['retry-after'], message: await page.getByRole('alert').count() ? await page.getByRole('alert').innerText() : '' };
  };

  for (let i = 0; i < 3; i++) assert.equal((await attempt('wrong')).status, 401);
  const delayed = await attempt('wrong');
  assert.equal(delayed.status, 429, 'the 4th try comes too soon');
  assert.equal(delayed.retryAfter, '1');
  assert.match(delayed.message, /Wait 1 second/);
  // Even the right password is refused while delayed (it is not checked at all).
  assert.equal((await attempt(user.password)).status, 429);

  for (let failures = 4; failures < 10; failures++) {
    clock.advance(60_000);
    assert.equal((await attempt('wrong')).status, 401, `failure ${failures}`);
  }
  clock.advance(60_000);
  const locked = await attempt('wrong');
  assert.equal(locked.status, 429);
  assert.equal(locked.retryAfter, String(15 * 60));
  assert.match(locked.message, /this account from your network is blocked for 15 minutes/);

  clock.advance(10 * 60_000);
  const stillLocked = await attempt(user.password);
  assert.equal(stillLocked.status, 429);
  assert.match(stillLocked.message, /blocked for 5 minutes/);

  clock.advance(6 * 60_000);
  const ok = page.waitForResponse((r) => r.request().method() === 'POST');
  await submitLogin(page, user.username, user.password);
  assert.equal((await ok).status(), 303);
  assert.ok(page.url().startsWith(callback.redirectUri));

  await server.keyward.audit.flush();
  const events = await server.keyward.store.prisma.auditEvent.findMany({ where: { type: { in: ['login.failure', 'login.locked'] }, actor: user.username } });
  assert.equal(events.filter((e) => e.type === 'login.locked').length, 1);
  assert.deepEqual((events.find((e) => e.type === 'login.locked')!.details as { scope: string }).scope, 'account');
  assert.equal(events.filter((e) => e.type === 'login.failure').length, 10 + 3, '10 wrong passwords and 3 attempts refused while throttled');
  // The account counter is cleared by the success.
  assert.equal(await server.keyward.store.prisma.loginThrottle.count({ where: { key: `account:${user.id}@127.0.0.1` } }), 0);
  await context.close();
  clock.resume();
});
