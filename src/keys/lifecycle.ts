import type { SigningAlg } from './algorithms.ts';
import type { KeyState, SigningKeyRecord } from './store.ts';

/**
 * The signing-key state machine, `staged → active → retiring → retired`, as pure functions of
 * (stored keys, now, settings). Every time is derived from the timestamps stored on the keys,
 * never from process uptime, so a restarted instance resumes the schedule where it was.
 */

/** The key fields the lifecycle reads: a stored record carries them all. */
export type LifecycleKey = Pick<SigningKeyRecord, 'kid' | 'alg' | 'state' | 'createdAt' | 'activatedAt' | 'retiringAt' | 'retiredAt'>;

export interface LifecycleSettings {
  /** How long a key is the signing key of its algorithm before its successor takes over. */
  rotationIntervalMs: number;
  /** How long a new key is published (staged) before it may sign: the JWKS cache lifetime plus a margin. */
  stagingLeadMs: number;
  /** How long a replaced key stays published: the longest token lifetime plus a margin. */
  retireAfterMs: number;
  /** Algorithms that always have a signing key; algorithms of keys already live are kept too. */
  algs: readonly SigningAlg[];
}

/** One step the store must take. `create` makes a fresh key pair in the given state. */
export type Transition =
  | { kind: 'create'; alg: SigningAlg; to: 'staged' | 'active' }
  | { kind: 'move'; kid: string; alg: SigningAlg; from: KeyState; to: KeyState };

export interface Plan {
  /** Transitions due at `now`, in the order they must be applied (never leaves an algorithm without a signing key). */
  due: Transition[];
  /** When the earliest future transition falls due; undefined when nothing is pending. */
  nextAt: Date | undefined;
}

/** JWKS consumers may cache at most this long: 1/8 of the rotation interval, between 1 s and 1 h. */
export function jwksMaxAgeSeconds(rotationIntervalMs: number): number {
  return Math.min(3600, Math.max(1, Math.floor(rotationIntervalMs / 8 / 1000)));
}

/** Verifiers may disagree with our clock by this much; a key outlives its last token by at least this. */
export const RETIRE_MARGIN_MS = 5 * 60_000;

/**
 * Settings from configuration and the longest lifetime of any token we sign. The staging lead
 * is twice the JWKS max-age: a consumer that fetched the JWKS an instant before the new key
 * appeared still refreshes once before the key signs, with a whole cache lifetime to spare for
 * propagation between instances and clock skew. With a max-age of at most 1/8 of the interval
 * the lead is at most a quarter of it, so a key always signs for most of its interval.
 */
export function lifecycleSettings(input: { rotationIntervalMs: number; longestTokenTtlSeconds: number; algs: readonly SigningAlg[] }): LifecycleSettings {
  return {
    rotationIntervalMs: input.rotationIntervalMs,
    stagingLeadMs: 2 * jwksMaxAgeSeconds(input.rotationIntervalMs) * 1000,
    retireAfterMs: input.longestTokenTtlSeconds * 1000 + RETIRE_MARGIN_MS,
    algs: input.algs,
  };
}

const time = (d: Date | null | undefined): number => d?.getTime() ?? Number.NaN;
const byOldest = (a: LifecycleKey, b: LifecycleKey) => a.createdAt.getTime() - b.createdAt.getTime() || a.kid.localeCompare(b.kid);
const byNewestActivation = (a: LifecycleKey, b: LifecycleKey) =>
  (time(b.activatedAt) || b.createdAt.getTime()) - (time(a.activatedAt) || a.createdAt.getTime()) || a.kid.localeCompare(b.kid);

/** The algorithms under management: configured ones plus any with a live key (never silently drop one). */
export function managedAlgs(keys: readonly LifecycleKey[], settings: LifecycleSettings): SigningAlg[] {
  const algs = new Set<SigningAlg>(settings.algs);
  for (const key of keys) if (key.state !== 'retired') algs.add(key.alg);
  return [...algs];
}

/** One algorithm's live keys: the signing key, its successor, and everything else. */
interface AlgKeys {
  /** The most recently activated active key. */
  current: LifecycleKey | undefined;
  /** Further active keys (only after a crash mid-transition): they retire at once. */
  extraActive: LifecycleKey[];
  /** The oldest staged key: the one published longest. */
  successor: LifecycleKey | undefined;
  /** Further staged keys never signed anything: they retire at once. */
  extraStaged: LifecycleKey[];
  retiring: LifecycleKey[];
}

function group(keys: readonly LifecycleKey[], alg: SigningAlg): AlgKeys {
  const mine = keys.filter((k) => k.alg === alg);
  const active = mine.filter((k) => k.state === 'active').sort(byNewestActivation);
  const staged = mine.filter((k) => k.state === 'staged').sort(byOldest);
  return {
    current: active[0],
    extraActive: active.slice(1),
    successor: staged[0],
    extraStaged: staged.slice(1),
    retiring: mine.filter((k) => k.state === 'retiring').sort(byOldest),
  };
}

const move = (key: LifecycleKey, to: KeyState): Transition => ({ kind: 'move', kid: key.kid, alg: key.alg, from: key.state, to });

/** When a staged key may sign: after it has been published for the staging lead. */
export const promotionAt = (staged: LifecycleKey, s: LifecycleSettings) => new Date(staged.createdAt.getTime() + s.stagingLeadMs);
/** When an active key's successor is created, so that it can take over at the end of the interval. */
export const stagingAt = (active: LifecycleKey, s: LifecycleSettings) =>
  new Date((time(active.activatedAt) || active.createdAt.getTime()) + s.rotationIntervalMs - s.stagingLeadMs);
/** When a replaced key leaves the JWKS: every token it signed has expired by then. */
export const retirementAt = (retiring: LifecycleKey, s: LifecycleSettings) =>
  new Date((time(retiring.retiringAt) || retiring.createdAt.getTime()) + s.retireAfterMs);

/** The scheduled plan for one algorithm. */
function planAlg(g: AlgKeys, now: Date, s: LifecycleSettings, alg: SigningAlg): Plan {
  const due: Transition[] = [];
  const pending: Date[] = [];
  const at = now.getTime();

  if (!g.current) {
    // Nothing signs for this algorithm: take the best key at once (a staged key is at least published).
    due.push(g.successor ? move(g.successor, 'active') : { kind: 'create', alg, to: 'active' });
  } else if (g.successor) {
    const promote = promotionAt(g.successor, s);
    if (promote.getTime() <= at) due.push(move(g.successor, 'active'), move(g.current, 'retiring'));
    else pending.push(promote);
  } else {
    const stage = stagingAt(g.current, s);
    if (stage.getTime() <= at) due.push({ kind: 'create', alg, to: 'staged' });
    else pending.push(stage);
  }
  for (const key of g.extraActive) due.push(move(key, 'retiring'));
  for (const key of g.extraStaged) due.push(move(key, 'retired'));
  for (const key of g.retiring) {
    const retire = retirementAt(key, s);
    if (retire.getTime() <= at) due.push(move(key, 'retired'));
    else pending.push(retire);
  }
  return { due, nextAt: earliest(pending) };
}

function earliest(dates: (Date | undefined)[]): Date | undefined {
  let min: Date | undefined;
  for (const d of dates) if (d && (!min || d < min)) min = d;
  return min;
}

/** Every transition due at `now` and when the next one falls due. */
export function plan(keys: readonly LifecycleKey[], now: Date, settings: LifecycleSettings): Plan {
  const plans = managedAlgs(keys, settings).map((alg) => planAlg(group(keys, alg), now, settings, alg));
  return { due: plans.flatMap((p) => p.due), nextAt: earliest(plans.map((p) => p.nextAt)) };
}

/**
 * A manual (non-emergency) rotation of `algs`: whatever is due anyway, and when no successor
 * is staged, stage one now. It never shortens the staging lead: the new key signs once it has
 * been published for the lead time (the scheduler promotes it then). Repeating it while a key
 * is staged changes nothing, so a retried request cannot rotate twice.
 */
export function planRotation(keys: readonly LifecycleKey[], now: Date, settings: LifecycleSettings, algs: readonly SigningAlg[]): Transition[] {
  return algs.flatMap((alg) => {
    const g = group(keys, alg);
    const { due } = planAlg(g, now, settings, alg);
    const stages = due.some((t) => t.kind === 'create' || (t.kind === 'move' && t.to === 'active'));
    return g.current && !g.successor && !stages ? [...due, { kind: 'create', alg, to: 'staged' } as const] : due;
  });
}

/**
 * An emergency rotation of `algs` for a compromised key: the staged successor (already
 * published) or else a fresh key signs at once, and every active key is retired immediately:
 * it leaves the JWKS and its private part is deleted, so tokens it signed stop verifying.
 */
export function planEmergency(keys: readonly LifecycleKey[], algs: readonly SigningAlg[]): Transition[] {
  return algs.flatMap((alg): Transition[] => {
    const g = group(keys, alg);
    const replacement: Transition = g.successor ? move(g.successor, 'active') : { kind: 'create', alg, to: 'active' };
    const compromised = [g.current, ...g.extraActive].filter((k): k is LifecycleKey => k !== undefined);
    return [replacement, ...compromised.map((k) => move(k, 'retired'))];
  });
}

/** The next scheduled transition of one key, for display (`GET /admin/v1/keys`). */
export function nextTransitionOf(key: LifecycleKey, keys: readonly LifecycleKey[], now: Date, settings: LifecycleSettings): { to: KeyState; at: Date } | undefined {
  const g = group(keys, key.alg);
  const notBefore = (d: Date) => (d < now ? now : d);
  switch (key.state) {
    case 'staged':
      return key.kid === g.successor?.kid ? { to: 'active', at: notBefore(promotionAt(key, settings)) } : { to: 'retired', at: now };
    case 'active':
      if (key.kid !== g.current?.kid) return { to: 'retiring', at: now };
      if (g.successor) return { to: 'retiring', at: notBefore(promotionAt(g.successor, settings)) };
      // The successor is staged first, then published for the lead: never earlier than now + lead.
      return {
        to: 'retiring',
        at: new Date(Math.max(stagingAt(key, settings).getTime(), now.getTime()) + settings.stagingLeadMs),
      };
    case 'retiring':
      return { to: 'retired', at: notBefore(retirementAt(key, settings)) };
    case 'retired':
      return undefined;
  }
}
