import type { SigningAlg } from './algorithms.ts';
import type { KeyState, SigningKeyRecord } from './store.ts';

/**
 * The signing-key state machine as pure functions of (stored keys, now, settings). Per
 * algorithm there is always one `active` key (current, signs), one `staged` key (next,
 * published, verify-only) and the `retiring` keys (previous) whose tokens may still be alive:
 *
 *   staged (next) ──▶ active (current) ──▶ retiring (previous) ──▶ retired (gone)
 *
 * The next key is created when its predecessor becomes active, so it is published for a
 * whole rotation interval before it signs; every JWKS served since the current key began
 * signing already holds it, which is what makes an immediate manual rotation safe once the
 * JWKS cache lifetime has passed. Every time is derived from the timestamps stored on the
 * keys, never from process uptime, so a restarted instance resumes the schedule where it was.
 */

/** The key fields the lifecycle reads: a stored record carries them all. */
export type LifecycleKey = Pick<SigningKeyRecord, 'kid' | 'alg' | 'state' | 'createdAt' | 'activatedAt' | 'retiringAt' | 'retiredAt'>;

export interface LifecycleSettings {
  /** How long a key is the signing key of its algorithm before its successor takes over. */
  rotationIntervalMs: number;
  /** The JWKS `Cache-Control: max-age`: a next key published this long is in every cached JWKS. */
  jwksMaxAgeMs: number;
  /**
   * The least time a next key is published before the schedule lets it sign. Only binds a
   * next key created late (a store from before next keys, a crash): one created with its
   * predecessor's activation is published for the whole interval anyway.
   */
  minScheduledPublicationMs: number;
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
 * A next key created late is published at least this long before the schedule activates it:
 * longer than any gateway keeps a JWKS regardless of Cache-Control (.NET up to 12 h, AWS
 * HTTP API authorizers 2 h, Istio 20 min, Envoy 10 min), or one interval if that is shorter.
 */
export const MIN_SCHEDULED_PUBLICATION_MS = 24 * 3_600_000;

/** Settings from configuration and the longest lifetime of any token we sign. */
export function lifecycleSettings(input: { rotationIntervalMs: number; longestTokenTtlSeconds: number; algs: readonly SigningAlg[] }): LifecycleSettings {
  return {
    rotationIntervalMs: input.rotationIntervalMs,
    jwksMaxAgeMs: jwksMaxAgeSeconds(input.rotationIntervalMs) * 1000,
    minScheduledPublicationMs: Math.min(input.rotationIntervalMs, MIN_SCHEDULED_PUBLICATION_MS),
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
const createNext = (alg: SigningAlg): Transition => ({ kind: 'create', alg, to: 'staged' });

/** When the schedule activates the next key: one interval after the current key began signing. */
export const promotionAt = (current: LifecycleKey, next: LifecycleKey, s: LifecycleSettings) => new Date(Math.max(
  (time(current.activatedAt) || current.createdAt.getTime()) + s.rotationIntervalMs,
  next.createdAt.getTime() + s.minScheduledPublicationMs,
));
/** When a replaced key leaves the JWKS: every token it signed has expired by then. */
export const retirementAt = (retiring: LifecycleKey, s: LifecycleSettings) =>
  new Date((time(retiring.retiringAt) || retiring.createdAt.getTime()) + s.retireAfterMs);

/**
 * From when a manual rotation may activate `next`: once no JWKS response still inside its
 * cache lifetime can lack it. A next key created with the first keys of its algorithm was in
 * every JWKS that held any of them (nothing was served in between), so at once; otherwise
 * one JWKS max-age after it was published.
 */
export function rotatableAt(next: LifecycleKey, keys: readonly LifecycleKey[], s: LifecycleSettings): Date {
  // Any key of the algorithm that signed before (previous, retired) or was published earlier.
  const older = keys.some((k) => k.alg === next.alg && k.kid !== next.kid
    && (k.createdAt < next.createdAt || k.state === 'retiring' || k.state === 'retired'));
  return older ? new Date(next.createdAt.getTime() + s.jwksMaxAgeMs) : next.createdAt;
}

/**
 * What an algorithm needs to have a current and a next key: the next key signs (or a new key
 * when there is none), and a new next key is created in the same batch.
 */
function completeAlg(g: AlgKeys, alg: SigningAlg): Transition[] {
  if (!g.current) return g.successor ? [move(g.successor, 'active'), createNext(alg)] : [{ kind: 'create', alg, to: 'active' }, createNext(alg)];
  return g.successor ? [] : [createNext(alg)];
}

/**
 * Scheduled promotions held back (KEYWARD_KEY_ROTATION_WAIT_FOR_CONSUMERS): per algorithm,
 * until when the schedule looks again. The scheduler decides them from the readiness view.
 */
export type Holds = ReadonlyMap<SigningAlg, Date>;

/** The scheduled plan for one algorithm. */
function planAlg(g: AlgKeys, now: Date, s: LifecycleSettings, alg: SigningAlg, holds: Holds): Plan {
  const due: Transition[] = completeAlg(g, alg);
  const pending: Date[] = [];
  const at = now.getTime();

  if (g.current && g.successor) {
    const promote = promotionAt(g.current, g.successor, s);
    const held = holds.get(alg);
    if (promote.getTime() > at) pending.push(promote);
    else if (held && held.getTime() > at) pending.push(held);
    else due.push(move(g.successor, 'active'), move(g.current, 'retiring'), createNext(alg));
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
export function plan(keys: readonly LifecycleKey[], now: Date, settings: LifecycleSettings, holds: Holds = new Map()): Plan {
  const plans = managedAlgs(keys, settings).map((alg) => planAlg(group(keys, alg), now, settings, alg, holds));
  return { due: plans.flatMap((p) => p.due), nextAt: earliest(plans.map((p) => p.nextAt)) };
}

/** Scheduled promotions due at `now`: the algorithm, its next key and when it fell due. */
export function duePromotions(keys: readonly LifecycleKey[], now: Date, settings: LifecycleSettings): { alg: SigningAlg; next: LifecycleKey; dueAt: Date }[] {
  return managedAlgs(keys, settings).flatMap((alg) => {
    const g = group(keys, alg);
    if (!g.current || !g.successor) return [];
    const dueAt = promotionAt(g.current, g.successor, settings);
    return dueAt <= now ? [{ alg, next: g.successor, dueAt }] : [];
  });
}

/**
 * At start, before anything is served: every configured algorithm gets a current and a next
 * key (an empty store, a newly configured algorithm, a store from before next keys existed,
 * or a crash mid-rotation that left a next key without a current one).
 */
export function planStart(keys: readonly LifecycleKey[], algs: readonly SigningAlg[]): Transition[] {
  return algs.flatMap((alg) => completeAlg(group(keys, alg), alg));
}

/** Why a manual rotation cannot happen yet, per algorithm. */
export interface RotationBlock {
  alg: SigningAlg;
  /** When it becomes possible (undefined: no next key yet; the schedule creates one at once). */
  possibleAt: Date | undefined;
}

/**
 * A manual (non-emergency) rotation of `algs`: each next key signs at once and the current
 * key becomes retiring, a new next key is created, all or nothing. Refused for every
 * algorithm whose next key a cached JWKS may still lack (see rotatableAt).
 */
export function planRotation(keys: readonly LifecycleKey[], now: Date, settings: LifecycleSettings, algs: readonly SigningAlg[]): { due: Transition[]; blocked: RotationBlock[] } {
  const due: Transition[] = [];
  const blocked: RotationBlock[] = [];
  for (const alg of algs) {
    const g = group(keys, alg);
    if (!g.current || !g.successor) {
      blocked.push({ alg, possibleAt: undefined });
      continue;
    }
    const possibleAt = rotatableAt(g.successor, keys, settings);
    if (possibleAt > now) blocked.push({ alg, possibleAt });
    else due.push(move(g.successor, 'active'), move(g.current, 'retiring'), ...g.extraActive.map((k) => move(k, 'retiring')), createNext(alg));
  }
  return blocked.length ? { due: [], blocked } : { due, blocked };
}

/**
 * An emergency rotation of `algs` for a compromised key: the next key (already published) or
 * else a fresh key signs at once, a new next key is created, and every active key is retired
 * immediately: it leaves the JWKS and its private part is deleted, so its tokens stop verifying.
 */
export function planEmergency(keys: readonly LifecycleKey[], algs: readonly SigningAlg[]): Transition[] {
  return algs.flatMap((alg): Transition[] => {
    const g = group(keys, alg);
    const replacement: Transition = g.successor ? move(g.successor, 'active') : { kind: 'create', alg, to: 'active' };
    const compromised = [g.current, ...g.extraActive].filter((k): k is LifecycleKey => k !== undefined);
    return [replacement, ...compromised.map((k) => move(k, 'retired')), createNext(alg)];
  });
}

/**
 * The consumers that count for a next key: those seen in the rotation interval before it was
 * published, or since. A consumer whose last fetch is older has been gone for an interval.
 * (Counting from now instead would drop, by the time the schedule activates the key, exactly
 * the consumers that never fetched it.)
 */
export function seenSinceFor(publishedAt: Date, settings: LifecycleSettings): Date {
  return new Date(publishedAt.getTime() - settings.rotationIntervalMs);
}

/** The next key of `alg` (the staged key that will sign next), if any. */
export function nextKeyOf(keys: readonly LifecycleKey[], alg: SigningAlg): LifecycleKey | undefined {
  return group(keys, alg).successor;
}

/** The next scheduled transition of one key, for display (`GET /admin/v1/keys`). */
export function nextTransitionOf(key: LifecycleKey, keys: readonly LifecycleKey[], now: Date, settings: LifecycleSettings): { to: KeyState; at: Date } | undefined {
  const g = group(keys, key.alg);
  const notBefore = (d: Date) => (d < now ? now : d);
  switch (key.state) {
    case 'staged':
      if (key.kid !== g.successor?.kid) return { to: 'retired', at: now };
      return { to: 'active', at: g.current ? notBefore(promotionAt(g.current, key, settings)) : now };
    case 'active':
      if (key.kid !== g.current?.kid) return { to: 'retiring', at: now };
      if (g.successor) return { to: 'retiring', at: notBefore(promotionAt(key, g.successor, settings)) };
      // The next key is created now and published at least the minimum before it signs.
      return { to: 'retiring', at: promotionAt(key, { ...key, createdAt: now }, settings) };
    case 'retiring':
      return { to: 'retired', at: notBefore(retirementAt(key, settings)) };
    case 'retired':
      return undefined;
  }
}
