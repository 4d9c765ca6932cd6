/**
 * Pages oidc-provider renders itself in a browser flow (the form_post response and the
 * auto-submitted "end the previous session" form of an account switch) get the same page
 * headers as Keyward's own, and switching accounts ends signed in as the new user.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import type { Browser, Response } from 'playwright-core';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';
import { authRequest, createPublicClient, createUser, exchange, launchBrowser, rp, startCallback, submitLogin, type Callback } from './support.ts';

let db: TestDatabase;
let server: TestServer;
let browser: Browser;
let callback: Callback;
let config: oidc.Configuration;

before(async () => {
  db = await createTestDatabase();
  server = await startServer(db);
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

function assertPageHeaders(response: Response, what: string): void {
  const headers = response.headers();
  assert.match(headers['content-security-policy'] ?? '', /frame-ancestors 'none'/, what);
  assert.match(headers['content-security-policy'] ?? '', /default-src 'none'/, what);
  assert.equal(headers['x-frame-options'], 'DENY', what);
  assert.equal(headers['cache-control'], 'no-store', what);
  assert.equal(headers['referrer-policy'], 'no-referrer', what);
}

/** HTML pages (not redirects) Keyward answered while `run` navigated. */
async function htmlFromServer(page: import('playwright-core').Page, run: () => Promise<void>): Promise<Response[]> {
  const seen: Response[] = [];
  const listener = (response: Response): void => {
    if (response.url().startsWith(server.url) && response.status() < 300 && (response.headers()['content-type'] ?? '').includes('text/html')) seen.push(response);
  };
  page.on('response', listener);
  try {
    await run();
  } finally {
    page.off('response', listener);
  }
  return seen;
}

test('OAuth 2.0 Form Post Response Mode: the auto-submitting page carries the page headers (no framing, no caching) and still reaches the client', async () => {
  const user = await createUser(server.keyward);
  const context = await browser.newContext();
  const page = await context.newPage();
  const request = await authRequest(config, callback, { response_mode: 'form_post' });
  let posted: URLSearchParams | undefined;
  const pages = await htmlFromServer(page, async () => {
    await page.goto(request.url.href);
    const arrived = page.waitForRequest((r) => r.url() === callback.redirectUri && r.method() === 'POST');
    await submitLogin(page, user.username, user.password);
    posted = new URLSearchParams((await arrived).postData() ?? '');
  });
  const formPost = pages.find((response) => new URL(response.url()).pathname.startsWith('/auth/'));
  assert.ok(formPost, `the form_post page among ${pages.map((r) => r.url()).join(', ')}`);
  assertPageHeaders(formPost, 'form_post page');
  assert.match(formPost.headers()['content-security-policy'] ?? '', new RegExp(`form-action [^;]*${new URL(callback.redirectUri).origin.replace(/[.]/g, '\\.')}`));
  assert.equal(posted?.get('state'), request.state, 'the client received the form post');
  assert.ok(posted?.get('code'));
  await context.close();
});

test('OIDC Core §3.1.2.1 prompt=login: signing in as another user while a session exists switches the account', async () => {
  const alice = await createUser(server.keyward);
  const bob = await createUser(server.keyward);
  const context = await browser.newContext();
  const page = await context.newPage();
  const first = await authRequest(config, callback);
  await page.goto(first.url.href);
  await submitLogin(page, alice.username, alice.password);
  assert.equal(decodeJwt((await exchange(config, page.url(), first)).id_token!).sub, alice.id);

  const second = await authRequest(config, callback, { prompt: 'login consent' });
  const pages = await htmlFromServer(page, async () => {
    await page.goto(second.url.href);
    await submitLogin(page, bob.username, bob.password);
    await page.waitForURL((url) => url.href.startsWith(callback.redirectUri));
  });
  const tokens = await exchange(config, page.url(), second);
  assert.equal(decodeJwt(tokens.id_token!).sub, bob.id);
  for (const response of pages) assertPageHeaders(response, response.url());
  await context.close();
});
