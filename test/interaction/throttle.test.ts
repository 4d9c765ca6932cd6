import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { DEFAULT_THROTTLE_POLICY, LoginThrottle, type ThrottlePolicy } from '../../src/interaction/throttle.ts';
import { LoginThrottleCounters } from '../../src/store/login-throttles.ts';
import { migrate } from '../../src/store/migrate.ts';
import type { Store } from '../../src/store/store.ts';
import { TestClock } from '../support/clock.ts';
import { createTestDatabase, openTestStore, type TestDatabase } from '../support/harness.ts';

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

const alice = { username: 'alice', ip: '192.0.2.1' };

test('an account gets its free failures, then exponentially growing delays (1 s, 2 s, 4 s …) capped at the maximum', async () => {
  const throttle = new LoginThrottle(new LoginThrottleCounters(store.prisma), now);
  const { freeFailures, maxDelayMs } = DEFAULT_THROTTLE_POLICY.account;
  for (let i = 0; i < freeFailures; i++) {
    assert.deepEqual(await throttle.check(alice), { allowed: true });
    await throttle.recordFailure(alice);
  }
  const delays: number[] = [];
  for (let i = 0; i < 6; i++) {
    const verdict = await throttle.check(alice);
    assert.equal(verdict.allowed, false);
    assert.ok(!verdict.allowed && verdict.reason === 'delayed' && verdict.scope === 'account');
    delays.push(verdict.retryAfterMs);
    clock.advance(verdict.retryAfterMs);
    assert.deepEqual(await throttle.check(alice), { allowed: true }, 'allowed once the delay has passed');
    await throttle.recordFailure(alice);
  }
  assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000, maxDelayMs]);
});

test('the lock: at lockAfter failures the account is locked for lockMs, and one more failure after it ends locks it again', async () => {
  const throttle = new LoginThrottle(new LoginThrottleCounters(store.prisma), now);
  const { lockAfter, lockMs } = DEFAULT_THROTTLE_POLICY.account;
  for (let i = 1; i < lockAfter; i++) {
    assert.deepEqual((await throttle.recordFailure(alice)).locked, []);
    clock.advance(60_000);
  }
  const { locked } = await throttle.recordFailure(alice);
  assert.deepEqual(locked, [{ scope: 'account', until: new Date(clock.ms + lockMs) }]);
  clock.advance(lockMs - 1000);
  assert.deepEqual(await throttle.check(alice), { allowed: false, reason: 'locked', scope: 'account', retryAfterMs: 1000 });
  clock.advance(1000);
  assert.deepEqual(await throttle.check(alice), { allowed: true });
  assert.equal((await throttle.recordFailure(alice)).locked.length, 1);
});

test('the account key ignores case and surrounding space; other accounts are unaffected', async () => {
  const throttle = new LoginThrottle(new LoginThrottleCounters(store.prisma), now, { ...DEFAULT_THROTTLE_POLICY, account: { ...DEFAULT_THROTTLE_POLICY.account, freeFailures: 1 } });
  await throttle.recordFailure({ username: ' Alice ', ip: '192.0.2.1' });
  assert.equal((await throttle.check({ username: 'alice', ip: '198.51.100.7' })).allowed, false);
  assert.equal((await throttle.check({ username: 'bob', ip: '198.51.100.7' })).allowed, true);
});

test('per client IP: failures across many usernames lock the IP, not the accounts', async () => {
  const policy: ThrottlePolicy = { ...DEFAULT_THROTTLE_POLICY, ip: { ...DEFAULT_THROTTLE_POLICY.ip, freeFailures: 100, lockAfter: 5 } };
  const throttle = new LoginThrottle(new LoginThrottleCounters(store.prisma), now, policy);
  let outcome;
  for (let i = 0; i < 5; i++) outcome = await throttle.recordFailure({ username: `user${i}`, ip: '203.0.113.9' });
  assert.deepEqual(outcome!.locked.map((l) => l.scope), ['ip']);
  const verdict = await throttle.check({ username: 'someone-else', ip: '203.0.113.9' });
  assert.ok(!verdict.allowed && verdict.reason === 'locked' && verdict.scope === 'ip');
  assert.deepEqual(await throttle.check({ username: 'someone-else', ip: '203.0.113.10' }), { allowed: true });
});

test('a success clears the account counter but not the IP counter', async () => {
  const throttle = new LoginThrottle(new LoginThrottleCounters(store.prisma), now);
  for (let i = 0; i < 3; i++) await throttle.recordFailure(alice);
  await throttle.recordSuccess(alice);
  const rows = await store.prisma.loginThrottle.findMany({ orderBy: { key: 'asc' } });
  assert.deepEqual(rows.map((r) => [r.key, r.failures]), [['ip:192.0.2.1', 3]]);
});

test('an old counter is forgotten: the next failure starts again at 1', async () => {
  const throttle = new LoginThrottle(new LoginThrottleCounters(store.prisma), now);
  for (let i = 0; i < 5; i++) await throttle.recordFailure(alice);
  clock.advance(DEFAULT_THROTTLE_POLICY.account.forgetAfterMs + 1);
  assert.deepEqual(await throttle.check(alice), { allowed: true });
  await throttle.recordFailure(alice);
  const row = await store.prisma.loginThrottle.findUnique({ where: { key: 'account:alice' } });
  assert.equal(row?.failures, 1);
});

test('concurrent failures (as from several instances) are all counted: the increment is one atomic upsert', async () => {
  const throttle = new LoginThrottle(new LoginThrottleCounters(store.prisma), now);
  await Promise.all(Array.from({ length: 12 }, () => throttle.recordFailure(alice)));
  const row = await store.prisma.loginThrottle.findUnique({ where: { key: 'account:alice' } });
  assert.equal(row?.failures, 12);
  assert.ok(row?.lockedUntil, 'past lockAfter the account is locked');
});
