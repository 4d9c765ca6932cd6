import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { migrate } from '../../src/store/migrate.ts';
import { CLAIM_SECONDS, ReplayDetectionAdapter } from '../../src/store/replay-detection.ts';
import type { Store } from '../../src/store/store.ts';
import { createTestDatabase, openTestStore, type TestDatabase } from '../support/harness.ts';

/**
 * oidc-provider's ReplayDetection (DPoP proof and client assertion jtis) as stored: one atomic
 * claim per id, shared by every instance on the store, and no second write for ids that expire
 * within the claim (every DPoP proof).
 */
let db: TestDatabase;
let store: Store;
let clock = new Date('2030-01-01T00:00:00Z');
const now = () => clock;

before(async () => {
  db = await createTestDatabase();
  store = await openTestStore(db);
  await migrate(store.sql);
});
after(async () => {
  await store?.close();
  await db?.drop();
});

async function expiryOf(id: string): Promise<Date | null> {
  const rows = await store.prisma.$queryRaw<{ expires_at: Date | null }[]>`
    SELECT expires_at FROM oidc_artifacts WHERE model = 'ReplayDetection' AND id = ${id}`;
  return rows[0]?.expires_at ?? null;
}

test('RFC 9449 §11.1 / RFC 7523 §3: an id is new to exactly one of two instances finding it at once', async () => {
  const a = new ReplayDetectionAdapter(store.prisma, now);
  const b = new ReplayDetectionAdapter(store.prisma, now);
  const answers = await Promise.all([a.find('proof-1'), b.find('proof-1'), a.find('proof-1'), b.find('proof-1')]);
  assert.equal(answers.filter((x) => x === undefined).length, 1, JSON.stringify(answers));
});

test('RFC 9449 §11.1: a DPoP proof (300-second window) costs one write: the claim already outlives it', async () => {
  const adapter = new ReplayDetectionAdapter(store.prisma, now);
  assert.equal(await adapter.find('proof-2'), undefined);
  const claimed = await expiryOf('proof-2');
  assert.equal(claimed?.getTime(), clock.getTime() + CLAIM_SECONDS * 1000);
  await adapter.upsert('proof-2', { jti: 'proof-2' }, 300);
  assert.equal((await expiryOf('proof-2'))?.getTime(), claimed?.getTime(), 'the claim is left as it was');
  assert.deepEqual(await adapter.find('proof-2'), { jti: 'proof-2' });
});

test('RFC 7523 §3: an assertion living longer than the claim is held until it expires', async () => {
  const adapter = new ReplayDetectionAdapter(store.prisma, now);
  assert.equal(await adapter.find('assertion-1'), undefined);
  await adapter.upsert('assertion-1', { jti: 'assertion-1' }, 3 * 3600);
  assert.equal((await expiryOf('assertion-1'))?.getTime(), clock.getTime() + 3 * 3600 * 1000);
  clock = new Date(clock.getTime() + 2 * 3600 * 1000);
  assert.deepEqual(await adapter.find('assertion-1'), { jti: 'assertion-1' }, 'still a replay two hours later');
});

test('an id whose hold expired can be claimed again', async () => {
  const adapter = new ReplayDetectionAdapter(store.prisma, now);
  assert.equal(await adapter.find('proof-3'), undefined);
  clock = new Date(clock.getTime() + (CLAIM_SECONDS + 1) * 1000);
  assert.equal(await adapter.find('proof-3'), undefined);
  assert.deepEqual(await adapter.find('proof-3'), { jti: 'proof-3' });
});
