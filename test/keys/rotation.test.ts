import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { lifecycleSettings } from '../../src/keys/lifecycle.ts';
import { TestClock } from '../support/clock.ts';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';
import { adminEnv, adminToken, fetchJwks, keyRows, keyTransitionEvents, kidOf, kidsInJwks, only, verifiesNow } from './helpers.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
// Defaults: 30 d interval; the longest token is the 1 h ID token.
const settings = lifecycleSettings({ rotationIntervalMs: 30 * DAY, longestTokenTtlSeconds: 3600, algs: ['ES256', 'RS256'] });
const MAX_AGE = settings.jwksMaxAgeMs;
const RETIRE = settings.retireAfterMs;

describe('signing-key lifecycle on one instance (injected clock)', () => {
  let db: TestDatabase;
  let server: TestServer;
  const clock = new TestClock();
  /** Log lines written before the running test began. */
  let logMark = 0;

  before(async () => {
    db = await createTestDatabase();
    server = await startServer(db, adminEnv, { now: clock.now, timers: clock.timers });
  });
  after(async () => {
    await server?.stop();
    await db?.drop();
  });
  // Each test starts from the same key set, a first start's: per algorithm a current key and a
  // next key created with it, and no key history, so no state or count carries over from
  // another test and any one can run alone.
  beforeEach(async () => {
    const { keyward } = server;
    await keyward.audit.flush();
    await keyward.store.sql.query('DELETE FROM signing_keys');
    await keyward.store.sql.query("DELETE FROM audit_events WHERE type = 'key.transition'");
    for (const alg of keyward.config.signingAlgs) {
      await keyward.keys.create(alg, 'active', clock.now);
      await keyward.keys.create(alg, 'staged', clock.now);
    }
    await keyward.reloadKeys();
    logMark = server.logs.lines.length;
  });

  const runDue = () => server.keyward.keyScheduler.runDue();

  test('JWKS responses carry Cache-Control max-age: the time a manual rotation waits after a next key is published', async () => {
    const { cacheControl } = await fetchJwks(server.url);
    const maxAge = Number(/max-age=(\d+)/.exec(cacheControl ?? '')?.[1]);
    assert.equal(maxAge * 1000, MAX_AGE);
    assert.equal(maxAge, 3600);
  });

  test('GET keys lists, per algorithm, the current and the next key, both published, with the past and next transition of each', async () => {
    const views = await server.keyward.keyService.list();
    assert.deepEqual(views.map((v) => `${v.alg}:${v.state}:${v.role}`).sort(), ['ES256:active:current', 'ES256:staged:next', 'RS256:active:current', 'RS256:staged:next']);
    assert.equal(new Set((await kidsInJwks(server.url))).size, 4);
    for (const v of views) {
      assert.equal(v.use, 'sig');
      assert.equal(v.published_at, v.created_at);
      assert.equal(Date.parse(v.next_transition_at!), clock.ms + 30 * DAY);
      assert.equal(v.next_state, v.state === 'active' ? 'retiring' : 'active');
      assert.equal(JSON.stringify(v).includes('"d"'), false);
    }
  });

  test('full lifecycle over three intervals: the next key was published a whole interval before it signs, old tokens verify until retirement, retired keys vanish with their private part', async () => {
    for (let round = 0; round < 3; round++) {
      const oldKid = (await only(server, 'ES256', 'active')).kid;
      const next = await only(server, 'ES256', 'staged');
      await only(server, 'RS256', 'staged');
      const oldToken = await adminToken(server.url);
      assert.equal(kidOf(oldToken), oldKid);
      const jwksBefore = (await fetchJwks(server.url)).jwks;
      assert.deepEqual(jwksBefore.keys.find((k) => k.kid === next.kid)?.key_ops, ['verify']);

      // Not a millisecond before the interval has passed.
      const due = (await server.keyward.keyScheduler.nextDueAt())!;
      const nextView = (await server.keyward.keyService.list()).find((v) => v.kid === next.kid)!;
      assert.equal(due.getTime() - Date.parse(nextView.published_at), 30 * DAY, 'published one whole interval before it signs');
      clock.set(due.getTime() - 1);
      await runDue();
      assert.equal((await only(server, 'ES256', 'active')).kid, oldKid);

      // Promotion: the next kid signs, the current one is previous, and a new next key is published.
      clock.advance(1);
      await runDue();
      assert.equal((await only(server, 'ES256', 'active')).kid, next.kid);
      const newToken = await adminToken(server.url);
      assert.equal(kidOf(newToken), next.kid);
      assert.ok(jwksBefore.keys.some((k) => k.kid === next.kid));
      assert.equal((await only(server, 'ES256', 'retiring')).kid, oldKid);
      assert.ok((await kidsInJwks(server.url)).includes((await only(server, 'ES256', 'staged')).kid));
      assert.ok(await verifiesNow(server.url, oldToken), 'a token issued before the rotation verifies after it');
      assert.ok(await verifiesNow(server.url, newToken));

      // Retirement: after the longest token lifetime plus margin, gone from the JWKS and the store.
      clock.advance(RETIRE - 1);
      await runDue();
      assert.ok((await kidsInJwks(server.url)).includes(oldKid));
      clock.advance(1);
      await runDue();
      assert.ok(!(await kidsInJwks(server.url)).includes(oldKid));
      const retired = (await keyRows(server)).find((r) => r.kid === oldKid)!;
      assert.equal(retired.state, 'retired');
      assert.equal(retired.encrypted_jwk, null);
      assert.equal(await verifiesNow(server.url, oldToken), false);
      assert.ok(await verifiesNow(server.url, newToken));
    }
    const views = await server.keyward.keyService.list();
    assert.equal(views.filter((v) => v.state === 'retired').length, 6);
    for (const v of views.filter((v) => v.state === 'retired')) assert.ok(v.activated_at && v.retiring_at && v.retired_at && !v.next_state);
  });

  test('every transition is an audit event and a log line, and no private key reaches the log', async () => {
    assert.deepEqual(await keyTransitionEvents(server), []);
    // One round for both algorithms: next → active, current → retiring, a new next key, previous → retired.
    clock.set((await server.keyward.keyScheduler.nextDueAt())!);
    await runDue();
    clock.advance(RETIRE);
    await runDue();
    const events = await keyTransitionEvents(server);
    assert.equal(events.length, 2 * 4);
    assert.ok(events.every((e) => typeof e.details.to === 'string' && e.details.reason === 'schedule'));
    const logged = server.logs.lines.slice(logMark).filter((l) => l.includes('"message":"signing key transition"')).map((l) => JSON.parse(l) as { kid: string; to: string });
    assert.deepEqual(logged.map((l) => `${l.kid}:${l.to}`).sort(), events.map((e) => `${e.subject}:${String(e.details.to)}`).sort());
    for (const key of await server.keyward.keys.loadUsable()) {
      assert.equal(server.logs.text.includes(String(key.privateJwk.d)), false);
    }
  });

  test('manual rotation right after the first start is instant: the new kid signs at once and was in every JWKS served before', async () => {
    const before = await only(server, 'ES256', 'active');
    const next = await only(server, 'ES256', 'staged');
    assert.ok((await kidsInJwks(server.url)).includes(next.kid));
    await server.keyward.keyService.rotate({ alg: 'ES256', actor: 'test-operator' });
    assert.equal(kidOf(await adminToken(server.url)), next.kid, 'no clock move: the next key signs at once');
    assert.equal((await only(server, 'ES256', 'retiring')).kid, before.kid);
    const newNext = await only(server, 'ES256', 'staged');
    assert.ok((await kidsInJwks(server.url)).includes(newNext.kid), 'a new next key is published at once');
    const manual = (await keyTransitionEvents(server)).filter((e) => e.details.reason === 'manual');
    assert.deepEqual(manual.map((e) => [e.actor, e.details.from, e.details.to]), [
      ['test-operator', 'staged', 'active'], ['test-operator', 'active', 'retiring'], ['test-operator', null, 'staged']]);
  });

  test('two rotations in a row: the second is refused (RotationTooEarly, possible_at) and changes nothing until the JWKS max-age has passed', async () => {
    await server.keyward.keyService.rotate({ alg: 'ES256' });
    const next = await only(server, 'ES256', 'staged');
    const signer = kidOf(await adminToken(server.url));
    await assert.rejects(server.keyward.keyService.rotate({ alg: 'ES256' }), (error: Error & { retryAt?: Date }) => {
      assert.equal(error.name, 'RotationTooEarly');
      assert.equal(error.retryAt?.getTime(), clock.ms + MAX_AGE);
      return true;
    });
    clock.advance(MAX_AGE - 1);
    await assert.rejects(server.keyward.keyService.rotate({ alg: 'ES256' }), { name: 'RotationTooEarly' });
    assert.equal(kidOf(await adminToken(server.url)), signer);
    assert.equal((await only(server, 'ES256', 'staged')).kid, next.kid, 'a refused rotation creates no key');
    clock.advance(1);
    await server.keyward.keyService.rotate({ alg: 'ES256' });
    assert.equal(kidOf(await adminToken(server.url)), next.kid);
  });

  test('emergency rotation withdraws the current key at once (gone from the JWKS, private part deleted, its tokens stop verifying) and the next key signs', async () => {
    const compromised = await only(server, 'ES256', 'active');
    const next = await only(server, 'ES256', 'staged');
    const rsActive = await only(server, 'RS256', 'active');
    const token = await adminToken(server.url);
    assert.equal(kidOf(token), compromised.kid);

    const views = await server.keyward.keyService.rotate({ alg: 'ES256', emergency: true, actor: 'test-operator' });
    const view = views.find((v) => v.kid === compromised.kid)!;
    assert.equal(view.state, 'retired');
    assert.equal(view.published, false);
    assert.equal((await keyRows(server)).find((r) => r.kid === compromised.kid)!.encrypted_jwk, null);
    assert.ok(!(await kidsInJwks(server.url)).includes(compromised.kid));
    assert.equal(await verifiesNow(server.url, token), false);

    const replacement = await only(server, 'ES256', 'active');
    assert.equal(replacement.kid, next.kid, 'the next key, already published, signs');
    assert.notEqual((await only(server, 'ES256', 'staged')).kid, next.kid, 'and a new next key is created');
    const fresh = await adminToken(server.url);
    assert.equal(kidOf(fresh), replacement.kid);
    assert.ok(await verifiesNow(server.url, fresh));
    assert.equal((await only(server, 'RS256', 'active')).kid, rsActive.kid, 'other algorithms are untouched');
  });

  test('rotating an algorithm that is not in use is refused', async () => {
    await assert.rejects(server.keyward.keyService.rotate({ alg: 'EdDSA' }), { name: 'Invalid' });
    assert.equal((await keyRows(server)).filter((r) => r.alg === 'EdDSA').length, 0);
  });

  test('hot reload drops no in-flight request: token requests overlapping the Provider swap all succeed, signed by the old kid and then the new', async () => {
    const oldKid = (await only(server, 'ES256', 'active')).kid;
    const results: { ok: boolean; detail: string; kid?: string; token?: string; startedAfterSwap: boolean }[] = [];
    let swapped = false;
    let inFlight = 0;
    let inFlightAtSwap = 0;
    server.keyward.provider.onSwap(() => {
      swapped = true;
      inFlightAtSwap = inFlight;
    });
    let stop = false;
    const request = async (): Promise<void> => {
      const startedAfterSwap = swapped;
      inFlight++;
      try {
        const token = await adminToken(server.url);
        results.push({ ok: true, detail: '', kid: kidOf(token), token, startedAfterSwap });
      } catch (error) {
        results.push({ ok: false, detail: (error as Error).message, startedAfterSwap });
      } finally {
        inFlight--;
      }
    };
    // A stream of 8 concurrent clients, each sending its next request as soon as one is answered.
    const stream = Promise.all(Array.from({ length: 8 }, async () => {
      while (!stop) await request();
    }));
    const waitFor = async (check: () => boolean) => {
      while (!check()) await new Promise((r) => setTimeout(r, 5));
    };
    await waitFor(() => results.length >= 16);
    const rotated = server.keyward.keyService.rotate({ alg: 'ES256', emergency: true });
    await rotated;
    // Keep the stream going until the new Provider has answered a few requests of its own.
    await waitFor(() => results.filter((r) => r.startedAfterSwap).length >= 16);
    stop = true;
    await stream;

    const failures = results.filter((r) => !r.ok);
    assert.deepEqual(failures.map((r) => r.detail), [], 'every request overlapping the reload succeeds');
    assert.ok(swapped, 'the emergency rotation swapped the Provider');
    assert.ok(inFlightAtSwap > 0, 'requests were in flight at the instant of the swap');
    const newKid = (await only(server, 'ES256', 'active')).kid;
    assert.notEqual(newKid, oldKid);
    const kids = new Set(results.map((r) => r.kid));
    assert.ok(kids.has(oldKid), 'tokens from before the swap were signed by the old kid');
    assert.ok(kids.has(newKid), 'tokens from after the swap are signed by the new kid');
    assert.ok(results.filter((r) => r.startedAfterSwap).every((r) => r.kid === newKid), 'nothing started after the swap signs with the retired kid');
    // Tokens from the new key verify against the JWKS as served; those of the retired key no longer do.
    const sample = [results.find((r) => r.kid === oldKid)!, results.find((r) => r.kid === newKid)!];
    assert.deepEqual(await Promise.all(sample.map((r) => verifiesNow(server.url, r.token!))), [false, true]);
  });
});
