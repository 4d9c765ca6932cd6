import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { TestClock } from '../support/clock.ts';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';
import { adminEnv, adminToken, fetchJwks, keyTransitionEvents, kidOf, verifiesNow, type Jwks } from './helpers.ts';

/** The JWKS as a comparable value: which kids, and which of them may only verify. */
const shape = (jwks: Jwks) => jwks.keys.map((k) => `${k.kid}:${(k.key_ops ?? []).join('+')}`).sort().join(',');

/** Polls `url`'s JWKS until it equals `expected`; returns the milliseconds it took. */
async function propagation(url: string, expected: string, startedAt: number, limitMs: number): Promise<number> {
  while (performance.now() - startedAt < limitMs) {
    if (shape((await fetchJwks(url)).jwks) === expected) return performance.now() - startedAt;
    await new Promise((r) => setTimeout(r, 10));
  }
  return Number.POSITIVE_INFINITY;
}

// Several instances on one database only exist with PostgreSQL (PGlite is one in-process
// database): on PGlite every test is registered and reported as skipped, with the reason.
const skip = process.env.DATABASE_URL ? false : 'needs PostgreSQL (LISTEN/NOTIFY across instances)';

describe('two instances on one PostgreSQL', () => {
  let db: TestDatabase;
  let a: TestServer;
  let b: TestServer;
  const clock = new TestClock();

  before(async () => {
    if (skip) return;
    db = await createTestDatabase();
    [a, b] = await Promise.all([startServer(db, adminEnv, { now: clock.now }), startServer(db, adminEnv, { now: clock.now })]);
    // The tests move the clock and call runDue themselves; a timer tick of either instance
    // (the first one runs right after start, late under load) would race them for the work.
    await Promise.all([a.keyward.keyScheduler.stop(), b.keyward.keyScheduler.stop()]);
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await db?.drop();
  });

  test('starting together, they create one current and one next key per algorithm between them', { skip }, async () => {
    const rows = await a.keyward.store.sql.query<{ alg: string; state: string }>('SELECT alg, state FROM signing_keys ORDER BY alg, state');
    assert.deepEqual(rows.map((r) => `${r.alg}:${r.state}`), ['ES256:active', 'ES256:staged', 'RS256:active', 'RS256:staged']);
  });

  test('each scheduled transition is performed by exactly one instance, and the other serves the new JWKS within 2 s (5 runs)', { skip }, async (t) => {
    const delays: number[] = [];
    for (let run = 0; run < 5; run++) {
      clock.set((await a.keyward.keyScheduler.nextDueAt())!);
      const [ra, rb] = await Promise.all([a.keyward.keyScheduler.runDue(), b.keyward.keyScheduler.runDue()]);
      const performers = [ra, rb].filter((r) => r.applied.length > 0);
      assert.equal(performers.length, 1, `run ${run}: exactly one instance performs the transition`);
      const [performer, follower] = ra.applied.length ? [a, b] : [b, a];
      // The performer serves the new key set as soon as runDue returns; measure from there.
      const startedAt = performance.now();
      const expected = shape((await fetchJwks(performer.url)).jwks);
      const delay = await propagation(follower.url, expected, startedAt, 2000);
      assert.ok(delay < 2000, `run ${run}: the other instance still served the old JWKS after 2 s`);
      delays.push(delay);
      await Promise.all([a.keyward.audit.flush(), b.keyward.audit.flush()]);
      const events = await keyTransitionEvents(a);
      for (const t of performers[0]!.applied) {
        assert.equal(events.filter((e) => e.subject === t.kid && e.details.to === t.to).length, 1, `${t.kid} → ${t.to} audited once`);
      }
    }
    const sorted = [...delays].sort((x, y) => x - y);
    t.diagnostic(`propagation delays (ms): ${delays.map((d) => d.toFixed(1)).join(', ')}; median ${sorted[2]!.toFixed(1)} ms`);
  });

  test('a manual rotation on one instance: the other signs with the new kid within 2 s', { skip }, async (t) => {
    const views = await a.keyward.keyService.list();
    const next = views.find((v) => v.alg === 'ES256' && v.role === 'next')!;
    clock.set(Math.max(clock.ms, Date.parse(next.rotatable_at!)));
    await a.keyward.keyService.rotate({ alg: 'ES256', actor: 'test-operator' });
    const startedAt = performance.now();
    let kid = kidOf(await adminToken(b.url));
    while (kid !== next.kid && performance.now() - startedAt < 2000) {
      await new Promise((r) => setTimeout(r, 10));
      kid = kidOf(await adminToken(b.url));
    }
    assert.equal(kid, next.kid, 'the other instance still signed with the previous key after 2 s');
    t.diagnostic(`new kid on the other instance after ${(performance.now() - startedAt).toFixed(1)} ms`);
  });

  test('an emergency rotation on one instance stops the other from serving the compromised key and signing with it', { skip }, async () => {
    const token = await adminToken(b.url);
    const compromised = kidOf(token);
    await a.keyward.keyService.rotate({ alg: 'ES256', emergency: true, actor: 'test-operator' });
    const startedAt = performance.now();
    const expected = shape((await fetchJwks(a.url)).jwks);
    assert.ok(await propagation(b.url, expected, startedAt, 2000) < 2000);
    assert.equal(await verifiesNow(b.url, token), false);
    assert.notEqual(kidOf(await adminToken(b.url)), compromised, 'the other instance no longer signs with the retired key');
  });
});
