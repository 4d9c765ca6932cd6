import { Conflict, Invalid } from '../domain/errors.ts';
import { managedAlgs, nextKeyOf, nextTransitionOf, planEmergency, planRotation, rotatableAt, seenSinceFor, type LifecycleSettings, type RotationBlock } from './lifecycle.ts';
import type { JwksConsumer, JwksConsumers } from './consumers.ts';
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
  /** current (active), next (the staged key that signs next), previous (retiring). */
  role?: 'current' | 'next' | 'previous';
  created_at: string;
  /** When it entered the JWKS (it is published from its creation). */
  published_at: string;
  /** For the next key: from when `POST /keys/rotate` may activate it. */
  rotatable_at?: string;
  /**
   * For the next key: JWKS consumers (address + User-Agent) seen in the rotation interval before
   * it was published or since, and how many of them fetched the JWKS after it was published
   * (rotating now breaks none of those).
   */
  consumers?: { seen: number; ready: number };
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
  /** Withdraw the current key at once (compromised key) and activate the next, whatever the caches hold. */
  emergency?: boolean;
  /** Who asked (client id, `cli`), for the audit trail. */
  actor?: string;
}

export interface KeyServiceDeps {
  keys: KeyStore;
  scheduler: KeyScheduler;
  settings: () => Promise<LifecycleSettings>;
  now: () => Date;
  consumers: JwksConsumers;
}

/** The JWKS consumers that do not yet hold every next key. */
export interface ConsumerReport {
  /** The newest publication of a next key: consumers whose latest fetch is not after it are not ready. */
  published_at: string | null;
  /** Consumers seen since (one rotation interval before that publication). */
  seen_since: string;
  total: number;
  items: JwksConsumer[];
}

/** A manual rotation refused because a cached JWKS may still lack a next key: 409. */
export class RotationTooEarly extends Conflict {
  override name = 'RotationTooEarly';
  /** The earliest instant at which the whole request can succeed. */
  override readonly retryAt: Date | undefined;
  constructor(readonly blocked: RotationBlock[]) {
    const times = blocked.map((b) => b.possibleAt?.getTime() ?? Number.NaN);
    const possibleAt = times.some(Number.isNaN) ? undefined : new Date(Math.max(...times));
    super(
      possibleAt
        ? `the next key is not yet in every cached JWKS; rotation is possible from ${possibleAt.toISOString()}`
        : 'no next key is published yet; one is being created, retry after the JWKS max-age',
      Object.fromEntries(blocked.map((b) => [b.alg, b.possibleAt ? `rotatable from ${b.possibleAt.toISOString()}` : 'no next key yet'])),
    );
    this.retryAt = possibleAt;
  }
}

/**
 * Signing keys for operators: the list with past and next transitions, and manual rotation.
 *
 * `rotate()` activates each next key at once, when no JWKS response still inside its cache
 * lifetime can lack it (lifecycle.ts rotatableAt); otherwise it changes nothing and throws
 * RotationTooEarly with the time it becomes possible. `emergency` activates the next key and
 * withdraws the current one at once, whatever the caches hold.
 */
export class KeyService {
  constructor(private readonly deps: KeyServiceDeps) {}

  async list(): Promise<KeyView[]> {
    const [keys, settings] = await Promise.all([this.deps.keys.list(), this.deps.settings()]);
    const now = this.deps.now();
    return Promise.all(keys.map(async (key) => {
      const next = nextKeyOf(keys, key.alg);
      const role = key.state === 'active' ? 'current' : key.state === 'retiring' ? 'previous' : next?.kid === key.kid ? 'next' : undefined;
      const v = view(key, nextTransitionOf(key, keys, now, settings), role, role === 'next' ? rotatableAt(key, keys, settings) : undefined);
      if (role === 'next') v.consumers = await this.deps.consumers.readiness(key.createdAt, seenSinceFor(key.createdAt, settings));
      return v;
    }));
  }

  /** Consumers seen in the last interval that have not fetched the JWKS since every next key was published. */
  async consumers(limit: number): Promise<ConsumerReport> {
    const [keys, settings] = await Promise.all([this.deps.keys.list(), this.deps.settings()]);
    const published = keys.filter((k) => k.state === 'staged').map((k) => k.createdAt.getTime());
    const newest = published.length ? new Date(Math.max(...published)) : undefined;
    const seenSince = seenSinceFor(newest ?? this.deps.now(), settings);
    if (!newest) return { published_at: null, seen_since: seenSince.toISOString(), total: 0, items: [] };
    const { items, total } = await this.deps.consumers.notReady(newest, seenSince, limit);
    return { published_at: newest.toISOString(), seen_since: seenSince.toISOString(), total, items };
  }

  async rotate(options: RotateOptions = {}): Promise<KeyView[]> {
    const reason = options.emergency ? 'emergency' : 'manual';
    let blocked: RotationBlock[] = [];
    await this.deps.scheduler.transact(reason, options.actor, (keys, now, settings) => {
      const managed = managedAlgs(keys, settings);
      if (options.alg && !managed.includes(options.alg)) {
        throw new Invalid(`no ${options.alg} signing keys: configure it in KEYWARD_SIGNING_ALGS first`, { alg: 'not in use' });
      }
      const algs = options.alg ? [options.alg] : managed;
      if (options.emergency) return planEmergency(keys, algs);
      const planned = planRotation(keys, now, settings, algs);
      blocked = planned.blocked;
      return planned.due;
    }, { wait: true });
    if (blocked.length) throw new RotationTooEarly(blocked);
    return this.list();
  }
}

function view(key: SigningKeyRecord, next: { to: KeyState; at: Date } | undefined, role: KeyView['role'], rotatable: Date | undefined): KeyView {
  return {
    kid: key.kid,
    alg: key.alg,
    use: 'sig',
    state: key.state,
    published: key.state !== 'retired',
    ...(role ? { role } : {}),
    created_at: key.createdAt.toISOString(),
    published_at: key.createdAt.toISOString(),
    ...(rotatable ? { rotatable_at: rotatable.toISOString() } : {}),
    ...(key.activatedAt ? { activated_at: key.activatedAt.toISOString() } : {}),
    ...(key.retiringAt ? { retiring_at: key.retiringAt.toISOString() } : {}),
    ...(key.retiredAt ? { retired_at: key.retiredAt.toISOString() } : {}),
    ...(next ? { next_state: next.to, next_transition_at: next.at.toISOString() } : {}),
  };
}
