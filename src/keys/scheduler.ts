import type { AuditWriter } from '../audit/writer.ts';
import { errorFields, type Logger } from '../log/logger.ts';
import type { Sql } from '../store/sql.ts';
import type { JwksConsumers } from './consumers.ts';
import { duePromotions, plan, seenSinceFor, type LifecycleKey, type LifecycleSettings, type Transition } from './lifecycle.ts';
import type { SigningAlg } from './algorithms.ts';
import type { KeyState, KeyStore } from './store.ts';

/** The advisory lock every key transition is made under (also taken by initial.ts). */
export const KEY_LIFECYCLE_LOCK = 0x6b65796c; // "keyl"

export type TransitionReason = 'initial' | 'schedule' | 'manual' | 'emergency';

/** A transition that was made: `from` is null for a key created by it. */
export interface AppliedTransition {
  kid: string;
  alg: SigningAlg;
  from: KeyState | null;
  to: KeyState;
  at: Date;
  reason: TransitionReason;
}

export interface KeySchedulerDeps {
  sql: Sql;
  keys: KeyStore;
  audit: AuditWriter;
  logger: Logger;
  now: () => Date;
  /** Read under the lock each time: token lifetimes live in the store and may change. */
  settings: () => Promise<LifecycleSettings>;
  /** After the key set changed: reload this instance and notify the others. */
  changed: () => Promise<void>;
  /** Wake at least this often even when nothing is due (catches clock jumps and lost locks). */
  maxWakeMs?: number;
  /** What the schedule sleeps with; tests pass timers their clock fires. */
  timers?: Timers;
  /**
   * KEYWARD_KEY_ROTATION_WAIT_FOR_CONSUMERS: a scheduled promotion waits until every JWKS
   * consumer that counts (lifecycle.ts seenSinceFor) has fetched since the next key was published, at most
   * `maxDelayMs` past its due time.
   */
  waitForConsumers?: { consumers: JwksConsumers; maxDelayMs: number };
}

/** A one-shot timer that does not keep the process alive; returns its cancel function. */
export interface Timers {
  schedule(callback: () => void, delayMs: number): () => void;
}

export const systemTimers: Timers = {
  schedule(callback, delayMs) {
    const timer = setTimeout(callback, delayMs);
    timer.unref();
    return () => clearTimeout(timer);
  },
};

/** Decides, from the keys re-read under the lock, what to do now. */
export type Decision = (keys: LifecycleKey[], now: Date, settings: LifecycleSettings) => Transition[] | Promise<Transition[]>;

const MIN_WAKE_MS = 1000;
const DEFAULT_MAX_WAKE_MS = 60_000;
/** While a promotion waits for consumers: how often readiness is looked at again, and the hold logged. */
const HOLD_RECHECK_MS = 60_000;
const HOLD_LOG_EVERY_MS = 10 * 60_000;

/**
 * Performs key transitions: on a timer for the schedule, and on request (KeyService). Each
 * batch runs under the PostgreSQL advisory lock so exactly one instance performs it, and
 * re-reads the keys inside the lock, so an instance that waited finds the work already done.
 * Within one process batches are serialized too (on PGlite the lock is trivially ours).
 */
export class KeyScheduler {
  #cancel: (() => void) | undefined;
  #stopped = false;
  #chain: Promise<unknown> = Promise.resolve();
  readonly #maxWakeMs: number;
  readonly #timers: Timers;
  /** Promotions held for consumers on this instance, until when (see lifecycle.ts Holds). */
  readonly #holds = new Map<SigningAlg, Date>();
  readonly #holdLoggedAt = new Map<string, number>();

  constructor(private readonly deps: KeySchedulerDeps) {
    this.#maxWakeMs = deps.maxWakeMs ?? DEFAULT_MAX_WAKE_MS;
    this.#timers = deps.timers ?? systemTimers;
  }

  /** Starts the timer; the first check runs at once (transitions may be overdue after downtime). */
  start(): void {
    if (this.#cancel || this.#stopped) return;
    this.#arm(0);
  }

  /** Stops the timer and waits for a batch in progress, so the store is not closed under it. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#cancel?.();
    this.#cancel = undefined;
    await this.#chain;
  }

  /** Performs every scheduled transition due now, unless another instance is doing so. */
  runDue(): Promise<{ acquired: boolean; applied: AppliedTransition[] }> {
    return this.#exclusive(() => this.#runDue());
  }

  #runDue(): Promise<{ acquired: boolean; applied: AppliedTransition[] }> {
    return this.#transact('schedule', undefined, async (keys, now, settings) => {
      await this.#updateHolds(keys, now, settings);
      return plan(keys, now, settings, this.#holds).due;
    }, { wait: false });
  }

  /**
   * Holds each due promotion whose recently seen JWKS consumers have not all fetched the next
   * key, until the next look (at most the maximum delay past its due time), and logs who holds
   * it up. Without the setting nothing is held.
   */
  async #updateHolds(keys: LifecycleKey[], now: Date, settings: LifecycleSettings): Promise<void> {
    this.#holds.clear();
    const wait = this.deps.waitForConsumers;
    if (!wait) return;
    for (const { alg, next, dueAt } of duePromotions(keys, now, settings)) {
      const deadline = dueAt.getTime() + wait.maxDelayMs;
      if (now.getTime() >= deadline) continue;
      const seenSince = seenSinceFor(next.createdAt, settings);
      const { seen, ready } = await wait.consumers.readiness(next.createdAt, seenSince);
      if (ready >= seen) continue;
      this.#holds.set(alg, new Date(Math.min(deadline, now.getTime() + HOLD_RECHECK_MS)));
      const logKey = `${alg}:${next.kid}`;
      if (now.getTime() - (this.#holdLoggedAt.get(logKey) ?? 0) >= HOLD_LOG_EVERY_MS) {
        this.#holdLoggedAt.set(logKey, now.getTime());
        const { items } = await wait.consumers.notReady(next.createdAt, seenSince, 5);
        this.deps.logger.warn({
          alg, kid: next.kid, seen, ready, until: new Date(deadline).toISOString(),
          waiting_for: items.map((c) => `${c.address} ${JSON.stringify(c.user_agent)} last ${c.last_fetch_at}`),
        }, 'scheduled key rotation waits for JWKS consumers that have not fetched the next key');
      }
    }
  }

  /**
   * Runs `decide` on the keys as stored, under the lock, and applies its transitions, each an
   * audit event and a log line. With `wait: false` gives up at once when another instance holds
   * the lock (it is doing the same work).
   */
  transact(reason: TransitionReason, actor: string | undefined, decide: Decision, options: { wait: boolean }): Promise<{ acquired: boolean; applied: AppliedTransition[] }> {
    return this.#exclusive(() => this.#transact(reason, actor, decide, options));
  }

  async #transact(reason: TransitionReason, actor: string | undefined, decide: Decision, options: { wait: boolean }): Promise<{ acquired: boolean; applied: AppliedTransition[] }> {
    const applied: AppliedTransition[] = [];
    try {
      const locked = await this.deps.sql.withAdvisoryLock(KEY_LIFECYCLE_LOCK, async () => {
        const settings = await this.deps.settings();
        const at = this.deps.now();
        await applyTransitions(this.deps, await decide(await this.deps.keys.list(), at, settings), at, reason, actor, applied);
      }, { wait: options.wait });
      return { acquired: locked.acquired, applied };
    } finally {
      // Outside the lock (reloading builds a Provider; other instances need not wait for that),
      // and also after a failure part-way, so what was done is served at once.
      if (applied.length) await this.deps.changed();
    }
  }

  /** When the next scheduled transition falls due (from the store, not from uptime). */
  async nextDueAt(): Promise<Date | undefined> {
    return plan(await this.deps.keys.list(), this.deps.now(), await this.deps.settings(), this.#holds).nextAt;
  }

  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.#chain.then(fn);
    this.#chain = result.catch(() => undefined);
    return result;
  }

  #arm(delayMs: number): void {
    if (this.#stopped) return;
    this.#cancel = this.#timers.schedule(() => void this.#tick(), delayMs);
  }

  async #tick(): Promise<void> {
    this.#cancel = undefined;
    await this.#exclusive(async () => {
      if (!this.#stopped) this.#arm(await this.#check());
    });
  }

  /** One scheduled check; returns how long to sleep until the next. */
  async #check(): Promise<number> {
    let delay = this.#maxWakeMs;
    try {
      await this.#runDue();
      const next = await this.nextDueAt();
      // Still due (another instance holds the lock right now): look again shortly.
      if (next) delay = Math.min(this.#maxWakeMs, Math.max(MIN_WAKE_MS, next.getTime() - this.deps.now().getTime()));
    } catch (error) {
      this.deps.logger.error({ err: errorFields(error) }, 'signing key schedule failed; will retry');
      delay = Math.min(this.#maxWakeMs, 5000);
    }
    return delay;
  }
}

/**
 * Applies `transitions` in order, each an audit event and a log line, appending each to
 * `applied` as it is made (so a failure part-way still reports what was done). A next key
 * created in the same batch as the first active key of its algorithm is stamped with that
 * key's creation time: nothing was published in between, so no JWKS ever held one without
 * the other (lifecycle.ts rotatableAt relies on it).
 */
export async function applyTransitions(
  deps: Pick<KeySchedulerDeps, 'keys' | 'audit' | 'logger' | 'now'>,
  transitions: readonly Transition[],
  at: Date,
  reason: TransitionReason,
  actor: string | undefined,
  applied: AppliedTransition[] = [],
): Promise<AppliedTransition[]> {
  const createdActive = new Map<SigningAlg, Date>();
  for (const transition of transitions) {
    let record;
    if (transition.kind === 'create') {
      const with_ = createdActive.get(transition.alg);
      record = await deps.keys.create(transition.alg, transition.to, transition.to === 'staged' && with_ ? () => with_ : deps.now);
      if (transition.to === 'active') createdActive.set(transition.alg, record.createdAt);
    } else {
      record = await deps.keys.transition(transition.kid, transition.to, at);
    }
    const made: AppliedTransition = {
      kid: record.kid,
      alg: record.alg,
      from: transition.kind === 'create' ? null : transition.from,
      to: record.state,
      at: transition.kind === 'create' ? record.createdAt : at,
      reason,
    };
    deps.audit.record({
      type: 'key.transition',
      actor: actor ?? (reason === 'initial' ? 'startup' : 'scheduler'),
      subject: record.kid,
      outcome: 'success',
      details: { alg: made.alg, from: made.from, to: made.to, reason },
      at: made.at,
    });
    deps.logger.info({ kid: made.kid, alg: made.alg, from: made.from, to: made.to, reason }, 'signing key transition');
    applied.push(made);
  }
  return applied;
}
