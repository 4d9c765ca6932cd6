import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { lifecycleSettings } from '../../src/keys/lifecycle.ts';
import { TestClock } from '../support/clock.ts';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';
import { adminEnv, adminToken, fetchJwks, keyTransitionEvents, kidOf, kidsInJwks, only } from './helpers.ts';

const DAY = 86_400_000;
const MAX_AGE = lifecycleSettings({ rotationIntervalMs: 30 * DAY, longestTokenTtlSeconds: 3600, algs: ['ES256', 'RS256'] }).jwksMaxAgeMs;

describe('the schedule is computed from the store, not from uptime', () => {
  let db: TestDatabase;
  let server: TestServer | undefined;

  before(async () => {
    db = await createTestDatabase();
  });
  after(async () => {
    await server?.stop();
    await db?.drop();
  });

  test('a restart resumes the schedule and the manual-rotation wait where they were: the next key signs one interval after the current began', async () => {
    const clock = new TestClock();
    server = await startServer(db, adminEnv, { now: clock.now, timers: clock.timers });
    const first = await only(server, 'ES256', 'active');
    const firstNext = await only(server, 'ES256', 'staged');
    // A scheduled rotation: the next key signs and a new next key is published.
    clock.set((await server.keyward.keyScheduler.nextDueAt())!);
    await server.keyward.keyScheduler.runDue();
    assert.equal((await only(server, 'ES256', 'active')).kid, firstNext.kid);
    const next = await only(server, 'ES256', 'staged');
    const publishedAt = clock.ms;
    await server.stop();
    server = undefined;

    // Down for half the JWKS max-age; the new process has a fresh uptime and the same store.
    clock.advance(MAX_AGE / 2);
    server = await startServer(db, adminEnv, { now: clock.now, timers: clock.timers });
    assert.equal((await only(server, 'ES256', 'staged')).kid, next.kid, 'the restart neither drops nor replaces the next key');
    assert.equal((await only(server, 'ES256', 'retiring')).kid, first.kid);
    assert.ok((await kidsInJwks(server.url)).includes(next.kid));
    assert.equal(kidOf(await adminToken(server.url)), firstNext.kid);
    const view = (await server.keyward.keyService.list()).find((v) => v.kid === next.kid)!;
    assert.deepEqual([view.next_state, Date.parse(view.next_transition_at!), Date.parse(view.rotatable_at!)], ['active', publishedAt + 30 * DAY, publishedAt + MAX_AGE]);
    await assert.rejects(server.keyward.keyService.rotate({ alg: 'ES256' }), (e: Error & { retryAt?: Date }) => e.retryAt?.getTime() === publishedAt + MAX_AGE);

    clock.set(publishedAt + MAX_AGE);
    await server.keyward.keyService.rotate({ alg: 'ES256' });
    assert.equal(kidOf(await adminToken(server.url)), next.kid);
    const promoted = (await server.keyward.keyService.list()).find((v) => v.kid === next.kid)!;
    assert.equal(Date.parse(promoted.activated_at!), publishedAt + MAX_AGE);
    assert.equal(Date.parse(promoted.next_transition_at!), publishedAt + MAX_AGE + 30 * DAY);
  });

  test('a store from before next keys gets one at start; the schedule activates it no sooner than 24 h later', async () => {
    const clock = new TestClock();
    await server?.stop();
    const db2 = await createTestDatabase();
    try {
      server = await startServer(db2, adminEnv, { now: clock.now, timers: clock.timers });
      await server.keyward.store.sql.query("DELETE FROM signing_keys WHERE state = 'staged'");
      const current = await only(server, 'RS256', 'active');
      await server.stop();
      clock.advance(40 * DAY);
      server = await startServer(db2, adminEnv, { now: clock.now, timers: clock.timers });
      const next = await only(server, 'RS256', 'staged');
      assert.ok((await kidsInJwks(server.url)).includes(next.kid));
      assert.equal((await server.keyward.keyScheduler.nextDueAt())!.getTime(), clock.ms + DAY);
      assert.equal((await only(server, 'RS256', 'active')).kid, current.kid);
      const started = (await keyTransitionEvents(server)).filter((e) => e.subject === next.kid);
      assert.deepEqual(started.map((e) => [e.actor, e.details.reason, e.details.to]), [['startup', 'initial', 'staged']]);
    } finally {
      await server?.stop();
      server = undefined;
      await db2.drop();
    }
  });
});

describe('the scheduler timer (stepped by the test clock, 4 s interval, EdDSA configured)', () => {
  let db: TestDatabase;
  let server: TestServer;
  const clock = new TestClock();

  before(async () => {
    db = await createTestDatabase();
    server = await startServer(db, { ...adminEnv, KEYWARD_KEY_ROTATION_INTERVAL: '4s', KEYWARD_SIGNING_ALGS: 'ES256,RS256,EdDSA' }, { now: clock.now, timers: clock.timers });
  });
  after(async () => {
    await server?.stop();
    await db?.drop();
  });

  /** Moves the clock by `ms`; when that wakes the scheduler, waits until its check is over (it sleeps again). */
  async function elapse(ms: number): Promise<void> {
    const wakes = clock.pendingTimers().some((at) => at <= clock.ms + ms);
    const sleepsAgain = clock.nextSchedule();
    clock.advance(ms);
    if (wakes) await sleepsAgain;
  }

  test('a configured EdDSA key is created active and published', async () => {
    const eddsa = await only(server, 'EdDSA', 'active');
    const published = (await fetchJwks(server.url)).jwks.keys.find((k) => k.kid === eddsa.kid);
    assert.deepEqual([published?.kty, published?.crv, published?.alg], ['OKP', 'Ed25519', 'EdDSA']);
  });

  test('without any call, the running server activates the next key on time, after it was published for a whole interval', async () => {
    assert.match((await fetchJwks(server.url)).cacheControl ?? '', /max-age=1$/);
    const initial = await only(server, 'ES256', 'active');
    const startedAt = Date.parse((await server.keyward.keyService.list()).find((v) => v.kid === initial.kid)!.activated_at!);
    assert.ok(clock.pendingTimers()[0]! <= clock.ms, 'the first check is due at once on start');
    // Watch the JWKS as a relying party would, every 100 ms of the clock, until a kid it had not seen at first signs.
    const firstSeen = new Map<string, number>();
    for (const kid of await kidsInJwks(server.url)) firstSeen.set(kid, clock.ms);
    let signer = kidOf(await adminToken(server.url));
    assert.equal(signer, initial.kid);
    const signers = [signer];
    while (signers.length < 3 && clock.ms - startedAt < 30_000) {
      await elapse(100);
      for (const kid of await kidsInJwks(server.url)) if (!firstSeen.has(kid)) firstSeen.set(kid, clock.ms);
      signer = kidOf(await adminToken(server.url));
      if (signer !== signers.at(-1)) {
        signers.push(signer);
        assert.ok(clock.ms - firstSeen.get(signer)! >= 4000, `a new signer must have been in the JWKS a whole interval (seen ${clock.ms - firstSeen.get(signer)!} ms before)`);
      }
    }
    assert.equal(signers.length, 3, `two rotations within 30 s of the clock: ${JSON.stringify(await server.keyward.keyService.list())}`);
    const views = await server.keyward.keyService.list();
    const second = views.find((v) => v.kid === signers[1])!;
    const third = views.find((v) => v.kid === signers[2])!;
    assert.equal(Date.parse(second.activated_at!) - startedAt, 4000, 'the first key signed for exactly one interval');
    assert.equal(Date.parse(third.activated_at!) - Date.parse(third.created_at), 4000, 'the next key was created when its predecessor began signing');
    assert.equal(views.find((v) => v.kid === initial.kid)!.state, 'retiring');
  });
});
