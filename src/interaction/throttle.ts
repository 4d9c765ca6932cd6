import { isIPv6 } from 'node:net';

/** How one kind of counter (per account and source, per source) reacts to failed logins. */
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
  /** One account from one client IP: the guesses of one source never lock out anyone else. */
  account: ThrottleRule;
  /** One client IP across every account (password spraying). */
  ip: ThrottleRule;
}

/**
 * Defaults: one source gets 3 free tries on an account, then 1 s, 2 s, 4 s … (≤ 30 s) between
 * tries, and is locked out of that account for 15 minutes at 10 failures; the same account from
 * an address without failures is not slowed down (issue 10 F4: no account-wide lockout). An IP,
 * which may be a NAT for many people, gets more room across accounts: 20 free tries, locked at 100.
 */
export const DEFAULT_THROTTLE_POLICY: ThrottlePolicy = {
  account: { freeFailures: 3, baseDelayMs: 1000, maxDelayMs: 30_000, lockAfter: 10, lockMs: 15 * 60_000, forgetAfterMs: 60 * 60_000 },
  ip: { freeFailures: 20, baseDelayMs: 1000, maxDelayMs: 30_000, lockAfter: 100, lockMs: 15 * 60_000, forgetAfterMs: 60 * 60_000 },
};

export type ThrottleScope = 'account' | 'ip';

export interface LoginAttempt {
  /** The account tried: its user id, or for an unknown username that name normalized (see PasswordAuthenticator.lookup). */
  account: string;
  ip: string;
}

export type ThrottleVerdict =
  | { allowed: true }
  | { allowed: false; reason: 'delayed' | 'locked'; scope: ThrottleScope; retryAfterMs: number };

/** An attempt allowed to check its password, already counted as a failure until `succeeded` refunds it. */
export interface Reservation {
  allowed: true;
  attempt: LoginAttempt;
  /** Keys this attempt locks if its password is wrong, with the time the lock ends (each is an audit event). */
  locks: { scope: ThrottleScope; until: Date }[];
}

export interface Counter {
  failures: number;
  lastFailure: Date;
  lockedUntil: Date | null;
}

/** Where the counters live (src/store/login-throttles.ts): shared by every instance. */
export interface ThrottleCounters {
  find(key: string): Promise<Counter | undefined>;
  /** Writes `next` only if the counter is still `expected` (undefined: no row); true when written. */
  replace(key: string, expected: Counter | undefined, next: Counter): Promise<boolean>;
  /** Takes back one counted failure, and the lock when fewer than `lockAfter` remain. */
  refund(key: string, lockAfter: number): Promise<void>;
  clear(key: string): Promise<void>;
  /** Deletes counters last failed before `forgottenBefore` whose lock (if any) ended by `now`. */
  purge(forgottenBefore: Date, now: Date): Promise<number>;
}

/** Compare-and-swap rounds before giving up on a key under contention (each round one writer wins). */
const MAX_ROUNDS = 100;

/**
 * Brute-force protection for the login form. Counters live in the store, so every instance
 * behind the load balancer sees the same failures. An attempt reserves its failure atomically
 * (compare-and-swap on the counter) BEFORE its password is checked, so parallel guesses cannot
 * all pass one check (issue 10 F3); a success refunds the reservation. A throttled attempt is
 * refused before its password is checked and does not count.
 */
export class LoginThrottle {
  constructor(
    private readonly counters: ThrottleCounters,
    private readonly now: () => Date,
    private readonly policy: ThrottlePolicy = DEFAULT_THROTTLE_POLICY,
  ) {}

  static keys(attempt: LoginAttempt): Record<ThrottleScope, string> {
    const source = throttleSource(attempt.ip);
    return { account: `account:${attempt.account}@${source}`, ip: `ip:${source}` };
  }

  /** What an attempt would be told now, without counting it. */
  async check(attempt: LoginAttempt): Promise<ThrottleVerdict> {
    const keys = LoginThrottle.keys(attempt);
    const now = this.now().getTime();
    let worst: ThrottleVerdict = { allowed: true };
    for (const scope of ['account', 'ip'] as const) {
      const verdict = this.#judge(scope, await this.counters.find(keys[scope]), now);
      if (!verdict.allowed && (worst.allowed || verdict.retryAfterMs > worst.retryAfterMs)) worst = verdict;
    }
    return worst;
  }

  /** Counts the attempt as a failure on every key, unless one of them throttles it (then nothing counts). */
  async reserve(attempt: LoginAttempt): Promise<Reservation | Extract<ThrottleVerdict, { allowed: false }>> {
    const keys = LoginThrottle.keys(attempt);
    const locks: Reservation['locks'] = [];
    const taken: ThrottleScope[] = [];
    for (const scope of ['account', 'ip'] as const) {
      const outcome = await this.#take(scope, keys[scope]);
      if (!outcome.allowed) {
        for (const done of taken) await this.counters.refund(keys[done], this.policy[done].lockAfter);
        return outcome;
      }
      taken.push(scope);
      if (outcome.lockedUntil) locks.push({ scope, until: outcome.lockedUntil });
    }
    return { allowed: true, attempt, locks };
  }

  /** The password was right: this source's counter on the account starts over, the IP's gets its attempt back. */
  async succeeded(reservation: Reservation): Promise<void> {
    const keys = LoginThrottle.keys(reservation.attempt);
    await this.counters.clear(keys.account);
    await this.counters.refund(keys.ip, this.policy.ip.lockAfter);
  }

  /** The attempt was not a wrong guess (e.g. the right password of a disabled account): no key keeps it. */
  async refund(reservation: Reservation): Promise<void> {
    const keys = LoginThrottle.keys(reservation.attempt);
    for (const scope of ['account', 'ip'] as const) await this.counters.refund(keys[scope], this.policy[scope].lockAfter);
  }

  /**
   * Deletes the counters that no longer throttle anyone (issue 11: rows were never purged);
   * returns how many. A deleted counter and a forgotten one judge alike, so this changes no verdict.
   */
  purge(): Promise<number> {
    const now = this.now();
    const forgetAfterMs = Math.max(this.policy.account.forgetAfterMs, this.policy.ip.forgetAfterMs);
    return this.counters.purge(new Date(now.getTime() - forgetAfterMs), now);
  }

  async #take(scope: ThrottleScope, key: string): Promise<Extract<ThrottleVerdict, { allowed: false }> | { allowed: true; lockedUntil: Date | null }> {
    const rule = this.policy[scope];
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const current = await this.counters.find(key);
      const now = this.now();
      const verdict = this.#judge(scope, current, now.getTime());
      if (!verdict.allowed) return verdict;
      const forgotten = !current || now.getTime() - current.lastFailure.getTime() > rule.forgetAfterMs;
      const failures = forgotten ? 1 : current.failures + 1;
      const next = { failures, lastFailure: now, lockedUntil: failures >= rule.lockAfter ? new Date(now.getTime() + rule.lockMs) : null };
      if (await this.counters.replace(key, current, next)) return { allowed: true, lockedUntil: next.lockedUntil };
    }
    // Hundreds of attempts racing on one key: refusing is the safe answer.
    return { allowed: false, reason: 'delayed', scope, retryAfterMs: rule.baseDelayMs };
  }

  #judge(scope: ThrottleScope, row: Counter | undefined, now: number): ThrottleVerdict {
    if (!row) return { allowed: true };
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

/**
 * The source an attempt is counted under: an IPv4 address as it is; an IPv6 address by its /64
 * network, since one host or subscriber line commonly holds a whole /64 (RFC 7934 §6) and
 * counting single addresses would give an attacker 2^64 fresh sources. An IPv4-mapped address
 * (::ffff:192.0.2.1, as a dual-stack socket reports IPv4 peers) counts as its IPv4 address.
 */
export function throttleSource(ip: string): string {
  if (!isIPv6(ip)) return ip;
  const groups = hextets(ip);
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join('.');
  }
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(':')}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address (net.isIPv6 checked it): `::` expanded, zone dropped. */
function hextets(ip: string): number[] {
  const parse = (part: string): number[] => (part === '' ? [] : part.split(':').flatMap((group) => {
    if (!group.includes('.')) return [parseInt(group, 16)];
    const [a, b, c, d] = group.split('.').map(Number) as [number, number, number, number];
    return [(a << 8) | b, (c << 8) | d];
  }));
  const [head = '', tail] = ip.split('%')[0]!.split('::');
  if (tail === undefined) return parse(head);
  const left = parse(head);
  const right = parse(tail);
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
}
