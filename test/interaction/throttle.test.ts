import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { DEFAULT_THROTTLE_POLICY, LoginThrottle, type ThrottlePolicy } from '../../src/interaction/throttle.ts';
import { LoginThrottleCounters } from '../../src/store/login-throttles.ts';
import { migrate } from '../../src/store/migrate.ts';
import type { Store } from '../../src/store/store.ts';
import { TestClock } from '../support/clock.ts';
import { createTestDatabase, openTestStore, startServer, type TestDatabase } from '../support/harness.ts';

let db: TestDatabase;
let store: Store;
const clock = new TestClock();
const now = clock.now;

before(async () => {
  db = await createTestDatabase();
  store = await openTestStore(db);
  await migrate(store.sql);
});
after(async () => {
  await store?.close();
  await db?.drop();
});
beforeEach(async () => {
  clock.set(new Date('2026-01-01T00:00:00Z'));
  await store.prisma.loginThrottle.deleteMany();
});

const alice = { account: '6f1c1f9e-0000-4000-8000-000000000001', ip: '192.0.2.1' };

/** One wrong password: reserve (must be allowed), then keep the failure. */
async function fail(throttle: LoginThrottle, attempt = alice) {
  const reservation = await throttle.reserve(attempt);
  assert.ok(reservation.allowed, 'the attempt is allowed');
  return reservation;
}

test('one source on one account gets its free failures, then exponentially growing delays (1 s, 2 s, 4 s …) capped at the maximum', async () => {
  const throttle = new LoginThrottle(new LoginThrottleCounters(store.prisma), now);
  const { freeFailures, maxDelayMs } = DEFAULT_THROTTLE_POLICY.account;
  for (let i = 0; i < freeFailures; i++) {
    assert.deepEqual(await throttle.check(alice), { allowed: true });
    await fail(throttle);
  }
  const delays: number[] = [];
  for (let i = 0; i < 6; i++) {
    const verdict = await throttle.reserve(alice);
    assert.ok(!verdict.allowed && verdict.reason === 'delayed' && verdict.scope === 'account');
    delays.push(verdict.retryAfterMs);
    clock.advance(verdict.retryAfterMs);
    assert.deepEqual(await throttle.check(alice), { allowed: true }, 'allowed once the delay has passed');
    await fail(throttle);
  }
  assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000, maxDelayMs]);
});

test('the lock: at lockAfter failures this source is locked out of the account for lockMs, and one more failure after it ends locks it again', async () => {
  const throttle = new LoginThrottle(new LoginThrottleCounters(store.prisma), now);
  const { lockAfter, lockMs } = DEFAULT_THROTTLE_POLICY.account;
  for (let i = 1; i < lockAfter; i++) {
    assert.deepEqual((await fail(throttle)).locks, []);
    clock.advance(60_000);
  }
  assert.deepEqual((await fail(throttle)).locks, [{ scope: 'account', until: new Date(clock.ms + lockMs) }]);
  clock.advance(lockMs - 1000);
  assert.deepEqual(await throttle.check(alice), { allowed: false, reason: 'locked', scope: 'account', retryAfterMs: 1000 });
  clock.advance(1000);
  assert.deepEqual(await throttle.check(alice), { allowed: true });
  assert.equal((await fail(throttle)).locks.length, 1);
});

test('issue 10 F4: failures from one source neither delay nor lock the same account from another source', async () => {
  const throttle = new LoginThrottle(new LoginThrottleCounters(store.prisma), now);
  for (let i = 0; i < DEFAULT_THROTTLE_POLICY.account.lockAfter; i++) {
    await fail(throttle);
    clock.advance(60_000);
  }
  assert.equal((await throttle.check(alice)).allowed, false);
  assert.deepEqual(await throttle.check({ ...alice, ip: '198.51.100.7' }), { allowed: true });
  assert.deepEqual(await throttle.check({ account: 'someone-else', ip: alice.ip }), { allowed: true });
});

test('per client IP: failures across many accounts lock the IP, not the accounts', async () => {
  const policy: ThrottlePolicy = { ...DEFAULT_THROTTLE_POLICY, ip: { ...DEFAULT_THROTTLE_POLICY.ip, freeFailures: 100, lockAfter: 5 } };
  const throttle = new LoginThrottle(new LoginThrottleCounters(store.prisma), now, policy);
  let reservation;
  for (let i = 0; i < 5; i++) reservation = await fail(throttle, { account: `user${i}`, ip: '203.0.113.9' });
  assert.deepEqual(reservation!.locks.map((l) => l.scope), ['ip']);
  const verdict = await throttle.reserve({ account: 'someone-else', ip: '203.0.113.9' });
  assert.ok(!verdict.allowed && verdict.reason === 'locked' && verdict.scope === 'ip');
  assert.deepEqual(await throttle.check({ account: 'someone-else', ip: '203.0.113.10' }), { allowed: true });
  const row = await store.prisma.loginThrottle.findUnique({ where: { key: 'account:someone-else@203.0.113.9' } });
  assert.equal(row?.failures ?? 0, 0, 'a refused attempt counts nowhere');
});

test('a success clears this source\'s account counter and refunds its own attempt on the IP counter', async () => {
  const throttle = new LoginThrottle(new LoginThrottleCounters(store.prisma), now);
  for (let i = 0; i < 3; i++) await fail(throttle);
  clock.advance(10_000);
  await throttle.succeeded(await fail(throttle));
  const rows = await store.prisma.loginThrottle.findMany({ orderBy: { key: 'asc' } });
  assert.deepEqual(rows.map((r) => [r.key, r.failures]), [['ip:192.0.2.1', 3]]);
});

test('an old counter is forgotten: the next failure starts again at 1', async () => {
  const throttle = new LoginThrottle(new LoginThrottleCounters(store.prisma), now);
  for (let i = 0; i < 3; i++) await fail(throttle);
  clock.advance(DEFAULT_THROTTLE_POLICY.account.forgetAfterMs + 1);
  assert.deepEqual(await throttle.check(alice), { allowed: true });
  await fail(throttle);
  const row = await store.prisma.loginThrottle.findUnique({ where: { key: LoginThrottle.keys(alice).account } });
  assert.equal(row?.failures, 1);
});

test('issue 10 F3: concurrent attempts (as from several instances) reserve atomically: exactly the free failures get through', async () => {
  const throttle = new LoginThrottle(new LoginThrottleCounters(store.prisma), now);
  const outcomes = await Promise.all(Array.from({ length: 12 }, () => throttle.reserve(alice)));
  assert.equal(outcomes.filter((o) => o.allowed).length, DEFAULT_THROTTLE_POLICY.account.freeFailures);
  const row = await store.prisma.loginThrottle.findUnique({ where: { key: LoginThrottle.keys(alice).account } });
  assert.equal(row?.failures, DEFAULT_THROTTLE_POLICY.account.freeFailures);
});

test('IPv6: the addresses of one /64 share their counters (an attacker holds the whole /64); an IPv4-mapped address counts as its IPv4 address', async () => {
  const throttle = new LoginThrottle(new LoginThrottleCounters(store.prisma), now);
  for (let i = 1; i <= DEFAULT_THROTTLE_POLICY.account.freeFailures; i++) await fail(throttle, { ...alice, ip: `2001:db8:7:8::${i.toString(16)}` });
  assert.equal((await throttle.check({ ...alice, ip: '2001:db8:7:8:ffff:1:2:3' })).allowed, false, 'another address of the same /64');
  assert.deepEqual(await throttle.check({ ...alice, ip: '2001:db8:7:9::1' }), { allowed: true }, 'the neighbouring /64');

  for (let i = 0; i < DEFAULT_THROTTLE_POLICY.account.freeFailures; i++) await fail(throttle, { ...alice, ip: '::ffff:198.51.100.20' });
  assert.equal((await throttle.check({ ...alice, ip: '198.51.100.20' })).allowed, false);
  assert.deepEqual(LoginThrottle.keys({ account: 'a', ip: '::ffff:198.51.100.20' }), { account: 'account:a@198.51.100.20', ip: 'ip:198.51.100.20' });
});

test('issue 11: the purge deletes the counters that no longer throttle anyone (forgotten, no running lock), keeps the others, and changes no verdict', async () => {
  const counters = new LoginThrottleCounters(store.prisma);
  const throttle = new LoginThrottle(counters, now);
  const { forgetAfterMs } = DEFAULT_THROTTLE_POLICY.account;
  for (let i = 0; i < 3; i++) await fail(throttle);
  // A lock outlasting the forget period (a longer lockMs in another policy) is kept while it runs.
  await store.prisma.loginThrottle.create({ data: { key: 'ip:203.0.113.50', failures: 100, lastFailure: clock.now(), lockedUntil: new Date(clock.ms + forgetAfterMs + 60_000) } });
  clock.advance(forgetAfterMs + 1);
  const recent = { account: 'someone-else', ip: '198.51.100.3' };
  await fail(throttle, recent);

  const before = await Promise.all([alice, recent].map((a) => throttle.check(a)));
  assert.equal(await throttle.purge(), 2, 'alice\'s account and IP counters');
  const rows = await store.prisma.loginThrottle.findMany({ orderBy: { key: 'asc' } });
  assert.deepEqual(rows.map((r) => r.key), ['account:someone-else@198.51.100.3', 'ip:198.51.100.3', 'ip:203.0.113.50']);
  assert.deepEqual(await Promise.all([alice, recent].map((a) => throttle.check(a))), before);
  assert.equal(await throttle.purge(), 0, 'idempotent');

  clock.advance(60_001);
  assert.equal(await throttle.purge(), 1, 'the long lock, once it has ended');
});

test('issue 11: a running Keyward purges stale login-throttle rows (at start, then every 10 minutes)', async () => {
  await store.prisma.loginThrottle.createMany({ data: [
    { key: 'ip:192.0.2.77', failures: 4, lastFailure: new Date(clock.ms - 2 * 60 * 60_000), lockedUntil: null },
    { key: 'ip:192.0.2.78', failures: 4, lastFailure: new Date(clock.ms - 60_000), lockedUntil: null },
  ] });
  const server = await startServer(db, {}, { store, now });
  await server.stop(); // waits for the purge it started
  assert.deepEqual((await store.prisma.loginThrottle.findMany()).map((r) => r.key), ['ip:192.0.2.78']);
});
