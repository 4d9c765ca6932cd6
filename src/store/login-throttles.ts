import type { PrismaClient } from './store.ts';

/** One row of `login_throttles`: failed logins counted under one key (an account or a client IP). */
export interface ThrottleCounter {
  key: string;
  failures: number;
  lastFailure: Date;
  lockedUntil: Date | null;
}

/** How one failure updates a counter; the policy deciding these numbers lives with the login form. */
export interface FailureRule {
  now: Date;
  /** A counter whose last failure is before this starts over at 1. */
  forgetBefore: Date;
  /** At this many failures the counter is locked until `lockUntil`. */
  lockAfter: number;
  lockUntil: Date;
}

/** Failed-login counters shared by every instance behind the load balancer. */
export class LoginThrottleCounters {
  constructor(private readonly prisma: PrismaClient) {}

  find(keys: string[]): Promise<ThrottleCounter[]> {
    return this.prisma.loginThrottle.findMany({ where: { key: { in: keys } } });
  }

  /** Counts one failure; returns the lock end when this failure locked the key. */
  async recordFailure(key: string, rule: FailureRule): Promise<Date | undefined> {
    const { now, forgetBefore, lockAfter, lockUntil } = rule;
    // One statement so concurrent failures on several instances all count.
    const [row] = await this.prisma.$queryRaw<{ failures: number; locked_until: Date | null }[]>`
      INSERT INTO login_throttles (key, failures, last_failure, locked_until)
      VALUES (${key}, 1, ${now}::timestamptz, CASE WHEN 1 >= ${lockAfter}::int THEN ${lockUntil}::timestamptz END)
      ON CONFLICT (key) DO UPDATE SET
        failures = CASE WHEN login_throttles.last_failure < ${forgetBefore}::timestamptz THEN 1 ELSE login_throttles.failures + 1 END,
        last_failure = EXCLUDED.last_failure,
        locked_until = CASE
          WHEN (CASE WHEN login_throttles.last_failure < ${forgetBefore}::timestamptz THEN 1 ELSE login_throttles.failures + 1 END) >= ${lockAfter}::int
          THEN ${lockUntil}::timestamptz ELSE NULL END
      RETURNING failures, locked_until`;
    return row?.locked_until ? new Date(row.locked_until) : undefined;
  }

  async clear(key: string): Promise<void> {
    await this.prisma.loginThrottle.deleteMany({ where: { key } });
  }
}
