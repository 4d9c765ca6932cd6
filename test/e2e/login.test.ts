import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import type { Browser } from 'playwright-core';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';
import { authRequest, createPublicClient, createUser, exchange, launchBrowser, rp, startCallback, submitLogin, type Callback } from './support.ts';

let db: TestDatabase;
let server: TestServer;
let browser: Browser;
let callback: Callback;
let clientId: string;
let config: oidc.Configuration;

before(async () => {
  db = await createTestDatabase();
  server = await startServer(db);
  browser = await launchBrowser();
  callback = await startCallback();
  clientId = await createPublicClient(server.keyward, callback);
  config = await rp(server.url, clientId);
});
after(async () => {
  await browser?.close();
  await callback?.close();
  await server?.stop();
  await db?.drop();
});

test('code flow + PKCE (RFC 7636, RFC 9207): login answers 303, the code carries iss, the ID token carries roles, email and name', async () => {
  const user = await createUser(server.keyward, { roles: ['orders-reader', 'staff'] });
  const context = await browser.newContext();
  const page = await context.newPage();
  const request = await authRequest(config, callback);
  const loginResponse = await page.goto(request.url.href);
  assert.match(page.url(), /\/interaction\//);
  const headers = loginResponse!.headers();
  assert.match(headers['content-security-policy'] ?? '', /frame-ancestors 'none'/);
  assert.match(headers['content-security-policy'] ?? '', /default-src 'none'/);
  assert.equal(headers['x-frame-options'], 'DENY');
  assert.equal(headers['referrer-policy'], 'no-referrer');
  assert.equal(headers['cache-control'], 'no-store');

  const statuses: number[] = [];
  page.on('response', (r) => { if (r.request().method() === 'POST') statuses.push(r.status()); });
  await submitLogin(page, user.username, user.password);
  assert.deepEqual(statuses, [303]);
  const landed = new URL(page.url());
  assert.equal(landed.origin + landed.pathname, callback.redirectUri);
  assert.equal(landed.searchParams.get('iss'), server.url);

  const tokens = await exchange(config, page.url(), request);
  const jwks = createRemoteJWKSet(new URL(`${server.url}/jwks`));
  const { payload } = await jwtVerify(tokens.id_token!, jwks, { issuer: server.url, audience: clientId });
  assert.equal(payload.sub, user.id);
  // conformIdTokenClaims=false: scope claims stay in the ID token although an access token came with it.
  assert.ok(tokens.access_token);
  assert.deepEqual(payload.roles, ['orders-reader', 'staff']);
  assert.equal(payload.email, `${user.username}@example.test`);
  assert.equal(payload.email_verified, true);
  assert.equal(payload.name, `Test ${user.username}`);
  assert.equal(payload.preferred_username, user.username);
  assert.ok(tokens.refresh_token, 'offline_access yields a refresh token');

  const info = await oidc.fetchUserInfo(config, tokens.access_token, user.id);
  assert.equal(info.sub, user.id);
  assert.deepEqual(info.roles, ['orders-reader', 'staff']);
  assert.equal(info.email, `${user.username}@example.test`);
  await context.close();
});

/** Logs `user` in through the browser and exchanges the code. */
async function signIn(user: { username: string; password: string }, extra: Record<string, string> = {}) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const request = await authRequest(config, callback, extra);
  await page.goto(request.url.href);
  await submitLogin(page, user.username, user.password);
  const callbackUrl = page.url();
  const tokens = await exchange(config, callbackUrl, request);
  return { context, page, request, callbackUrl, tokens };
}

async function oauthError(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (error) {
    return (error as { error?: string }).error ?? (error as Error).message;
  }
  assert.fail('expected an OAuth error');
}

test('RFC 9700 §4.14.2: each refresh rotates the refresh token; reusing a rotated one revokes the whole grant', async () => {
  const user = await createUser(server.keyward, { roles: ['staff'] });
  const { context, tokens } = await signIn(user);
  const first = tokens.refresh_token!;
  const rotated = await oidc.refreshTokenGrant(config, first);
  assert.ok(rotated.refresh_token);
  assert.notEqual(rotated.refresh_token, first);
  assert.deepEqual(rotated.claims()?.roles, ['staff'], 'the refreshed ID token still carries roles');
  const next = await oidc.refreshTokenGrant(config, rotated.refresh_token);

  assert.equal(await oauthError(oidc.refreshTokenGrant(config, first)), 'invalid_grant');
  // Reuse detection: the newest token of the chain and its access token die too.
  assert.equal(await oauthError(oidc.refreshTokenGrant(config, next.refresh_token!)), 'invalid_grant');
  const userinfo = await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${next.access_token}` } });
  assert.equal(userinfo.status, 401);
  await context.close();
});

test('RFC 6749 §4.1.2 / RFC 9700 §4.5: an authorization code is single-use and its replay revokes the tokens it issued', async () => {
  const user = await createUser(server.keyward);
  const { context, callbackUrl, request, tokens } = await signIn(user);
  assert.equal(await oauthError(exchange(config, callbackUrl, request)), 'invalid_grant');
  const userinfo = await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
  assert.equal(userinfo.status, 401, 'the access token from the first exchange is revoked');
  assert.equal(await oauthError(oidc.refreshTokenGrant(config, tokens.refresh_token!)), 'invalid_grant');
  await context.close();
});

test('a wrong password and an unknown username get the same message (401), no redirect, and are audited', async () => {
  const user = await createUser(server.keyward);
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto((await authRequest(config, callback)).url.href);
  const loginUrl = page.url();

  const wrong = page.waitForResponse((r) => r.request().method() === 'POST');
  await submitLogin(page, user.username, 'not-the-password');
  assert.equal((await wrong).status(), 401);
  const wrongText = await page.getByRole('alert').innerText();
  assert.equal(page.url(), `${loginUrl}/login`);

  const unknown = page.waitForResponse((r) => r.request().method() === 'POST');
  await submitLogin(page, 'nobody-by-this-name', 'whatever');
  assert.equal((await unknown).status(), 401);
  assert.equal(await page.getByRole('alert').innerText(), wrongText);
  assert.equal(wrongText, 'Incorrect username or password.');

  // Still usable afterwards: the right password goes through.
  await submitLogin(page, user.username, user.password);
  assert.ok(page.url().startsWith(callback.redirectUri));
  await server.keyward.audit.flush();
  const events = await server.keyward.store.prisma.auditEvent.findMany({ where: { actor: { in: [user.username, 'nobody-by-this-name', user.id] } }, orderBy: { id: 'asc' } });
  assert.deepEqual(events.map((e) => [e.type, e.outcome]), [['login.failure', 'failure'], ['login.failure', 'failure'], ['login.success', 'success']]);
  assert.ok(!server.logs.text.includes(user.password), 'no password in any log line');
  assert.ok(!server.logs.text.includes('not-the-password'));
  await context.close();
});

test('a disabled user is refused even with the right password', async () => {
  const user = await createUser(server.keyward, { disabled: true });
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto((await authRequest(config, callback)).url.href);
  const response = page.waitForResponse((r) => r.request().method() === 'POST');
  await submitLogin(page, user.username, user.password);
  assert.equal((await response).status(), 403);
  assert.match(await page.getByRole('alert').innerText(), /disabled/);
  assert.match(page.url(), /\/interaction\//);
  await context.close();
});

test('the login form carries a CSRF token bound to the interaction; a POST without it or with another one is refused (403)', async () => {
  const user = await createUser(server.keyward);
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto((await authRequest(config, callback)).url.href);
  const action = `${page.url()}/login`;
  const token = await page.locator('input[name=csrf]').getAttribute('value');
  assert.ok(token);

  const without = await context.request.post(action, { form: { username: user.username, password: user.password }, maxRedirects: 0 });
  assert.equal(without.status(), 403);
  const forged = await context.request.post(action, { form: { csrf: `${token.slice(0, -2)}AA`, username: user.username, password: user.password }, maxRedirects: 0 });
  assert.equal(forged.status(), 403);
  const good = await context.request.post(action, { form: { csrf: token, username: user.username, password: user.password }, maxRedirects: 0 });
  assert.equal(good.status(), 303);
  assert.match(good.headers().location ?? '', /\/auth\//);
  await context.close();
});

test('a redirect_uri that is not registered exactly shows an error page on Keyward and redirects nowhere', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const request = await authRequest(config, callback, { redirect_uri: `${callback.redirectUri}/extra` });
  const response = await page.goto(request.url.href);
  assert.equal(response!.status(), 400);
  assert.equal(new URL(page.url()).origin, server.url);
  assert.match(await page.locator('h1').innerText(), /Cannot return to the application/);
  assert.match(response!.headers()['content-security-policy'] ?? '', /frame-ancestors 'none'/);
  assert.equal(response!.headers()['x-frame-options'], 'DENY');
  await context.close();
});

test('PKCE is required for every client: an authorization request without code_challenge is refused', async () => {
  const url = new URL(`${server.url}/auth`);
  url.search = new URLSearchParams({ client_id: clientId, response_type: 'code', scope: 'openid', redirect_uri: callback.redirectUri, state: 's' }).toString();
  const res = await fetch(url, { redirect: 'manual' });
  const location = new URL(res.headers.get('location')!);
  assert.equal(location.origin + location.pathname, callback.redirectUri);
  assert.equal(location.searchParams.get('error'), 'invalid_request');
  assert.match(location.searchParams.get('error_description') ?? '', /PKCE/);
});

test('OIDC Core §3.1.2.1: prompt=login and max_age=0 ask for the password again despite a live session', async () => {
  const user = await createUser(server.keyward);
  const { context, page } = await signIn(user);
  for (const extra of [{ prompt: 'login' }, { max_age: '0' }] as Record<string, string>[]) {
    await page.goto((await authRequest(config, callback, extra)).url.href);
    assert.match(page.url(), /\/interaction\//, JSON.stringify(extra));
    assert.equal(await page.getByLabel('Password').count(), 1);
  }
  // And without them the session is reused: straight back to the client.
  await page.goto((await authRequest(config, callback, { prompt: '' })).url.href);
  assert.ok(page.url().startsWith(callback.redirectUri));
  await context.close();
});

test('a login started before a key reload (new Provider instance) completes after it', async () => {
  const user = await createUser(server.keyward, { roles: ['staff'] });
  const context = await browser.newContext();
  const page = await context.newPage();
  const request = await authRequest(config, callback);
  await page.goto(request.url.href);
  const before = server.keyward.provider.current;
  await server.keyward.reloadKeys();
  assert.notEqual(server.keyward.provider.current, before);
  await submitLogin(page, user.username, user.password);
  const tokens = await exchange(config, page.url(), request);
  assert.deepEqual(tokens.claims()?.roles, ['staff']);
  await context.close();
});
