import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { errorFields, type Logger } from '../log/logger.ts';
import { PrismaClient } from './generated/client.ts';
import { lockDataDir } from './pglite-lock.ts';
import { newCluster, PGLITE_OPTIONS, saveTemplate } from './pglite-options.ts';
import { pgliteSql, pgSql, type Sql } from './sql.ts';

export type { PrismaClient } from './generated/client.ts';

/** The one handle on persistence: Prisma for domain data, raw SQL for the few things it lacks. */
export interface Store {
  kind: 'postgres' | 'pglite';
  prisma: PrismaClient;
  sql: Sql;
  /** A cheap round trip, for readiness checks. */
  ping(): Promise<void>;
  /** What /metrics shows about the connection to the database. */
  stats(): StoreStats;
  /** Counts a store failure met above the store (a request answered 503), by where it was met. */
  countError(kind: string): void;
  close(): Promise<void>;
}

export interface StoreStats {
  /** PostgreSQL only: connections of the pool. */
  pool: { total: number; idle: number; waiting: number } | undefined;
  /** Failures by kind: `connection` (a pooled or LISTEN connection broke), `ping`, and what callers counted. */
  errors: Record<string, number>;
  /** LISTEN connections re-established after a loss. */
  listenReconnects: number;
}

export interface StoreOptions {
  /** PostgreSQL when set; otherwise embedded PGlite in `dataDir` (or in memory for `memory://`). */
  databaseUrl: string | undefined;
  dataDir: string;
  /** Pool size for PostgreSQL. */
  maxConnections?: number;
  /** PostgreSQL: how long opening a connection (or waiting for a pooled one) may take. */
  connectTimeoutMs?: number;
  /** PostgreSQL: server-side `statement_timeout`; the client gives up 1 s later. */
  statementTimeoutMs?: number;
  /** Where connection failures are reported (once per event, never with the connection string). */
  logger?: Logger;
}

export async function openStore(options: StoreOptions): Promise<Store> {
  return options.databaseUrl ? openPostgres(options.databaseUrl, options) : openPGlite(options.dataDir);
}

function errorCounter(): { count: (kind: string) => void; snapshot: () => Record<string, number> } {
  const counts: Record<string, number> = {};
  return {
    count: (kind) => {
      counts[kind] = (counts[kind] ?? 0) + 1;
    },
    snapshot: () => ({ ...counts }),
  };
}

async function openPostgres(connectionString: string, options: StoreOptions): Promise<Store> {
  const { logger } = options;
  const statementTimeoutMs = options.statementTimeoutMs ?? 5_000;
  const config: pg.ClientConfig = {
    connectionString,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 2_000,
    // The server cancels a long statement; the client stops waiting for a server that went silent.
    statement_timeout: statementTimeoutMs,
    query_timeout: statementTimeoutMs + 1_000,
    keepAlive: true,
    application_name: 'keyward',
  };
  const pool = new pg.Pool({ ...config, max: options.maxConnections ?? 10 });
  const errors = errorCounter();
  const connectionError = (error: Error) => {
    errors.count('connection');
    logger?.warn({ err: errorFields(error) }, 'database connection error');
  };
  // A broken idle connection must not crash the process; the pool replaces it.
  pool.on('error', connectionError);
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool, { onConnectionError: connectionError }) });
  // Named apart so an operator can find (or end) the LISTEN session in pg_stat_activity.
  const sql = pgSql(pool, { connect: () => new pg.Client({ ...config, application_name: 'keyward listen' }), logger });
  return {
    kind: 'postgres',
    prisma,
    sql,
    async ping() {
      try {
        await pool.query('SELECT 1');
      } catch (error) {
        errors.count('ping');
        throw error;
      }
    },
    stats: () => ({
      pool: { total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount },
      errors: errors.snapshot(),
      listenReconnects: sql.listenReconnects(),
    }),
    countError: (kind) => errors.count(kind),
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
    const location = inMemory ? dataDir : path.resolve(dataDir);
    const { fresh, template } = await newCluster(location);
    db = await PGlite.create(location, { ...PGLITE_OPTIONS, ...(template ? { loadDataDir: template } : {}) });
    if (fresh && !template) await saveTemplate(db);
  } catch (error) {
    await unlock();
    throw error;
  }
  const prisma = new PrismaClient({ adapter: new PrismaPGlite(db) });
  const errors = errorCounter();
  return {
    kind: 'pglite',
    prisma,
    sql: pgliteSql(db),
    async ping() {
      await db.query('SELECT 1');
    },
    stats: () => ({ pool: undefined, errors: errors.snapshot(), listenReconnects: 0 }),
    countError: (kind) => errors.count(kind),
    async close() {
      await prisma.$disconnect();
      await db.close();
      await unlock();
    },
  };
}
