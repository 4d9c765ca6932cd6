import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { PrismaClient } from './generated/client.ts';
import { lockDataDir } from './pglite-lock.ts';
import { pgliteSql, pgSql, type Sql } from './sql.ts';

export type { PrismaClient } from './generated/client.ts';

/** The one handle on persistence: Prisma for domain data, raw SQL for the few things it lacks. */
export interface Store {
  kind: 'postgres' | 'pglite';
  prisma: PrismaClient;
  sql: Sql;
  /** A cheap round trip, for readiness checks. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface StoreOptions {
  /** PostgreSQL when set; otherwise embedded PGlite in `dataDir` (or in memory for `memory://`). */
  databaseUrl: string | undefined;
  dataDir: string;
  /** Pool size for PostgreSQL. */
  maxConnections?: number;
}

export async function openStore(options: StoreOptions): Promise<Store> {
  return options.databaseUrl ? openPostgres(options.databaseUrl, options.maxConnections ?? 10) : openPGlite(options.dataDir);
}

async function openPostgres(connectionString: string, max: number): Promise<Store> {
  const pool = new pg.Pool({ connectionString, max });
  // A broken idle connection must not crash the process; the pool replaces it.
  pool.on('error', () => undefined);
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
  return {
    kind: 'postgres',
    prisma,
    sql: pgSql(pool),
    async ping() {
      await pool.query('SELECT 1');
    },
    async close() {
      await prisma.$disconnect();
      await pool.end();
    },
  };
}

async function openPGlite(dataDir: string): Promise<Store> {
  const inMemory = dataDir.startsWith('memory://');
  // PGlite creates the data directory but not its parents.
  if (!inMemory) await mkdir(path.dirname(path.resolve(dataDir)), { recursive: true });
  const unlock = inMemory ? async () => undefined : await lockDataDir(path.resolve(dataDir));
  let db: PGlite;
  try {
    db = await PGlite.create(inMemory ? dataDir : path.resolve(dataDir));
  } catch (error) {
    await unlock();
    throw error;
  }
  const prisma = new PrismaClient({ adapter: new PrismaPGlite(db) });
  return {
    kind: 'pglite',
    prisma,
    sql: pgliteSql(db),
    async ping() {
      await db.query('SELECT 1');
    },
    async close() {
      await prisma.$disconnect();
      await db.close();
      await unlock();
    },
  };
}
