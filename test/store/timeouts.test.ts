import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { openStore, type Store } from '../../src/store/store.ts';
import { isStoreUnavailable } from '../../src/store/unavailable.ts';
import { createTestDatabase, type TestDatabase } from '../support/harness.ts';

/**
 * Fail fast (issue 11, item 2): a statement past KEYWARD_DB_STATEMENT_TIMEOUT is cancelled and
 * reads as "store unavailable" (503 at the edge), and a refused connection fails within the
 * connect timeout. What may legitimately wait — a migration, an advisory lock held by another
 * instance — is exempt.
 */
const postgres = Boolean(process.env.DATABASE_URL);
const skip = postgres ? false : 'statement and connect timeouts are PostgreSQL settings';

let db: TestDatabase;
let store: Store;
let other: Store;

before(async () => {
  if (!postgres) return;
  db = await createTestDatabase();
  store = await openStore({ databaseUrl: db.url, dataDir: '', statementTimeoutMs: 500 });
  other = await openStore({ databaseUrl: db.url, dataDir: '' });
});
after(async () => {
  await store?.close();
  await other?.close();
  await db?.drop();
});

test('a statement longer than the statement timeout is cancelled (57014) and classified as the store being unavailable', { skip }, async () => {
  const started = performance.now();
  const error = await store.sql.query('SELECT pg_sleep(2)').then(() => undefined, (e: unknown) => e);
  assert.equal((error as { code?: string }).code, '57014');
  assert.ok(isStoreUnavailable(error));
  assert.ok(performance.now() - started < 1_500);
  // Prisma reports the same through its adapter.
  const viaPrisma = await store.prisma.$queryRawUnsafe('SELECT pg_sleep(2)').then(() => undefined, (e: unknown) => e);
  assert.ok(isStoreUnavailable(viaPrisma));
});

test('an unbounded transaction (migrations) may run longer than the statement timeout; the connection keeps its timeout after', { skip }, async () => {
  await store.sql.transaction((tx) => tx.query('SELECT pg_sleep(1)'), { unbounded: true });
  const error = await store.sql.query('SELECT pg_sleep(2)').then(() => undefined, (e: unknown) => e);
  assert.equal((error as { code?: string }).code, '57014');
});

test('waiting for an advisory lock held by another instance is not cut by the statement timeout', { skip }, async () => {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let acquired!: () => void;
  const holding = new Promise<void>((resolve) => (acquired = resolve));
  const holder = other.sql.withAdvisoryLock(4242, async () => {
    acquired();
    await held;
  });
  await holding;
  setTimeout(release, 1_200);
  const result = await store.sql.withAdvisoryLock(4242, async () => 'mine');
  assert.deepEqual(result, { acquired: true, value: 'mine' });
  await holder;
  const error = await store.sql.query('SELECT pg_sleep(2)').then(() => undefined, (e: unknown) => e);
  assert.equal((error as { code?: string }).code, '57014', 'the session timeout is back after the lock');
});

test('a refused connection fails within the connect timeout', { skip }, async () => {
  const url = new URL(db.url!);
  url.port = '1';
  const unreachable = await openStore({ databaseUrl: url.toString(), dataDir: '', connectTimeoutMs: 1_000 });
  try {
    const started = performance.now();
    const error = await unreachable.ping().then(() => undefined, (e: unknown) => e);
    assert.ok(isStoreUnavailable(error));
    assert.ok(performance.now() - started < 1_500);
    assert.equal(unreachable.stats().errors.ping, 1);
  } finally {
    await unreachable.close();
  }
});
