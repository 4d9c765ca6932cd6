import { RateLimiterPrisma, RateLimiterRes } from 'rate-limiter-flexible';
import type { PrismaClient } from './store.ts';

/** A verdict of a shared counter: allowed, or refused until `retryAfterMs` from now. */
export type Consumed = { allowed: true; remaining: number } | { allowed: false; retryAfterMs: number };

/**
 * A fixed-window counter per key in the `rate_limits` table (rate-limiter-flexible's
 * RateLimiterPrisma): every instance on the database counts into the same row, and the
 * increment is one `INSERT … ON CONFLICT DO UPDATE`, so parallel requests are all counted.
 * Works on PostgreSQL and PGlite alike (the library's RateLimiterPostgres needs a `pg` pool).
 */
export class SharedRateLimit {
  readonly #limiter: RateLimiterPrisma;

  constructor(prisma: PrismaClient, options: { prefix: string; points: number; durationMs: number }) {
    this.#limiter = new RateLimiterPrisma({
      storeClient: prisma,
      tableName: 'rateLimit',
      keyPrefix: options.prefix,
      points: options.points,
      duration: Math.max(1, Math.round(options.durationMs / 1000)),
      // Expired rows are deleted by purgeRateLimits with the other periodic purges, not by a
      // timer of the library's own that would outlive close().
      clearExpiredByTimeout: false,
    });
  }

  /** Counts one point under `key`; refused once more than `points` were counted in the window. */
  async consume(key: string): Promise<Consumed> {
    try {
      const res = await this.#limiter.consume(key);
      return { allowed: true, remaining: res.remainingPoints };
    } catch (rejection) {
      if (rejection instanceof RateLimiterRes) return { allowed: false, retryAfterMs: rejection.msBeforeNext };
      throw rejection;
    }
  }

  /** Gives one point back (the attempt turned out not to be a guess). */
  async refund(key: string): Promise<void> {
    await this.#limiter.reward(key, 1);
  }
}

/** Deletes counters whose window ended before `now`; returns how many. */
export async function purgeRateLimits(prisma: PrismaClient, now: Date): Promise<number> {
  const { count } = await prisma.rateLimit.deleteMany({ where: { expire: { lt: now } } });
  return count;
}
