import { LRUCache } from 'lru-cache';
import type { Logger } from '../log/logger.ts';
import type { Sql } from '../store/sql.ts';

/** A JWKS consumer: one client address and User-Agent. */
export interface JwksConsumer {
  address: string;
  user_agent: string;
  first_seen_at: string;
  last_fetch_at: string;
}

/** How many consumers are kept (the newest by last fetch); older ones are forgotten. */
export const MAX_JWKS_CONSUMERS = 10_000;
const USER_AGENT_MAX = 256;
const DEFAULT_FLUSH_MS = 1000;
const PRUNE_EVERY_MS = 60_000;

interface Pending {
  address: string;
  userAgent: string;
  first: Date;
  last: Date;
}

export interface JwksConsumerDeps {
  sql: Sql;
  logger: Logger;
  now: () => Date;
  /** How often the batch is written (tests flush by hand). */
  flushMs?: number;
  max?: number;
}

/**
 * Records who fetches the JWKS, for the rotation readiness view. The request path only
 * touches a bounded in-memory map (at most `max` consumers); a timer writes the batch with one
 * upsert, keeping the latest fetch per consumer, and forgets all but the newest `max` rows.
 * A failed write keeps the batch for the next attempt (a database outage loses nothing but
 * the oldest entries beyond the bound).
 */
export class JwksConsumers {
  #pending: LRUCache<string, Pending>;
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  #lastPrune = 0;
  readonly #max: number;

  constructor(private readonly deps: JwksConsumerDeps) {
    this.#max = deps.max ?? MAX_JWKS_CONSUMERS;
    this.#pending = new LRUCache({ max: this.#max });
  }

  /** On every JWKS response: O(1), no I/O. */
  record(address: string, userAgent: string | undefined): void {
    const ua = (userAgent ?? '').slice(0, USER_AGENT_MAX);
    const key = `${address}\n${ua}`;
    const at = this.deps.now();
    const seen = this.#pending.get(key);
    if (seen) seen.last = at;
    else this.#pending.set(key, { address, userAgent: ua, first: at, last: at });
  }

  start(): void {
    this.#timer ??= setInterval(() => void this.flush().catch(() => undefined), this.deps.flushMs ?? DEFAULT_FLUSH_MS);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.flush().catch(() => undefined);
  }

  /** Writes the pending batch (one statement); concurrent calls share one write. */
  flush(): Promise<void> {
    this.#flushing ??= this.#write().finally(() => {
      this.#flushing = undefined;
    });
    return this.#flushing;
  }

  async #write(): Promise<void> {
    if (this.#pending.size === 0) return;
    const batch = [...this.#pending.values()];
    this.#pending.clear();
    try {
      await this.deps.sql.query(
        `INSERT INTO jwks_consumers (address, user_agent, first_seen_at, last_fetch_at)
         SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[])
         ON CONFLICT (address, user_agent) DO UPDATE
           SET last_fetch_at = GREATEST(jwks_consumers.last_fetch_at, EXCLUDED.last_fetch_at)`,
        [batch.map((p) => p.address), batch.map((p) => p.userAgent), batch.map((p) => p.first.toISOString()), batch.map((p) => p.last.toISOString())],
      );
      const now = this.deps.now().getTime();
      if (now - this.#lastPrune >= PRUNE_EVERY_MS) {
        this.#lastPrune = now;
        await this.deps.sql.query(
          `DELETE FROM jwks_consumers WHERE (address, user_agent) IN
             (SELECT address, user_agent FROM jwks_consumers ORDER BY last_fetch_at DESC OFFSET $1)`,
          [this.#max],
        );
      }
    } catch (error) {
      // Put the batch back unless newer fetches of the same consumers arrived meanwhile.
      for (const p of batch) {
        const key = `${p.address}\n${p.userAgent}`;
        const newer = this.#pending.get(key);
        if (newer) newer.first = p.first;
        else this.#pending.set(key, p);
      }
      this.deps.logger.warn({ err: (error as Error).message, pending: this.#pending.size }, 'JWKS consumer batch not written; will retry');
      throw error;
    }
  }

  /**
   * Consumers whose latest fetch is at or after `seenSince`, and how many of them fetched
   * after `publishedAt` (so already hold a key published then).
   */
  async readiness(publishedAt: Date, seenSince: Date): Promise<{ seen: number; ready: number }> {
    await this.flush().catch(() => undefined);
    const [row] = await this.deps.sql.query<{ seen: number | string; ready: number | string }>(
      `SELECT count(*) AS seen, count(*) FILTER (WHERE last_fetch_at > $1::timestamptz) AS ready
         FROM jwks_consumers WHERE last_fetch_at >= $2::timestamptz`,
      [publishedAt.toISOString(), seenSince.toISOString()],
    );
    return { seen: Number(row?.seen ?? 0), ready: Number(row?.ready ?? 0) };
  }

  /** Consumers seen since `seenSince` whose latest fetch is not after `publishedAt`, newest first. */
  async notReady(publishedAt: Date, seenSince: Date, limit: number): Promise<{ items: JwksConsumer[]; total: number }> {
    await this.flush().catch(() => undefined);
    const params = [publishedAt.toISOString(), seenSince.toISOString()];
    const where = 'last_fetch_at >= $2::timestamptz AND last_fetch_at <= $1::timestamptz';
    const [rows, [count]] = await Promise.all([
      this.deps.sql.query<{ address: string; user_agent: string; first_seen_at: Date | string; last_fetch_at: Date | string }>(
        `SELECT address, user_agent, first_seen_at, last_fetch_at FROM jwks_consumers WHERE ${where}
          ORDER BY last_fetch_at DESC, address, user_agent LIMIT $3`, [...params, limit]),
      this.deps.sql.query<{ total: number | string }>(`SELECT count(*) AS total FROM jwks_consumers WHERE ${where}`, params),
    ]);
    const iso = (d: Date | string) => new Date(d).toISOString();
    return {
      items: rows.map((r) => ({ address: r.address, user_agent: r.user_agent, first_seen_at: iso(r.first_seen_at), last_fetch_at: iso(r.last_fetch_at) })),
      total: Number(count?.total ?? 0),
    };
  }
}
