import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { migrate } from '../../src/store/migrate.ts';
import { openStore } from '../../src/store/store.ts';
import { createTestDatabase, openTestStore } from '../support/harness.ts';

// The embedded store is exercised whatever DATABASE_URL says: these are PGlite's own
// file-system behaviours. The last test runs on the configured store.
const dirs: string[] = [];
after(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'keyward-storetest-'));
  dirs.push(dir);
  return dir;
}

test('PGlite: a new data directory whose parent folders do not exist yet is created', async () => {
  const dataDir = path.join(await tempDir(), 'not', 'yet', 'there', 'pgdata');
  const store = await openStore({ databaseUrl: undefined, dataDir });
  try {
    assert.equal(store.kind, 'pglite');
    await store.ping();
    assert.ok((await stat(path.join(dataDir, 'PG_VERSION'))).isFile(), 'a PostgreSQL data directory was initialised');
  } finally {
    await store.close();
  }
});

test('PGlite: reopening an existing data directory keeps its data', async () => {
  const dataDir = path.join(await tempDir(), 'pgdata');
  const first = await openStore({ databaseUrl: undefined, dataDir });
  try {
    await migrate(first.sql);
    await first.prisma.role.create({ data: { name: 'persisted', description: 'survives a reopen', permissions: ['orders:read'] } });
  } finally {
    await first.close();
  }
  const second = await openStore({ databaseUrl: undefined, dataDir });
  try {
    assert.deepEqual(await migrate(second.sql), [], 'nothing left to migrate');
    const role = await second.prisma.role.findUnique({ where: { name: 'persisted' } });
    assert.equal(role?.description, 'survives a reopen');
    assert.deepEqual(role?.permissions, ['orders:read']);
  } finally {
    await second.close();
  }
});

test('the configured store (PostgreSQL when DATABASE_URL is set) answers ping and closes', async () => {
  const db = await createTestDatabase();
  try {
    const store = await openTestStore(db);
    assert.equal(store.kind, db.kind);
    await store.ping();
    await store.close();
  } finally {
    await db.drop();
  }
});

test('PGlite: a data directory in use is refused with a clear error instead of being opened twice', async () => {
  const dataDir = path.join(await tempDir(), 'pgdata');
  const first = await openStore({ databaseUrl: undefined, dataDir });
  try {
    await assert.rejects(openStore({ databaseUrl: undefined, dataDir }), /in use by process \d+/);
  } finally {
    await first.close();
  }
  const again = await openStore({ databaseUrl: undefined, dataDir });
  await again.close();
});

test('PGlite: a lock left by a process that no longer runs is taken over', async () => {
  const dataDir = path.join(await tempDir(), 'pgdata');
  const { writeFile } = await import('node:fs/promises');
  await writeFile(`${dataDir}.lock`, '2147483646');
  const store = await openStore({ databaseUrl: undefined, dataDir });
  await store.close();
});
