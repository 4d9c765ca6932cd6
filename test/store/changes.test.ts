import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { ChangeFeed, type Change } from '../../src/store/changes.ts';
import type { Store } from '../../src/store/store.ts';
import { isStoreUnavailable } from '../../src/store/unavailable.ts';
import { createTestDatabase, openTestStore, type TestDatabase } from '../support/harness.ts';

/**
 * The change feed across instances (PostgreSQL LISTEN/NOTIFY) when its connection is killed:
 * the process lives on, the connection comes back by itself, and every cache is revalidated
 * because NOTIFYs sent in between are lost.
 */
const postgres = Boolean(process.env.DATABASE_URL);
const skip = postgres ? false : 'LISTEN/NOTIFY across connections needs PostgreSQL';

let db: TestDatabase;
let storeA: Store;
let storeB: Store;

before(async () => {
  if (!postgres) return;
  db = await createTestDatabase();
  storeA = await openTestStore(db);
  storeB = await openTestStore(db);
});
after(async () => {
  await storeA?.close();
  await storeB?.close();
  await db?.drop();
});

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Ends every LISTEN session of the test database, as an operator's pg_terminate_backend would. */
async function terminateListeners(): Promise<number> {
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ ok: boolean }>(
      "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'keyward listen' AND pid <> pg_backend_pid()",
    );
    return rows.filter((r) => r.ok).length;
  } finally {
    await admin.end();
  }
}

test('pg_terminate_backend of the LISTEN session: the process lives, LISTEN comes back, caches are revalidated, later changes arrive', { skip }, async () => {
  const a = new ChangeFeed(storeA.sql);
  const b = new ChangeFeed(storeB.sql);
  await a.start();
  await b.start();
  const heard: Change[] = [];
  b.subscribe((change) => heard.push(change));
  try {
    await a.publish({ kind: 'client', id: 'before' });
    await until('the first change on B', () => heard.some((c) => c.id === 'before'), 5_000);

    assert.equal(await terminateListeners(), 2);
    // Missed while B was not listening: only the revalidation can cover it.
    await until('B to revalidate every kind after reconnecting', () =>
      (['client', 'role', 'resource', 'user', 'keys'] as const).every((kind) => heard.some((c) => c.kind === kind && c.id === undefined)), 10_000);
    assert.equal(storeB.stats().listenReconnects, 1);

    await a.publish({ kind: 'role', id: 'after' });
    await until('a change after the reconnect on B', () => heard.some((c) => c.id === 'after'), 5_000);
  } finally {
    await a.stop();
    await b.stop();
  }
});

test('a connection error is classified as the store being unavailable, a constraint violation is not', { skip }, async () => {
  const refused = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:1/none', connectionTimeoutMillis: 1_000 });
  const error = await refused.connect().then(() => undefined, (e: unknown) => e);
  assert.ok(isStoreUnavailable(error));
  const badStatement = await storeA.sql.query('SELECT 1/0').then(() => undefined, (e: unknown) => e);
  assert.ok(badStatement instanceof Error);
  assert.equal(isStoreUnavailable(badStatement), false);
  const prismaError = await storeA.prisma.client.create({ data: { clientId: '\u0000' } as never }).then(() => undefined, (e: unknown) => e);
  assert.ok(prismaError instanceof Error);
  assert.equal(isStoreUnavailable(prismaError), false);
});

test('a healthy LISTEN connection: the periodic probe comes back and no cache is revalidated (PostgreSQL and PGlite)', async () => {
  // The probe's NOTIFY can reach the LISTEN session before the sender hears its own command
  // complete (PGlite delivers it within the call); a probe taken for lost empties every cache
  // of the instance each period.
  const own = await createTestDatabase();
  const store = await openTestStore(own);
  const feed = new ChangeFeed(store.sql, { probeMs: 100 });
  const revalidated: Change[] = [];
  feed.subscribe((change) => { if (change.id === undefined) revalidated.push(change); });
  await feed.start();
  try {
    // Busy event-loop turns between the probes, as under load.
    const deadline = Date.now() + 3_000;
    while (Date.now() < deadline) {
      const spin = Date.now() + 5;
      while (Date.now() < spin) { /* busy */ }
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.deepEqual(revalidated, []);
  } finally {
    await feed.stop();
    await store.close();
    await own.drop();
  }
});
