import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { lifecycleSettings } from '../../src/keys/lifecycle.ts';
import { TestClock } from '../support/clock.ts';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';
import { adminEnv, adminToken, fetchJwks, kidOf, kidsInJwks, only } from './helpers.ts';

const DAY = 86_400_000;
const LEAD = lifecycleSettings({ rotationIntervalMs: 30 * DAY, longestTokenTtlSeconds: 3600, algs: ['ES256', 'RS256'] }).stagingLeadMs;

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

  test('a restart in the middle of a staged period resumes it: the staged key signs exactly one lead after it was staged', async () => {
    const clock = new TestClock();
    server = await startServer(db, adminEnv, { now: clock.now, timers: clock.timers });
    const first = await only(server, 'ES256', 'active');
    clock.set((await server.keyward.keyScheduler.nextDueAt())!);
    await server.keyward.keyScheduler.runDue();
    const staged = await only(server, 'ES256', 'staged');
    const stagedAt = clock.ms;
    await server.stop();
    server = undefined;

    // Down for half the lead; the new process has a fresh uptime and the same store.
    clock.advance(LEAD / 2);
    server = await startServer(db, adminEnv, { now: clock.now, timers: clock.timers });
    assert.equal((await only(server, 'ES256', 'staged')).kid, staged.kid, 'the restart neither drops nor re-stages the successor');
    assert.ok((await kidsInJwks(server.url)).includes(staged.kid));
    assert.equal(kidOf(await adminToken(server.url)), first.kid);
    assert.equal((await server.keyward.keyScheduler.nextDueAt())!.getTime(), stagedAt + LEAD);
    const view = (await server.keyward.keyService.list()).find((v) => v.kid === staged.kid)!;
    assert.deepEqual([view.next_state, Date.parse(view.next_transition_at!)], ['active', stagedAt + LEAD]);

    clock.set(new Date(stagedAt + LEAD - 1));
    await server.keyward.keyScheduler.runDue();
    assert.equal((await only(server, 'ES256', 'staged')).kid, staged.kid);

    clock.set(new Date(stagedAt + LEAD));
    await server.keyward.keyScheduler.runDue();
    const promoted = (await server.keyward.keyService.list()).find((v) => v.kid === staged.kid)!;
    assert.equal(promoted.state, 'active');
    assert.equal(Date.parse(promoted.activated_at!), stagedAt + LEAD);
    assert.equal(kidOf(await adminToken(server.url)), staged.kid);
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

  test('without any call, the running server stages, publishes and then activates a successor on time', async () => {
    assert.match((await fetchJwks(server.url)).cacheControl ?? '', /max-age=1$/);
    const initial = await only(server, 'ES256', 'active');
    const startedAt = Date.parse((await server.keyward.keyService.list()).find((v) => v.kid === initial.kid)!.activated_at!);
    assert.ok(clock.pendingTimers()[0]! <= clock.ms, 'the first check is due at once on start');
    // Watch the JWKS as a relying party would, every 100 ms of the clock, until a kid it had not seen at first signs.
    const known = new Set(await kidsInJwks(server.url));
    const firstSeen = new Map<string, number>();
    let signer = kidOf(await adminToken(server.url));
    assert.equal(signer, initial.kid);
    while (known.has(signer) && clock.ms - startedAt < 30_000) {
      await elapse(100);
      for (const kid of await kidsInJwks(server.url)) if (!known.has(kid) && !firstSeen.has(kid)) firstSeen.set(kid, clock.ms);
      signer = kidOf(await adminToken(server.url));
    }
    const signedAt = clock.ms;
    assert.ok(!known.has(signer), `no rotation within 30 s of the clock: ${JSON.stringify(await server.keyward.keyService.list())}`);
    const views = await server.keyward.keyService.list();
    const view = views.find((v) => v.kid === signer)!;
    const earlier = views.find((v) => v.kid === initial.kid)!;
    // A 4 s interval stages 2 s (2 × max-age 1 s) before it ends; the timer wakes exactly then.
    assert.equal(Date.parse(view.created_at) - startedAt, 2000, 'staged one lead before the interval ends');
    assert.equal(Date.parse(view.activated_at!) - Date.parse(view.created_at), 2000, 'activated exactly one lead after staging');
    assert.equal(Date.parse(view.activated_at!) - Date.parse(earlier.activated_at!), 4000, 'the earlier signer signed for one whole interval');
    assert.equal(earlier.state, 'retiring');
    assert.ok(signedAt - firstSeen.get(signer)! >= 2000, `the new kid must be published a lead before it signs (seen ${signedAt - firstSeen.get(signer)!} ms before)`);
  });
});
