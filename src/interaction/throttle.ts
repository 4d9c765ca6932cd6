/** How one kind of counter (per account, per client IP) reacts to failed logins. */
export interface ThrottleRule {
  /** Failures allowed before any delay. */
  freeFailures: number;
  /** Delay after the first counted failure; doubles with each further one. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** At this many failures the key is locked for `lockMs` (again at each further failure). */
  lockAfter: number;
  lockMs: number;
  /** A counter whose last failure is older than this starts over. */
  forgetAfterMs: number;
}

export interface ThrottlePolicy {
  account: ThrottleRule;
  ip: ThrottleRule;
}

/**
 * Defaults: an account gets 3 free tries, then 1 s, 2 s, 4 s … (≤ 30 s) between tries, and is
 * locked for 15 minutes at 10 failures. An IP, which may be a NAT for many people, gets more
 * room: 20 free tries, locked at 100.
 */
export const DEFAULT_THROTTLE_POLICY: ThrottlePolicy = {
  account: { freeFailures: 3, baseDelayMs: 1000, maxDelayMs: 30_000, lockAfter: 10, lockMs: 15 * 60_000, forgetAfterMs: 60 * 60_000 },
  ip: { freeFailures: 20, baseDelayMs: 1000, maxDelayMs: 30_000, lockAfter: 100, lockMs: 15 * 60_000, forgetAfterMs: 60 * 60_000 },
};

export type ThrottleScope = 'account' | 'ip';

export interface LoginAttempt {
  username: string;
  ip: string;
}

export type ThrottleVerdict =
  | { allowed: true }
  | { allowed: false; reason: 'delayed' | 'locked'; scope: ThrottleScope; retryAfterMs: number };

export interface FailureOutcome {
  /** Keys this failure locked, with the time the lock ends (each is an audit event). */
  locked: { scope: ThrottleScope; until: Date }[];
}

interface Row {
  key: string;
  failures: number;
  lastFailure: Date;
  lockedUntil: Date | null;
}

/** Where the counters live (src/store/login-throttles.ts): shared by every instance, updated atomically. */
export interface ThrottleCounters {
  find(keys: string[]): Promise<Row[]>;
  /** Counts one failure; returns the lock end when this failure locked the key. */
  recordFailure(key: string, rule: { now: Date; forgetBefore: Date; lockAfter: number; lockUntil: Date }): Promise<Date | undefined>;
  clear(key: string): Promise<void>;
}

/**
 * Brute-force protection for the login form. Counters live in the store, so every instance
 * behind the load balancer sees the same failures; each increment is one atomic statement.
 * A throttled attempt is refused before its password is checked and does not count.
 */
export class LoginThrottle {
  constructor(
    private readonly counters: ThrottleCounters,
    private readonly now: () => Date,
    private readonly policy: ThrottlePolicy = DEFAULT_THROTTLE_POLICY,
  ) {}

  /** Usernames are compared case-insensitively here so "Alice" and "alice" share one counter. */
  static keys(attempt: LoginAttempt): Record<ThrottleScope, string> {
    return { account: `account:${attempt.username.trim().toLowerCase()}`, ip: `ip:${attempt.ip}` };
  }

  async check(attempt: LoginAttempt): Promise<ThrottleVerdict> {
    const keys = LoginThrottle.keys(attempt);
    const rows = await this.counters.find([keys.account, keys.ip]);
    const now = this.now().getTime();
    let worst: ThrottleVerdict = { allowed: true };
    for (const scope of ['account', 'ip'] as const) {
      const row = rows.find((r) => r.key === keys[scope]);
      if (!row) continue;
      const verdict = this.#judge(scope, row, now);
      if (!verdict.allowed && (worst.allowed || verdict.retryAfterMs > worst.retryAfterMs)) worst = verdict;
    }
    return worst;
  }

  async recordFailure(attempt: LoginAttempt): Promise<FailureOutcome> {
    const keys = LoginThrottle.keys(attempt);
    const now = this.now();
    const locked: FailureOutcome['locked'] = [];
    for (const scope of ['account', 'ip'] as const) {
      const rule = this.policy[scope];
      const forgetBefore = new Date(now.getTime() - rule.forgetAfterMs);
      const lockUntil = new Date(now.getTime() + rule.lockMs);
      const until = await this.counters.recordFailure(keys[scope], { now, forgetBefore, lockAfter: rule.lockAfter, lockUntil });
      if (until) locked.push({ scope, until });
    }
    return { locked };
  }

  /** A successful login clears the account's counter; the IP's decays on its own (an attacker could otherwise reset it with an account of their own). */
  async recordSuccess(attempt: LoginAttempt): Promise<void> {
    await this.counters.clear(LoginThrottle.keys(attempt).account);
  }

  #judge(scope: ThrottleScope, row: Row, now: number): ThrottleVerdict {
    const rule = this.policy[scope];
    if (row.lockedUntil && row.lockedUntil.getTime() > now) {
      return { allowed: false, reason: 'locked', scope, retryAfterMs: row.lockedUntil.getTime() - now };
    }
    const last = row.lastFailure.getTime();
    if (now - last > rule.forgetAfterMs || row.failures < rule.freeFailures) return { allowed: true };
    const delay = Math.min(rule.baseDelayMs * 2 ** (row.failures - rule.freeFailures), rule.maxDelayMs);
    if (now < last + delay) return { allowed: false, reason: 'delayed', scope, retryAfterMs: last + delay - now };
    return { allowed: true };
  }
}
