import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { lifecycleSettings } from '../../src/keys/lifecycle.ts';
import { TestClock } from '../support/clock.ts';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';
import { adminEnv, adminToken, fetchJwks, keyRows, keyTransitionEvents, kidOf, kidsInJwks, only, verifiesNow } from './helpers.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
// Defaults: 30 d interval; the longest token is the 1 h ID token.
const settings = lifecycleSettings({ rotationIntervalMs: 30 * DAY, longestTokenTtlSeconds: 3600, algs: ['ES256', 'RS256'] });
const LEAD = settings.stagingLeadMs;
const RETIRE = settings.retireAfterMs;

describe('signing-key lifecycle on one instance (injected clock)', () => {
  let db: TestDatabase;
  let server: TestServer;
  const clock = new TestClock();

  before(async () => {
    db = await createTestDatabase();
    server = await startServer(db, adminEnv, { now: clock.now });
  });
  after(async () => {
    await server?.stop();
    await db?.drop();
  });

  const runDue = () => server.keyward.keyScheduler.runDue();

  test('JWKS responses carry Cache-Control max-age no longer than the staging lead', async () => {
    const { cacheControl } = await fetchJwks(server.url);
    const maxAge = Number(/max-age=(\d+)/.exec(cacheControl ?? '')?.[1]);
    assert.equal(maxAge, 3600);
    assert.ok(maxAge * 1000 <= LEAD);
  });

  test('GET keys lists kid, alg, state and the past and next transition of each key', async () => {
    const views = await server.keyward.keyService.list();
    assert.deepEqual(views.map((v) => [v.alg, v.state]).sort(), [['ES256', 'active'], ['RS256', 'active']]);
    for (const v of views) {
      assert.equal(v.use, 'sig');
      assert.equal(v.activated_at, v.created_at);
      assert.equal(v.next_state, 'retiring');
      assert.equal(Date.parse(v.next_transition_at!), Date.parse(v.activated_at!) + 30 * DAY);
      assert.equal(JSON.stringify(v).includes('"d"'), false);
    }
  });

  test('full lifecycle over three intervals: staged before signing, old tokens verify until retirement, retired keys vanish with their private part', async () => {
    for (let round = 0; round < 3; round++) {
      const oldKid = (await only(server, 'ES256', 'active')).kid;
      const oldToken = await adminToken(server.url);
      assert.equal(kidOf(oldToken), oldKid);

      // Staging: one lead before the interval ends, the successor is published but does not sign.
      clock.set((await server.keyward.keyScheduler.nextDueAt())!);
      await runDue();
      const staged = await only(server, 'ES256', 'staged');
      await only(server, 'RS256', 'staged');
      const jwksWhileStaged = (await fetchJwks(server.url)).jwks;
      assert.deepEqual(jwksWhileStaged.keys.find((k) => k.kid === staged.kid)?.key_ops, ['verify']);
      assert.equal(kidOf(await adminToken(server.url)), oldKid, 'a staged key must not sign');

      // Not a millisecond before the lead has passed.
      clock.advance(LEAD - 1);
      await runDue();
      assert.equal((await only(server, 'ES256', 'active')).kid, oldKid);

      // Promotion: the new kid signs, and it was in the JWKS before it signed anything.
      clock.advance(1);
      await runDue();
      assert.equal((await only(server, 'ES256', 'active')).kid, staged.kid);
      const newToken = await adminToken(server.url);
      assert.equal(kidOf(newToken), staged.kid);
      assert.ok(jwksWhileStaged.keys.some((k) => k.kid === staged.kid));
      assert.equal((await only(server, 'ES256', 'retiring')).kid, oldKid);
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
    const events = await keyTransitionEvents(server);
    // Initial: 2 created active; per round and algorithm: staged, active, retiring, retired.
    assert.equal(events.length, 2 + 3 * 2 * 4);
    assert.ok(events.every((e) => typeof e.details.to === 'string' && typeof e.details.reason === 'string'));
    assert.equal(server.logs.lines.filter((l) => l.includes('"msg":"signing key transition"')).length, 3 * 2 * 4);
    for (const key of await server.keyward.keys.loadUsable()) {
      assert.equal(server.logs.text.includes(String(key.privateJwk.d)), false);
    }
  });

  test('manual rotation stages a successor at once, is idempotent while it is young, and the schedule promotes it after the lead', async () => {
    const before = await only(server, 'ES256', 'active');
    const views = await server.keyward.keyService.rotate({ alg: 'ES256', actor: 'test-operator' });
    const staged = views.filter((v) => v.state === 'staged');
    assert.deepEqual(staged.map((v) => v.alg), ['ES256']);
    assert.equal(Date.parse(staged[0]!.next_transition_at!), Date.parse(staged[0]!.created_at) + LEAD);
    assert.ok((await kidsInJwks(server.url)).includes(staged[0]!.kid));

    const again = await server.keyward.keyService.rotate({ alg: 'ES256', actor: 'test-operator' });
    assert.equal(again.filter((v) => v.state === 'staged').length, 1, 'a repeated rotate must not stage twice');
    assert.equal((await only(server, 'ES256', 'active')).kid, before.kid);

    clock.advance(LEAD);
    await runDue();
    assert.equal((await only(server, 'ES256', 'active')).kid, staged[0]!.kid);
    const manual = (await keyTransitionEvents(server)).filter((e) => e.details.reason === 'manual');
    assert.deepEqual(manual.map((e) => [e.actor, e.details.to]), [['test-operator', 'staged']]);
  });

  test('emergency rotation retires the active key at once: gone from the JWKS, private part deleted, its tokens stop verifying', async () => {
    const compromised = await only(server, 'ES256', 'active');
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
    const fresh = await adminToken(server.url);
    assert.equal(kidOf(fresh), replacement.kid);
    assert.ok(await verifiesNow(server.url, fresh));
    assert.equal((await only(server, 'RS256', 'active')).kid, rsActive.kid, 'other algorithms are untouched');
  });

  test('emergency rotation with a staged successor promotes it (already published) rather than creating a key', async () => {
    await server.keyward.keyService.rotate({ alg: 'RS256' });
    const staged = await only(server, 'RS256', 'staged');
    const compromised = await only(server, 'RS256', 'active');
    await server.keyward.keyService.rotate({ alg: 'RS256', emergency: true });
    assert.equal((await only(server, 'RS256', 'active')).kid, staged.kid);
    assert.equal((await keyRows(server)).find((r) => r.kid === compromised.kid)!.state, 'retired');
    assert.equal((await keyRows(server)).filter((r) => r.alg === 'RS256' && r.state === 'staged').length, 0);
  });

  test('rotating an algorithm that is not in use is refused', async () => {
    await assert.rejects(server.keyward.keyService.rotate({ alg: 'EdDSA' }), { name: 'Invalid' });
    assert.equal((await keyRows(server)).filter((r) => r.alg === 'EdDSA').length, 0);
  });

  test('hot reload drops no in-flight request: token requests during rotations all succeed', async () => {
    const requests = Array.from({ length: 40 }, () => adminToken(server.url));
    for (let i = 0; i < 3; i++) await server.keyward.keyService.rotate({ emergency: true });
    const tokens = await Promise.all(requests);
    assert.equal(tokens.length, 40);
    // Each token verifies unless its key was since retired by an emergency rotation.
    const live = new Set(await kidsInJwks(server.url));
    for (const t of tokens) assert.equal(await verifiesNow(server.url, t), live.has(kidOf(t)));
  });
});
