import type { PGlite, Transaction as PGliteTransaction } from '@electric-sql/pglite';
import type pg from 'pg';

/**
 * The raw SQL the store needs outside Prisma: migrations, advisory locks, LISTEN/NOTIFY.
 * One implementation per backend; everything above this file is backend-agnostic.
 */
export interface Sql {
  query<T extends object = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  /** Runs a script of several statements (simple query protocol, no parameters). */
  exec(script: string): Promise<void>;
  /** Runs `fn` on one connection inside BEGIN/COMMIT, rolling back when it throws. */
  transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T>;
  /**
   * Runs `fn` while holding the session-level advisory lock `key`. With `wait: false`
   * returns `{ acquired: false }` at once when another session holds it.
   * PGlite is a single in-process database: the lock is trivially ours.
   */
  withAdvisoryLock<T>(key: number, fn: () => Promise<T>, options?: { wait?: boolean }): Promise<{ acquired: true; value: T } | { acquired: false }>;
  /** Subscribes to a NOTIFY channel; returns the unsubscribe function. */
  listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>>;
  notify(channel: string, payload: string): Promise<void>;
}

export type SqlQueryable = Pick<Sql, 'query' | 'exec'>;

const CHANNEL = /^[a-z_][a-z0-9_]{0,62}$/;
function checkChannel(channel: string): void {
  if (!CHANNEL.test(channel)) throw new Error(`invalid NOTIFY channel name: ${channel}`);
}

export function pgSql(pool: pg.Pool): Sql {
  const queryable = (client: pg.Pool | pg.PoolClient): SqlQueryable => ({
    async query<T extends object>(text: string, params?: unknown[]) {
      return (await client.query(text, params)).rows as T[];
    },
    async exec(script: string) {
      await client.query(script);
    },
  });
  return {
    ...queryable(pool),
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const value = await fn(queryable(client));
        await client.query('COMMIT');
        return value;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    },
    async withAdvisoryLock(key, fn, options = {}) {
      const client = await pool.connect();
      try {
        if (options.wait === false) {
          const [row] = (await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [key])).rows;
          if (!row?.ok) return { acquired: false };
        } else {
          await client.query('SELECT pg_advisory_lock($1)', [key]);
        }
        try {
          return { acquired: true, value: await fn() };
        } finally {
          await client.query('SELECT pg_advisory_unlock($1)', [key]);
        }
      } finally {
        client.release();
      }
    },
    async listen(channel, onPayload) {
      checkChannel(channel);
      const client = await pool.connect();
      const handler = (message: pg.Notification) => {
        if (message.channel === channel) onPayload(message.payload ?? '');
      };
      client.on('notification', handler);
      await client.query(`LISTEN ${channel}`);
      return async () => {
        client.off('notification', handler);
        await client.query(`UNLISTEN ${channel}`).catch(() => undefined);
        client.release();
      };
    },
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
      return db.listen(channel, onPayload);
    },
    async notify(channel, payload) {
      checkChannel(channel);
      await db.query('SELECT pg_notify($1, $2)', [channel, payload]);
    },
  };
}
