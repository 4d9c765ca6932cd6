import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type * as oidc from 'openid-client';
import { DEFAULT_THROTTLE_POLICY } from '../../src/interaction/throttle.ts';
import { TestClock } from '../support/clock.ts';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';
import { authRequest, createPublicClient, createUser, rp, startCallback, type Callback } from '../e2e/support.ts';

/*
 * The login form over plain HTTP (no browser), so a test can send truly parallel POSTs and
 * choose the client address (X-Forwarded-For behind the trusted proxy setting).
 */

let db: TestDatabase;
let server: TestServer;
let callback: Callback;
let config: oidc.Configuration;
const clock = TestClock.running();

before(async () => {
  db = await createTestDatabase();
  server = await startServer(db, { KEYWARD_PROXY_HOPS: '1' }, { now: clock.now });
  callback = await startCallback();
  config = await rp(server.url, await createPublicClient(server.keyward, callback));
});
after(async () => {
  await callback?.close();
  await server?.stop();
  await db?.drop();
});

interface LoginForm {
  action: string;
  csrf: string;
  cookie: string;
}

/** Starts an authorization request and returns its login form (action, CSRF token, cookies). */
async function loginForm(ip: string): Promise<LoginForm> {
  const request = await authRequest(config, callback);
  const auth = await fetch(request.url, { redirect: 'manual', headers: { 'x-forwarded-for': ip } });
  assert.equal(auth.status, 303, 'the authorization request goes to the login interaction');
  const cookie = auth.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const page = await fetch(new URL(auth.headers.get('location')!, server.url), { headers: { cookie, 'x-forwarded-for': ip } });
  const html = await page.text();
  const action = /<form method="post" action="([^"]+)"/.exec(html)?.[1];
  const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1];
  assert.ok(action && csrf, 'the login page has its form');
  return { action: action.replaceAll('&amp;', '&'), csrf, cookie };
}

async function submit(form: LoginForm, ip: string, username: string, password: string): Promise<number> {
  const res = await fetch(new URL(form.action, server.url), {
    method: 'POST', redirect: 'manual',
    headers: { cookie: form.cookie, 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': ip },
    body: new URLSearchParams({ csrf: form.csrf, username, password }).toString(),
  });
  await res.arrayBuffer();
  return res.status;
}

/** Wrong passwords of `username` that reached argon2: each is audited as invalid_credentials. */
async function verifiedGuesses(username: string): Promise<number> {
  await server.keyward.audit.flush();
  const events = await server.keyward.store.prisma.auditEvent.findMany({ where: { type: 'login.failure', actor: username } });
  return events.filter((e) => (e.details as { reason?: string } | null)?.reason === 'invalid_credentials').length;
}

test('issue 10 F3: 40 truly parallel wrong guesses on one account — at most the free failures reach argon2, the rest answer 429', async (t) => {
  const user = await createUser(server.keyward);
  const attacker = '198.51.100.40';
  const form = await loginForm(attacker);
  const { freeFailures } = DEFAULT_THROTTLE_POLICY.account;
  // Time stands still during the burst: on a slow machine the first delay (1 s) must not pass
  // and let a few more through; what is measured is concurrency alone.
  clock.stop();
  try {
    const statuses = await Promise.all(Array.from({ length: 40 }, (_, i) => submit(form, attacker, user.username, `wrong-${i}`)));
    const verified = await verifiedGuesses(user.username);
    t.diagnostic(`${verified} of 40 parallel guesses verified by argon2`);
    assert.ok(verified >= 1 && verified <= freeFailures, `at most ${freeFailures} guesses may reach the password check, ${verified} did: ${statuses.join(' ')}`);
    assert.equal(statuses.filter((s) => s === 401).length, verified, 'each verified guess answered 401');
    assert.equal(statuses.filter((s) => s === 429).length, 40 - verified, 'every other guess was refused before argon2');
    const counter = await server.keyward.store.prisma.loginThrottle.findUnique({ where: { key: `account:${user.id}@${attacker}` } });
    assert.equal(counter?.failures, verified, 'each verified guess was counted once, refused ones not at all');

    assert.equal(await submit(form, attacker, user.username, user.password), 429, 'the right password from the throttled source is refused');
    const owner = '192.0.2.40';
    assert.equal(await submit(await loginForm(owner), owner, user.username, user.password), 303, 'the right password from a fresh source signs in meanwhile');
  } finally {
    clock.resume();
  }
});

test('issue 10 F4: ten wrong passwords from one address lock only that address out; another address with the right password signs in', async () => {
  const user = await createUser(server.keyward);
  const attacker = '203.0.113.66';
  const form = await loginForm(attacker);
  clock.stop();
  try {
    const statuses: number[] = [];
    for (let i = 0; i < DEFAULT_THROTTLE_POLICY.account.lockAfter; i++) {
      statuses.push(await submit(form, attacker, user.username, `wrong-${i}`));
      clock.advance(60_000);
    }
    assert.equal(statuses.at(-1), 429, `the attacker's address is locked out: ${statuses.join(' ')}`);
    assert.equal(await submit(form, attacker, user.username, user.password), 429, 'even with the right password, from the locked address');

    const owner = '192.0.2.10';
    assert.equal(await submit(await loginForm(owner), owner, user.username, user.password), 303, 'the owner, from an address without failures, gets in');
    assert.equal(await submit(form, attacker, user.username, user.password), 429, 'the attacker\'s address stays locked out after the owner signed in');
  } finally {
    clock.resume();
  }
});

test('issue 10 F4: usernames are case-insensitive: stored lowercased, "ALICE" signs in as alice, and "Alice" cannot be created beside "alice"', async () => {
  const password = 'correct horse battery';
  const created = await server.keyward.users.create({ username: 'Carol.Case', password });
  assert.equal(created.username, 'carol.case');
  await assert.rejects(server.keyward.users.create({ username: 'CAROL.case', password }), (error: Error) => error.name === 'Conflict');
  const other = await server.keyward.users.create({ username: 'dave', password });
  await assert.rejects(server.keyward.users.update(other.id, { username: 'Carol.CASE' }), (error: Error) => error.name === 'Conflict');
  const ip = '192.0.2.11';
  assert.equal(await submit(await loginForm(ip), ip, 'CAROL.CASE', password), 303);
});
