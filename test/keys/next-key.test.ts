import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createRemoteJWKSet, decodeJwt, errors, jwksCache, jwtVerify, type ExportedJWKSCache, type JWKSCacheInput } from 'jose';
import { ID_TOKEN_TTL_SECONDS } from '../../src/config/token-lifetimes.ts';
import { lifecycleSettings } from '../../src/keys/lifecycle.ts';
import { TestClock } from '../support/clock.ts';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';
import { adminEnv, adminToken, fetchJwks, kidOf, kidsInJwks, only } from './helpers.ts';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const INTERVAL = 2 * HOUR;
const settings = lifecycleSettings({ rotationIntervalMs: INTERVAL, longestTokenTtlSeconds: ID_TOKEN_TTL_SECONDS, algs: ['ES256', 'RS256'] });

/** A small seeded PRNG (mulberry32), so a failing run can be repeated with KEYWARD_TEST_SEED. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A relying party using jose's createRemoteJWKSet with the max-age the server serves, whose
 * cache ages with the test clock: before each use the shared cache's update time is set back
 * by the simulated time since the fetch. The cooldown is infinite, so an unknown kid is not
 * refetched: it fails, which is what a cache that honours Cache-Control would meet.
 */
class CachingVerifier {
  readonly cache: JWKSCacheInput = {};
  #fetchedAt: number | undefined;
  fetches = 0;
  constructor(private readonly clock: TestClock, private readonly maxAgeMs: number) {}

  async verify(url: string, jwt: string): Promise<void> {
    const cache = this.cache as Partial<ExportedJWKSCache>;
    if (this.#fetchedAt !== undefined) cache.uat = Date.now() - (this.clock.ms - this.#fetchedAt);
    const before = cache.uat;
    const jwks = createRemoteJWKSet(new URL(`${url}/jwks`), { cacheMaxAge: this.maxAgeMs, cooldownDuration: Number.POSITIVE_INFINITY, [jwksCache]: this.cache });
    try {
      // The token's own issue time: oidc-provider stamps real time, the test clock is simulated.
      await jwtVerify(jwt, jwks, { issuer: url, audience: `${url}/admin`, currentDate: new Date(decodeJwt(jwt).iat! * 1000) });
    } finally {
      if (cache.uat !== before) {
        this.#fetchedAt = this.clock.ms;
        this.fetches++;
      }
    }
  }
}

describe('signing keys v2: a verifier honouring Cache-Control never meets an unknown kid (2 h interval, injected clock)', () => {
  let db: TestDatabase;
  let server: TestServer;
  let port: string;
  const clock = new TestClock();
  const env = { ...adminEnv, KEYWARD_KEY_ROTATION_INTERVAL: '2h' };
  const start = async () => {
    server = await startServer(db, port ? { ...env, PORT: port } : env, { now: clock.now, timers: clock.timers });
    port = new URL(server.url).port;
  };

  before(async () => {
    db = await createTestDatabase();
    await start();
  });
  after(async () => {
    await server?.stop();
    await db?.drop();
  });

  test('10 intervals with random manual rotations and restarts: every fresh token verifies at once, every token verifies for the longest token lifetime', async (t) => {
    const seed = Number(process.env.KEYWARD_TEST_SEED ?? Math.floor(Math.random() * 2 ** 31));
    t.diagnostic(`seed ${seed}`);
    const random = prng(seed);
    const maxAge = Number(/max-age=(\d+)/.exec((await fetchJwks(server.url)).cacheControl ?? '')![1]) * 1000;
    assert.equal(maxAge, settings.jwksMaxAgeMs);
    const verifier = new CachingVerifier(clock, maxAge);
    const issued: { jwt: string; at: number }[] = [];
    const counts = { rotated: 0, refused: 0, restarts: 0, scheduled: 0 };
    const end = clock.ms + 10 * INTERVAL;
    let signer = '';

    while (clock.ms < end) {
      clock.advance(Math.floor(1 + random() * 30 * MINUTE));
      await server.keyward.keyScheduler.runDue();
      if (random() < 0.1) {
        await server.stop();
        await start();
        counts.restarts++;
      }
      if (random() < 0.3) {
        const alg = random() < 0.5 ? 'ES256' : undefined;
        try {
          await server.keyward.keyService.rotate({ ...(alg ? { alg } : {}), actor: 'test' });
          counts.rotated++;
        } catch (error) {
          assert.equal((error as Error).name, 'RotationTooEarly');
          assert.ok((error as { retryAt: Date }).retryAt.getTime() > clock.ms);
          counts.refused++;
        }
      }
      const jwt = await adminToken(server.url);
      if (kidOf(jwt) !== signer && signer && !counts.rotated) counts.scheduled++;
      signer = kidOf(jwt);
      issued.push({ jwt, at: clock.ms });
      for (const token of issued.filter((x) => clock.ms - x.at <= ID_TOKEN_TTL_SECONDS * 1000)) {
        try {
          await verifier.verify(server.url, token.jwt);
        } catch (error) {
          const unknown = error instanceof errors.JWKSNoMatchingKey;
          assert.fail(`${unknown ? 'unknown kid' : (error as Error).message} for a token ${Math.round((clock.ms - token.at) / 1000)} s old (kid ${kidOf(token.jwt)}); keys: ${JSON.stringify(await server.keyward.keyService.list())}`);
        }
      }
    }
    t.diagnostic(`${issued.length} steps, ${counts.rotated} manual rotations, ${counts.refused} refused (409), ${counts.restarts} restarts, ${verifier.fetches} JWKS fetches`);
    assert.ok(counts.rotated >= 3 && counts.refused >= 1, `the run exercised rotation: ${JSON.stringify(counts)}`);
    assert.ok(new Set(issued.map((x) => kidOf(x.jwt))).size >= 5);
  });
});

describe('signing keys v2: a restart between every step resumes correctly', () => {
  let db: TestDatabase;
  let server: TestServer | undefined;
  let port = '';
  const clock = new TestClock();

  before(async () => {
    db = await createTestDatabase();
  });
  after(async () => {
    await server?.stop();
    await db?.drop();
  });

  /** Stops the running instance (if any) and starts a new one on the same port and store. */
  async function restart(): Promise<TestServer> {
    await server?.stop();
    server = await startServer(db, port ? { ...adminEnv, PORT: port } : adminEnv, { now: clock.now, timers: clock.timers });
    port = new URL(server.url).port;
    await server.keyward.keyScheduler.runDue();
    return server;
  }
  const MAX_AGE = lifecycleSettings({ rotationIntervalMs: 30 * 24 * HOUR, longestTokenTtlSeconds: 3600, algs: ['ES256'] }).jwksMaxAgeMs;

  test('first start, instant rotation, refused rotation, rotation after max-age, emergency, scheduled rotation, retirement: each step survives a restart', async () => {
    let s = await restart();
    const k1 = await only(s, 'ES256', 'active');
    const k2 = await only(s, 'ES256', 'staged');
    const firstJwks = await kidsInJwks(s.url);
    assert.ok(firstJwks.includes(k2.kid), 'the next key is in the very first JWKS');

    s = await restart();
    await s.keyward.keyService.rotate({ alg: 'ES256' });
    const k3 = await only(s, 'ES256', 'staged');
    const tokenOfK2 = await adminToken(s.url);
    assert.equal(kidOf(tokenOfK2), k2.kid, 'right after the first start the rotation is instant');

    s = await restart();
    assert.equal(kidOf(await adminToken(s.url)), k2.kid);
    assert.deepEqual([(await only(s, 'ES256', 'retiring')).kid, (await only(s, 'ES256', 'staged')).kid], [k1.kid, k3.kid]);
    await assert.rejects(s.keyward.keyService.rotate({ alg: 'ES256' }), (e: Error & { retryAt?: Date }) => e.retryAt?.getTime() === clock.ms + MAX_AGE);

    clock.advance(MAX_AGE);
    s = await restart();
    await s.keyward.keyService.rotate({ alg: 'ES256' });
    assert.equal(kidOf(await adminToken(s.url)), k3.kid);
    const k4 = await only(s, 'ES256', 'staged');

    s = await restart();
    assert.equal(kidOf(await adminToken(s.url)), k3.kid);
    await s.keyward.keyService.rotate({ alg: 'ES256', emergency: true });
    assert.ok(!(await kidsInJwks(s.url)).includes(k3.kid), 'the emergency withdrew the current key');

    s = await restart();
    assert.equal(kidOf(await adminToken(s.url)), k4.kid);
    assert.ok(!(await kidsInJwks(s.url)).includes(k3.kid));
    const k5 = await only(s, 'ES256', 'staged');
    const due = Date.parse((await s.keyward.keyService.list()).find((v) => v.kid === k5.kid)!.next_transition_at!);
    assert.equal(due, clock.ms + 30 * 24 * HOUR, 'the next key signs one interval after the current began');
    // The previous keys (k1, k2) retire once their last token has expired, across restarts.
    clock.advance(2 * HOUR);
    s = await restart();
    const live = await kidsInJwks(s.url);
    assert.ok(!live.includes(k1.kid) && !live.includes(k2.kid), 'previous keys retired after the longest token lifetime');

    clock.set(due);
    s = await restart();
    assert.equal(kidOf(await adminToken(s.url)), k5.kid, 'a restart at the due time performs the scheduled rotation');
    assert.equal((await only(s, 'ES256', 'retiring')).kid, k4.kid);
  });
});
