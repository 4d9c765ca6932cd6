import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { createVerifier, InvalidToken, KeySetUnavailable, type Verifier } from 'keyward/verify';
import { TestClock } from '../support/clock.ts';
import { API, signingKey, TestIssuer } from './issuer.ts';

/** keyward/verify's key-set cache against a real HTTP issuer whose keys change under it. */
describe('keyward/verify JWKS cache', () => {
  let issuer: TestIssuer;
  let clock: TestClock;
  let verifier: Verifier;
  const fetches: { reason: string; ok: boolean }[] = [];

  before(async () => {
    issuer = await TestIssuer.start();
  });
  after(() => issuer.stop());
  beforeEach(async () => {
    issuer.keys = [await signingKey('k1')];
    issuer.cacheControl = 'public, max-age=60';
    issuer.failWith = undefined;
    issuer.delayMs = 0;
    issuer.discoveryIssuer = undefined;
    issuer.resetHits();
    fetches.length = 0;
    clock = new TestClock();
    verifier = createVerifier({ issuer: issuer.url, audience: API, now: clock.now, jwks: { onFetch: ({ reason, ok }) => fetches.push({ reason, ok }) } });
  });

  const token = (key = issuer.keys[0]) => issuer.token({}, { key: key!, now: clock.ms });

  test('OpenID Connect Discovery §4: the JWKS URL is read from discovery, once', async () => {
    issuer.jwksPath = '/somewhere/else.json';
    try {
      await verifier.verify(await token());
      await verifier.verify(await token());
      assert.deepEqual(issuer.hits, { discovery: 1, jwks: 1 });
    } finally {
      issuer.jwksPath = '/keys/jwks.json';
    }
  });

  test('OpenID Connect Discovery §4.3: a discovery document naming another issuer is refused', async () => {
    issuer.discoveryIssuer = 'https://evil.example';
    await assert.rejects(verifier.verify(await token()), KeySetUnavailable);
  });

  test('concurrent first uses share one discovery and one JWKS fetch', async () => {
    issuer.delayMs = 100;
    const tokens = await Promise.all(Array.from({ length: 50 }, () => token()));
    await Promise.all(tokens.map((t) => verifier.verify(t)));
    assert.deepEqual(issuer.hits, { discovery: 1, jwks: 1 });
  });

  test('Cache-Control max-age: the copy is used until it expires, then fetched again once', async () => {
    issuer.cacheControl = 'public, max-age=120';
    await verifier.verify(await token());
    clock.advance(119_000);
    await verifier.verify(await token());
    assert.equal(issuer.hits.jwks, 1, 'within max-age no fetch');
    clock.advance(1_000);
    await Promise.all([verifier.verify(await token()), verifier.verify(await token())]);
    assert.equal(issuer.hits.jwks, 2, 'past max-age one fetch');
    assert.deepEqual(fetches.map((f) => f.reason), ['initial', 'expired']);
  });

  test('a key published by a rotation is picked up on the first token that names it (kid miss refetches)', async () => {
    await verifier.verify(await token());
    const k2 = await signingKey('k2');
    issuer.keys.push(k2);
    const claims = await verifier.verify(await token(k2));
    assert.equal(claims.sub, 'svc-orders');
    assert.equal(issuer.hits.jwks, 2);
    assert.deepEqual(fetches.map((f) => f.reason), ['initial', 'unknown_kid']);
  });

  test('concurrent tokens with a new kid are coalesced into one JWKS fetch', async () => {
    await verifier.verify(await token());
    const k2 = await signingKey('k2');
    issuer.keys.push(k2);
    issuer.delayMs = 150;
    const tokens = await Promise.all(Array.from({ length: 50 }, () => token(k2)));
    const results = await Promise.allSettled(tokens.map((t) => verifier.verify(t)));
    assert.deepEqual(results.map((r) => r.status), Array(50).fill('fulfilled'));
    assert.equal(issuer.hits.jwks, 2);
  });

  test('unknown kids refetch at most once per 30 s: a flood of forged kids costs one fetch', async () => {
    await verifier.verify(await token());
    const forged = await Promise.all(Array.from({ length: 100 }, async (_, i) => token(await signingKey(`forged-${i}`))));
    for (const t of forged) await assert.rejects(verifier.verify(t), InvalidToken);
    assert.equal(issuer.hits.jwks, 2, 'one refetch for 100 unknown kids');
    // Within the cooldown, even a genuinely new key waits: the refetch happened 29.999 s ago.
    const k2 = await signingKey('k2');
    issuer.keys.push(k2);
    clock.advance(29_999);
    await assert.rejects(verifier.verify(await token(k2)), (e: unknown) => e instanceof InvalidToken && /unknown key/.test(e.message));
    assert.equal(issuer.hits.jwks, 2);
    clock.advance(1);
    await verifier.verify(await token(k2));
    assert.equal(issuer.hits.jwks, 3);
  });

  test('a rotation right after startup is seen at once: only kid-miss refetches count toward the cooldown', async () => {
    await verifier.verify(await token());
    const k2 = await signingKey('k2');
    issuer.keys.push(k2);
    clock.advance(1_000);
    await verifier.verify(await token(k2));
    assert.equal(issuer.hits.jwks, 2);
    const k3 = await signingKey('k3');
    issuer.keys.push(k3);
    await assert.rejects(verifier.verify(await token(k3)), InvalidToken);
    assert.equal(issuer.hits.jwks, 2);
  });

  test('stale-while-error: an unreachable issuer does not stop verification until stale-if-error runs out', async () => {
    issuer.cacheControl = 'public, max-age=60';
    const fetchedAt = clock.ms;
    await verifier.verify(await token());
    issuer.failWith = 503;
    clock.advance(61_000);
    await verifier.verify(await token());
    assert.equal(issuer.hits.jwks, 2, 'one failed refresh');
    // The stale copy answers; the next attempt waits for the cooldown, not every request.
    for (let i = 0; i < 10; i++) await verifier.verify(await token());
    assert.equal(issuer.hits.jwks, 2);
    clock.advance(30_000);
    await verifier.verify(await token());
    assert.equal(issuer.hits.jwks, 3);
    // Default stale-if-error: one hour past max-age.
    clock.set(fetchedAt + 60_000 + 3_600_000 - 1);
    await verifier.verify(await token());
    clock.advance(1);
    await assert.rejects(verifier.verify(await token()), KeySetUnavailable);
    // Back online: fresh again.
    issuer.failWith = undefined;
    clock.advance(30_000);
    await verifier.verify(await token());
  });

  test('RFC 5861 stale-if-error in the response bounds how long a stale copy is used', async () => {
    issuer.cacheControl = 'max-age=10, stale-if-error=20';
    await verifier.verify(await token());
    issuer.failWith = 500;
    clock.advance(29_000);
    await verifier.verify(await token());
    clock.advance(31_000);
    await assert.rejects(verifier.verify(await token()), KeySetUnavailable);
  });

  test('an issuer unreachable at the first use is KeySetUnavailable (503 in the adapters), not a token error', async () => {
    issuer.failWith = 502;
    await assert.rejects(verifier.verify(await token()), KeySetUnavailable);
  });

  test('a removed key stops verifying once the copy is refreshed', async () => {
    const k2 = await signingKey('k2');
    issuer.keys.push(k2);
    const old = await token(issuer.keys[0]);
    await verifier.verify(old);
    issuer.keys = [k2];
    clock.advance(60_000);
    await assert.rejects(verifier.verify(old), InvalidToken);
    await verifier.verify(await token(k2));
  });

  test('no-store does not turn into a fetch per request (lifetimes are clamped to at least 1 s)', async () => {
    issuer.cacheControl = 'no-store';
    for (let i = 0; i < 20; i++) await verifier.verify(await token());
    assert.equal(issuer.hits.jwks, 1);
  });
});
