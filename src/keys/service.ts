import { Invalid } from '../domain/errors.ts';
import { managedAlgs, nextTransitionOf, planEmergency, planRotation, type LifecycleSettings } from './lifecycle.ts';
import type { KeyScheduler } from './scheduler.ts';
import type { SigningAlg } from './algorithms.ts';
import type { KeyState, KeyStore, SigningKeyRecord } from './store.ts';

/** A signing key as the admin API and CLI show it: never any private part. */
export interface KeyView {
  kid: string;
  alg: SigningAlg;
  use: 'sig';
  state: KeyState;
  /** In the JWKS (staged, active, retiring). */
  published: boolean;
  created_at: string;
  activated_at?: string;
  retiring_at?: string;
  retired_at?: string;
  /** The state this key moves to next, and when (from the schedule as stored). */
  next_state?: KeyState;
  next_transition_at?: string;
}

export interface RotateOptions {
  /** Only this algorithm; all managed algorithms when absent. */
  alg?: SigningAlg;
  /** Retire the active key at once (compromised key) instead of staging a successor. */
  emergency?: boolean;
  /** Who asked (client id, `cli`), for the audit trail. */
  actor?: string;
}

export interface KeyServiceDeps {
  keys: KeyStore;
  scheduler: KeyScheduler;
  settings: () => Promise<LifecycleSettings>;
  now: () => Date;
}

/**
 * Signing keys for operators: the list with past and next transitions, and manual rotation.
 *
 * `rotate()` without `emergency` starts the next rotation now: it stages a successor, which is
 * published at once and signs after the staging lead (the scheduler promotes it). It never
 * lets a key sign before it has been published for the lead, because consumers that cached the
 * JWKS would reject its tokens; when a successor is already staged it is promoted only if its
 * lead has passed, otherwise rotate changes nothing (it is idempotent, and `next_transition_at`
 * says when the successor takes over). `emergency` is the one way to skip the lead.
 */
export class KeyService {
  constructor(private readonly deps: KeyServiceDeps) {}

  async list(): Promise<KeyView[]> {
    const [keys, settings] = await Promise.all([this.deps.keys.list(), this.deps.settings()]);
    const now = this.deps.now();
    return keys.map((key) => view(key, nextTransitionOf(key, keys, now, settings)));
  }

  async rotate(options: RotateOptions = {}): Promise<KeyView[]> {
    const reason = options.emergency ? 'emergency' : 'manual';
    await this.deps.scheduler.transact(reason, options.actor, (keys, now, settings) => {
      const managed = managedAlgs(keys, settings);
      if (options.alg && !managed.includes(options.alg)) {
        throw new Invalid(`no ${options.alg} signing keys: configure it in KEYWARD_SIGNING_ALGS first`, { alg: 'not in use' });
      }
      const algs = options.alg ? [options.alg] : managed;
      return options.emergency ? planEmergency(keys, algs) : planRotation(keys, now, settings, algs);
    }, { wait: true });
    return this.list();
  }
}

function view(key: SigningKeyRecord, next: { to: KeyState; at: Date } | undefined): KeyView {
  return {
    kid: key.kid,
    alg: key.alg,
    use: 'sig',
    state: key.state,
    published: key.state !== 'retired',
    created_at: key.createdAt.toISOString(),
    ...(key.activatedAt ? { activated_at: key.activatedAt.toISOString() } : {}),
    ...(key.retiringAt ? { retiring_at: key.retiringAt.toISOString() } : {}),
    ...(key.retiredAt ? { retired_at: key.retiredAt.toISOString() } : {}),
    ...(next ? { next_state: next.to, next_transition_at: next.at.toISOString() } : {}),
  };
}
