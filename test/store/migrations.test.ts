import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { appendFile, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import pg from 'pg';
import { DEFAULT_MIGRATIONS_DIR, MigrationError, migrate, migrationStatus, readMigrations } from '../../src/store/migrate.ts';
import { DEFAULT_SCHEMA_PATH, diffMigrationsToSchema, hasStatements } from '../../src/store/schema-engine.ts';
import { openStore, type Store } from '../../src/store/store.ts';

const tempDirs: string[] = [];
after(async () => {
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'keyward-migtest-'));
  tempDirs.push(dir);
  return dir;
}

/** A private copy of the committed migrations that a test may modify. */
async function copyOfMigrations(): Promise<string> {
  const dir = path.join(await tempDir(), 'migrations');
  await cp(DEFAULT_MIGRATIONS_DIR, dir, { recursive: true });
  return dir;
}

/** What Prisma stores in `_prisma_migrations.checksum`: sha256 hex of the file's bytes. */
async function prismaChecksum(dir: string, name: string): Promise<string> {
  return createHash('sha256').update(await readFile(path.join(dir, name, 'migration.sql'))).digest('hex');
}

async function committedNames(): Promise<string[]> {
  return (await readMigrations(DEFAULT_MIGRATIONS_DIR)).map((m) => m.name);
}

interface MigrationRow {
  migration_name: string;
  checksum: string;
  finished_at: Date | null;
  rolled_back_at: Date | null;
  applied_steps_count: number;
}

function migrationRows(store: Store): Promise<MigrationRow[]> {
  return store.sql.query<MigrationRow>(
    'SELECT migration_name, checksum, finished_at, rolled_back_at, applied_steps_count FROM "_prisma_migrations" ORDER BY migration_name',
  );
}

const USERNAME_MIGRATION = '20261203062300_username_lowercase';

/** A private copy of the committed migrations that stops before `name` (an older release's schema). */
async function migrationsBefore(name: string): Promise<string> {
  const dir = path.join(await tempDir(), 'migrations');
  await mkdir(dir);
  const names = await committedNames();
  assert.ok(names.includes(name), `${name} is committed`);
  for (const earlier of names.filter((n) => n < name)) await cp(path.join(DEFAULT_MIGRATIONS_DIR, earlier), path.join(dir, earlier), { recursive: true });
  return dir;
}

/** Users written straight into the table, as an older release stored them; returns their ids. */
async function insertUsers(store: Store, names: string[]): Promise<string[]> {
  const ids: string[] = [];
  for (const username of names) {
    const id = randomUUID();
    await store.sql.query(`INSERT INTO users (id, username, password_hash, updated_at) VALUES ($1, $2, 'not-a-hash', now())`, [id, username]);
    ids.push(id);
  }
  return ids;
}

async function usernames(store: Store): Promise<string[]> {
  return (await store.sql.query<{ username: string }>('SELECT username FROM users ORDER BY username COLLATE "C"')).map((r) => r.username);
}

// ---------------------------------------------------------------------------------------------
// Backends: embedded PGlite always; PostgreSQL when DATABASE_URL is set, in a throwaway database.

const adminUrl = process.env.DATABASE_URL;

interface FreshDatabase {
  /** Opens a store (PostgreSQL: its own pool) on the fresh database. */
  open(): Promise<Store>;
  dispose(): Promise<void>;
}

async function withAdmin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function freshPostgres(): Promise<FreshDatabase> {
  const name = `keyward_migtest_${randomBytes(6).toString('hex')}`;
  await withAdmin((client) => client.query(`CREATE DATABASE "${name}"`));
  const url = new URL(adminUrl!);
  url.pathname = `/${name}`;
  const stores: Store[] = [];
  return {
    async open() {
      const store = await openStore({ databaseUrl: url.toString(), dataDir: '' });
      stores.push(store);
      return store;
    },
    async dispose() {
      await Promise.all(stores.map((s) => s.close()));
      await withAdmin((client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
    },
  };
}

async function freshPGlite(): Promise<FreshDatabase> {
  // One in-process database: every open() returns the same store.
  const store = await openStore({ databaseUrl: undefined, dataDir: 'memory://' });
  return { open: async () => store, dispose: () => store.close() };
}

const backends: { kind: Store['kind']; fresh: () => Promise<FreshDatabase> }[] = [{ kind: 'pglite', fresh: freshPGlite }];
if (adminUrl) backends.push({ kind: 'postgres', fresh: freshPostgres });

async function withFresh(fresh: () => Promise<FreshDatabase>, fn: (db: FreshDatabase) => Promise<void>): Promise<void> {
  const db = await fresh();
  try {
    await fn(db);
  } finally {
    await db.dispose();
  }
}

// ---------------------------------------------------------------------------------------------

describe('schema drift (Prisma WASM schema engine, offline)', () => {
  test('the committed migrations produce exactly prisma/schema.prisma (a schema change without a migration fails here)', async () => {
    const diff = await diffMigrationsToSchema(DEFAULT_SCHEMA_PATH, DEFAULT_MIGRATIONS_DIR);
    assert.equal(
      hasStatements(diff),
      false,
      `prisma/schema.prisma differs from prisma/migrations; run \`npm run migrate:new -- <name>\`. Missing SQL:\n${diff}`,
    );
  });

  test('the drift check is not vacuous: a model added to the schema without a migration is reported as SQL', async () => {
    const schemaPath = path.join(await tempDir(), 'schema.prisma');
    const schema = await readFile(DEFAULT_SCHEMA_PATH, 'utf8');
    await writeFile(schemaPath, `${schema}\nmodel DriftProbe {\n  id Int @id\n\n  @@map("drift_probe")\n}\n`);
    const diff = await diffMigrationsToSchema(schemaPath, DEFAULT_MIGRATIONS_DIR);
    assert.ok(hasStatements(diff));
    assert.match(diff, /CREATE TABLE "drift_probe"/);
  });
});

for (const { kind, fresh } of backends) {
  describe(`migration runner on ${kind}`, () => {
    test('applies every committed migration in order and records each with Prisma\'s sha256 checksum', async () => {
      await withFresh(fresh, async (db) => {
        const store = await db.open();
        assert.equal(store.kind, kind);
        const names = await committedNames();
        assert.ok(names.length > 0);
        assert.deepEqual(await migrate(store.sql), names);

        const rows = await migrationRows(store);
        assert.deepEqual(rows.map((r) => r.migration_name), names);
        for (const row of rows) {
          assert.equal(row.checksum, await prismaChecksum(DEFAULT_MIGRATIONS_DIR, row.migration_name));
          assert.ok(row.finished_at instanceof Date, `${row.migration_name} has finished_at`);
          assert.equal(row.rolled_back_at, null);
          assert.equal(row.applied_steps_count, 1);
        }
        assert.deepEqual(await migrationStatus(store.sql), { applied: names, pending: [] });
        // The generated Prisma client works against the migrated schema.
        assert.equal(await store.prisma.role.count(), 0);
      });
    });

    test('is idempotent: a second run applies nothing and records nothing new', async () => {
      await withFresh(fresh, async (db) => {
        const store = await db.open();
        await migrate(store.sql);
        const before = await migrationRows(store);
        assert.deepEqual(await migrate(store.sql), []);
        assert.deepEqual(await migrationRows(store), before);
      });
    });

    test('applies only the new migration when one is added after the others were applied', async () => {
      await withFresh(fresh, async (db) => {
        const store = await db.open();
        const dir = await copyOfMigrations();
        await migrate(store.sql, dir);
        const added = '99991231235959_add_probe_table';
        await mkdir(path.join(dir, added));
        await writeFile(path.join(dir, added, 'migration.sql'), 'CREATE TABLE "migtest_probe" ("id" INTEGER PRIMARY KEY);\n');
        assert.deepEqual(await migrate(store.sql, dir), [added]);
        assert.deepEqual(await store.sql.query('SELECT count(*)::int AS n FROM "migtest_probe"'), [{ n: 0 }]);
        assert.equal((await migrationRows(store)).find((r) => r.migration_name === added)?.checksum, await prismaChecksum(dir, added));
      });
    });

    test('refuses to run when an applied migration file was edited afterwards (checksum mismatch)', async () => {
      await withFresh(fresh, async (db) => {
        const store = await db.open();
        const dir = await copyOfMigrations();
        await migrate(store.sql, dir);
        const before = await migrationRows(store);
        const [first] = await committedNames();
        assert.ok(first);
        await appendFile(path.join(dir, first, 'migration.sql'), '\n-- edited after it was applied\n');

        const isChecksumError = (error: unknown): boolean => {
          assert.ok(error instanceof MigrationError);
          assert.match(error.message, /checksum mismatch/);
          assert.ok(error.message.includes(first), 'the error names the edited migration');
          return true;
        };
        await assert.rejects(migrate(store.sql, dir), isChecksumError);
        await assert.rejects(migrationStatus(store.sql, dir), isChecksumError);
        assert.deepEqual(await migrationRows(store), before);
      });
    });

    test('issue 10 F4: the username migration lowercases existing usernames, and the store refuses a mixed-case one afterwards', async () => {
      await withFresh(fresh, async (db) => {
        const store = await db.open();
        await migrate(store.sql, await migrationsBefore(USERNAME_MIGRATION));
        await insertUsers(store, ['Alice.Smith', 'BOB', 'carol']);
        assert.equal((await migrate(store.sql))[0], USERNAME_MIGRATION, 'applied first (later migrations follow it)');
        assert.deepEqual(await usernames(store), ['alice.smith', 'bob', 'carol']);
        await assert.rejects(insertUsers(store, ['Dave']), /users_username_lowercase/);
      });
    });

    test('issue 10 F4: the username migration refuses users that differ only by case, names them with their ids, and changes nothing', async () => {
      await withFresh(fresh, async (db) => {
        const store = await db.open();
        await migrate(store.sql, await migrationsBefore(USERNAME_MIGRATION));
        const ids = await insertUsers(store, ['alice', 'Alice', 'Bob', 'bob', 'Carol']);
        await assert.rejects(migrate(store.sql), (error: unknown) => {
          assert.ok(error instanceof MigrationError);
          assert.ok(error.message.includes(USERNAME_MIGRATION), 'the error names the migration');
          for (const [i, name] of ['alice', 'Alice', 'Bob', 'bob'].entries()) {
            assert.ok(error.message.includes(`${name} (id ${ids[i]})`), `the error names ${name} and its id: ${error.message}`);
          }
          assert.ok(!error.message.includes('Carol'), 'a user without a clash is not named');
          return true;
        });
        assert.deepEqual(await usernames(store), ['Alice', 'Bob', 'Carol', 'alice', 'bob'], 'no username was changed');
        assert.ok((await migrationStatus(store.sql)).pending.includes(USERNAME_MIGRATION), 'the migration is not recorded as applied');

        // The operator renames one of each group; the migration then goes through.
        await store.sql.query('UPDATE users SET username = $1 WHERE id = $2', ['alice2', ids[1]]);
        await store.sql.query('UPDATE users SET username = $1 WHERE id = $2', ['bob2', ids[2]]);
        assert.equal((await migrate(store.sql))[0], USERNAME_MIGRATION, 'applied first (later migrations follow it)');
        assert.deepEqual(await usernames(store), ['alice', 'alice2', 'bob', 'bob2', 'carol']);
      });
    });

    if (kind === 'postgres') {
      test('two instances migrating at once (separate pools) apply each migration exactly once', async () => {
        await withFresh(fresh, async (db) => {
          const [a, b] = await Promise.all([db.open(), db.open()]);
          const names = await committedNames();
          const [appliedByA, appliedByB] = await Promise.all([migrate(a.sql), migrate(b.sql)]);
          assert.deepEqual([...appliedByA, ...appliedByB].sort(), names);
          assert.ok(appliedByA.length === 0 || appliedByB.length === 0, 'one instance applied everything, the other nothing');
          const counts = await a.sql.query<{ migration_name: string; n: number }>(
            'SELECT migration_name, count(*)::int AS n FROM "_prisma_migrations" GROUP BY migration_name ORDER BY migration_name',
          );
          assert.deepEqual(counts, names.map((migration_name) => ({ migration_name, n: 1 })));
        });
      });
    }
  });
}
