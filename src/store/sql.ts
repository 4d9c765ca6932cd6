import type { PGlite, Transaction as PGliteTransaction } from '@electric-sql/pglite';
import type pg from 'pg';
import type { Logger } from '../log/logger.ts';
import { SupervisedListener, type ListenerState } from './listener.ts';
import { isStoreUnavailable } from './unavailable.ts';

/**
 * The raw SQL the store needs outside Prisma: migrations, advisory locks, LISTEN/NOTIFY.
 * One implementation per backend; everything above this file is backend-agnostic.
 */
export interface Sql {
  query<T extends object = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  /** Runs a script of several statements (simple query protocol, no parameters). */
  exec(script: string): Promise<void>;
  /**
   * Runs `fn` on one connection inside BEGIN/COMMIT, rolling back when it throws. `unbounded`
   * lifts the statement timeout for this transaction (migrations: a long DDL is expected).
   */
  transaction<T>(fn: (tx: SqlQueryable) => Promise<T>, options?: { unbounded?: boolean }): Promise<T>;
  /**
   * Runs `fn` while holding the session-level advisory lock `key`. With `wait: false`
   * returns `{ acquired: false }` at once when another session holds it.
   * PGlite is a single in-process database: the lock is trivially ours.
   */
  withAdvisoryLock<T>(key: number, fn: () => Promise<T>, options?: { wait?: boolean }): Promise<{ acquired: true; value: T } | { acquired: false }>;
  /**
   * Subscribes to a NOTIFY channel; returns the unsubscribe function. The subscription
   * survives a lost connection (PostgreSQL: re-established with backoff); `onState` hears
   * when it is lost and restored, since NOTIFYs sent in between never arrive.
   */
  listen(channel: string, onPayload: (payload: string) => void, onState?: (state: ListenerState) => void): Promise<() => Promise<void>>;
  /** LISTEN connections re-established after a loss (for /metrics). */
  listenReconnects(): number;
  notify(channel: string, payload: string): Promise<void>;
}

export type SqlQueryable = Pick<Sql, 'query' | 'exec'>;

const CHANNEL = /^[a-z_][a-z0-9_]{0,62}$/;
function checkChannel(channel: string): void {
  if (!CHANNEL.test(channel)) throw new Error(`invalid NOTIFY channel name: ${channel}`);
}

export interface PgSqlOptions {
  /** A new connection outside the pool, for LISTEN. */
  connect: () => pg.Client;
  logger: Logger | undefined;
}

/**
 * A connection checked out of the pool has no error listener (pg-pool removes its idle one),
 * and an 'error' event without a listener ends the process: hold one for the checkout, and
 * release a broken connection as broken so the pool discards it.
 */
async function checkout(pool: pg.Pool): Promise<{ client: pg.PoolClient; release: () => void }> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const onError = (error: Error) => {
    broken = error;
  };
  client.on('error', onError);
  return {
    client,
    release: () => {
      client.off('error', onError);
      client.release(broken);
    },
  };
}

/** The longest timer node accepts (~24.8 days): "no client-side timeout" for node-postgres, which treats 0 as unset. */
const UNBOUNDED_MS = 2 ** 31 - 1;

/** node-postgres reads a per-query `query_timeout` (client side) that its typings do not list. */
function queryConfig(text: string, values: unknown[] | undefined, queryTimeoutMs: number | undefined): pg.QueryConfig {
  const config: pg.QueryConfig & { query_timeout?: number } = { text };
  if (values) config.values = values;
  if (queryTimeoutMs) config.query_timeout = queryTimeoutMs;
  return config;
}

export function pgSql(pool: pg.Pool, options: PgSqlOptions): Sql {
  let reconnects = 0;
  // `query_timeout` undefined: the connection's (statement timeout + 1 s) applies.
  const queryable = (client: pg.Pool | pg.PoolClient, queryTimeout?: number): SqlQueryable => ({
    async query<T extends object>(text: string, params?: unknown[]) {
      return (await client.query(queryConfig(text, params, queryTimeout))).rows as T[];
    },
    async exec(script: string) {
      await client.query(queryConfig(script, undefined, queryTimeout));
    },
  });
  return {
    ...queryable(pool),
    async transaction(fn, txOptions = {}) {
      const { client, release } = await checkout(pool);
      try {
        await client.query('BEGIN');
        if (txOptions.unbounded) await client.query('SET LOCAL statement_timeout = 0');
        const value = await fn(queryable(client, txOptions.unbounded ? UNBOUNDED_MS : undefined));
        await client.query('COMMIT');
        return value;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        release();
      }
    },
    async withAdvisoryLock(key, fn, lockOptions = {}) {
      const { client, release } = await checkout(pool);
      try {
        if (lockOptions.wait === false) {
          const [row] = (await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [key])).rows;
          if (!row?.ok) return { acquired: false };
        } else {
          // Waiting for another instance (e.g. its migrations) is not a slow statement.
          await client.query('SET statement_timeout = 0');
          await client.query(queryConfig('SELECT pg_advisory_lock($1)', [key], UNBOUNDED_MS));
          await client.query('RESET statement_timeout');
        }
        try {
          return { acquired: true, value: await fn() };
        } finally {
          // A lost connection has released the lock already (session-level locks end with it).
          await client.query('SELECT pg_advisory_unlock($1)', [key]).catch((error: Error) => {
            if (!isStoreUnavailable(error)) throw error;
          });
        }
      } finally {
        release();
      }
    },
    async listen(channel, onPayload, onState) {
      checkChannel(channel);
      const listener = new SupervisedListener({
        connect: options.connect, channel, onPayload, logger: options.logger,
        onState: (state) => {
          if (state === 'restored') reconnects += 1;
          onState?.(state);
        },
      });
      await listener.start();
      return () => listener.stop();
    },
    listenReconnects: () => reconnects,
    async notify(channel, payload) {
      checkChannel(channel);
      await pool.query('SELECT pg_notify($1, $2)', [channel, payload]);
    },
  };
}

export function pgliteSql(db: PGlite): Sql {
  const queryable = (client: PGlite | PGliteTransaction): SqlQueryable => ({
    async query<T extends object>(text: string, params?: unknown[]) {
      return (await client.query<T>(text, params)).rows;
    },
    async exec(script: string) {
      await client.exec(script);
    },
  });
  return {
    ...queryable(db),
    transaction: (fn) => db.transaction((tx) => fn(queryable(tx))),
    async withAdvisoryLock(_key, fn) {
      return { acquired: true, value: await fn() };
    },
    async listen(channel, onPayload) {
      checkChannel(channel);
      // In-process: there is no connection to lose.
      return db.listen(channel, onPayload);
    },
    listenReconnects: () => 0,
    async notify(channel, payload) {
      checkChannel(channel);
      await db.query('SELECT pg_notify($1, $2)', [channel, payload]);
    },
  };
}
