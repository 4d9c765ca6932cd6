import { createHash, randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Sql } from './sql.ts';

/**
 * Applies the committed `prisma/migrations/<name>/migration.sql` files without Prisma's native
 * schema engine (which the CLI would download from outside the npm registry). Bookkeeping is
 * Prisma's own `_prisma_migrations` table with the same checksum (sha256 hex of the file), so
 * `prisma migrate status|deploy` keep working for operators who do have the engine.
 */
export const DEFAULT_MIGRATIONS_DIR = fileURLToPath(new URL('../../prisma/migrations', import.meta.url));

/** The key Prisma's own schema engine locks, so our runner and `prisma migrate deploy` serialize. */
const MIGRATION_LOCK_KEY = 72707369;

export class MigrationError extends Error {
  override name = 'MigrationError';
}

export interface Migration {
  name: string;
  sql: string;
  checksum: string;
}

export interface MigrationStatus {
  applied: string[];
  pending: string[];
}

const BOOKKEEPING = `
CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
  "id" VARCHAR(36) PRIMARY KEY NOT NULL,
  "checksum" VARCHAR(64) NOT NULL,
  "finished_at" TIMESTAMPTZ,
  "migration_name" VARCHAR(255) NOT NULL,
  "logs" TEXT,
  "rolled_back_at" TIMESTAMPTZ,
  "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
  "applied_steps_count" INTEGER NOT NULL DEFAULT 0
)`;

export async function readMigrations(dir = DEFAULT_MIGRATIONS_DIR): Promise<Migration[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const names = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
  return Promise.all(names.map(async (name) => {
    const sql = await readFile(path.join(dir, name, 'migration.sql'), 'utf8');
    return { name, sql, checksum: createHash('sha256').update(sql).digest('hex') };
  }));
}

interface AppliedRow {
  migration_name: string;
  checksum: string;
  finished_at: Date | null;
}

async function appliedRows(sql: Sql): Promise<AppliedRow[]> {
  await sql.exec(BOOKKEEPING);
  return sql.query<AppliedRow>(
    'SELECT migration_name, checksum, finished_at FROM "_prisma_migrations" WHERE rolled_back_at IS NULL ORDER BY started_at',
  );
}

function compare(migrations: Migration[], rows: AppliedRow[]): MigrationStatus {
  const known = new Map(migrations.map((m) => [m.name, m]));
  for (const row of rows) {
    const migration = known.get(row.migration_name);
    if (!migration) throw new MigrationError(`migration ${row.migration_name} is applied in the database but missing from prisma/migrations`);
    if (row.finished_at === null) throw new MigrationError(`migration ${row.migration_name} started but never finished; resolve it by hand`);
    if (row.checksum !== migration.checksum) {
      throw new MigrationError(`migration ${row.migration_name} was changed after it was applied (checksum mismatch); add a new migration instead`);
    }
  }
  const done = new Set(rows.map((r) => r.migration_name));
  return {
    applied: migrations.filter((m) => done.has(m.name)).map((m) => m.name),
    pending: migrations.filter((m) => !done.has(m.name)).map((m) => m.name),
  };
}

export async function migrationStatus(sql: Sql, dir = DEFAULT_MIGRATIONS_DIR): Promise<MigrationStatus> {
  return compare(await readMigrations(dir), await appliedRows(sql));
}

/**
 * Applies pending migrations, each in its own transaction together with its bookkeeping row,
 * under an advisory lock so that instances starting together apply each migration once.
 * Returns the names applied by this call.
 */
export async function migrate(sql: Sql, dir = DEFAULT_MIGRATIONS_DIR): Promise<string[]> {
  const migrations = await readMigrations(dir);
  const result = await sql.withAdvisoryLock(MIGRATION_LOCK_KEY, async () => {
    const { pending } = compare(migrations, await appliedRows(sql));
    for (const name of pending) {
      const migration = migrations.find((m) => m.name === name)!;
      await sql.transaction(async (tx) => {
        try {
          await tx.exec(migration.sql);
        } catch (error) {
          throw new MigrationError(`migration ${name} failed: ${(error as Error).message}`);
        }
        await tx.query(
          `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, finished_at, applied_steps_count)
           VALUES ($1, $2, $3, now(), 1)`,
          [randomUUID(), migration.checksum, name],
        );
      }, { unbounded: true });
    }
    return pending;
  });
  if (!result.acquired) throw new MigrationError('could not take the migration lock');
  return result.value;
}
