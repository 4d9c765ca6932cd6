import type { PrismaClient } from './store.ts';

/** One row of `login_throttles`: failed logins counted under one key (an account from one IP, or a client IP). */
export interface ThrottleCounter {
  failures: number;
  lastFailure: Date;
  lockedUntil: Date | null;
}

/**
 * Failed-login counters shared by every instance behind the load balancer. Writes are
 * compare-and-swap, so the policy (src/interaction/throttle.ts) decides and counts in one step
 * even when attempts race on several instances.
 */
export class LoginThrottleCounters {
  constructor(private readonly prisma: PrismaClient) {}

  async find(key: string): Promise<ThrottleCounter | undefined> {
    return (await this.prisma.loginThrottle.findUnique({ where: { key }, select: { failures: true, lastFailure: true, lockedUntil: true } })) ?? undefined;
  }

  /** Writes `next` only if the row is still `expected` (undefined: absent); true when it did. */
  async replace(key: string, expected: ThrottleCounter | undefined, next: ThrottleCounter): Promise<boolean> {
    if (!expected) {
      const { count } = await this.prisma.loginThrottle.createMany({ data: [{ key, ...next }], skipDuplicates: true });
      return count === 1;
    }
    // last_failure is timestamptz(3): the Date read back compares equal to the stored value.
    const { count } = await this.prisma.loginThrottle.updateMany({
      where: { key, failures: expected.failures, lastFailure: expected.lastFailure },
      data: next,
    });
    return count === 1;
  }

  async refund(key: string, lockAfter: number): Promise<void> {
    await this.prisma.$executeRaw`
      UPDATE login_throttles SET
        failures = GREATEST(failures - 1, 0),
        locked_until = CASE WHEN failures - 1 >= ${lockAfter}::int THEN locked_until END
      WHERE key = ${key}`;
  }

  /**
   * Deletes counters that no longer throttle anyone: last failure before `forgottenBefore`
   * (a counter that old starts over anyway) and no lock still running at `now`. Returns how many.
   */
  async purge(forgottenBefore: Date, now: Date): Promise<number> {
    const { count } = await this.prisma.loginThrottle.deleteMany({
      where: { lastFailure: { lt: forgottenBefore }, OR: [{ lockedUntil: null }, { lockedUntil: { lte: now } }] },
    });
    return count;
  }

  async clear(key: string): Promise<void> {
    await this.prisma.loginThrottle.deleteMany({ where: { key } });
  }
}
