import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  jwksMaxAgeSeconds, lifecycleSettings, managedAlgs, nextTransitionOf, plan, planEmergency, planRotation, planStart, rotatableAt,
  type LifecycleKey, type LifecycleSettings, type Transition,
} from '../../src/keys/lifecycle.ts';
import type { SigningAlg } from '../../src/keys/algorithms.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T0 = new Date('2030-01-01T00:00:00Z');
const at = (ms: number) => new Date(T0.getTime() + ms);

const settings = lifecycleSettings({ rotationIntervalMs: 30 * DAY, longestTokenTtlSeconds: 3600, algs: ['ES256', 'RS256'] });

let serial = 0;
function key(alg: SigningAlg, state: LifecycleKey['state'], times: Partial<Pick<LifecycleKey, 'createdAt' | 'activatedAt' | 'retiringAt' | 'retiredAt'>> = {}): LifecycleKey {
  return { kid: `${alg}-${++serial}`, alg, state, createdAt: times.createdAt ?? T0, activatedAt: times.activatedAt ?? null, retiringAt: times.retiringAt ?? null, retiredAt: times.retiredAt ?? null };
}
/** A first start: for each algorithm a current key and a next key created with it. */
const initial = (): LifecycleKey[] => apply([], planStart([], ['ES256', 'RS256']), T0);

/** Applies transitions as KeyStore and the scheduler would (the same timestamps), for simulation. */
function apply(keys: LifecycleKey[], transitions: Transition[], now: Date): LifecycleKey[] {
  const next = keys.map((k) => ({ ...k }));
  for (const t of transitions) {
    if (t.kind === 'create') {
      next.push(key(t.alg, t.to, { createdAt: now, ...(t.to === 'active' ? { activatedAt: now } : {}) }));
      continue;
    }
    const k = next.find((x) => x.kid === t.kid)!;
    assert.equal(k.state, t.from);
    k.state = t.to;
    if (t.to === 'active') k.activatedAt = now;
    if (t.to === 'retiring') k.retiringAt = now;
    if (t.to === 'retired') k.retiredAt = now;
  }
  return next;
}

const activeOf = (keys: LifecycleKey[], alg: SigningAlg) => keys.filter((k) => k.alg === alg && k.state === 'active');
const stagedOf = (keys: LifecycleKey[], alg: SigningAlg) => keys.filter((k) => k.alg === alg && k.state === 'staged');
const ALGS = ['ES256', 'RS256'] as const;

describe('settings', () => {
  test('JWKS max-age is 1/8 of the rotation interval, at most 1 h, at least 1 s', () => {
    assert.equal(jwksMaxAgeSeconds(30 * DAY), 3600);
    assert.equal(jwksMaxAgeSeconds(90_000), 11);
    assert.equal(jwksMaxAgeSeconds(4_000), 1);
  });

  test('defaults: max-age 1 h, a late next key published at least 24 h before the schedule activates it, retirement after the longest token plus 5 min', () => {
    assert.equal(settings.jwksMaxAgeMs, HOUR);
    assert.equal(settings.minScheduledPublicationMs, 24 * HOUR);
    assert.equal(settings.retireAfterMs, HOUR + 5 * 60_000);
    const short = lifecycleSettings({ rotationIntervalMs: 90_000, longestTokenTtlSeconds: 300, algs: ['RS256'] });
    assert.deepEqual([short.jwksMaxAgeMs, short.minScheduledPublicationMs], [11_000, 90_000]);
  });
});

describe('current, next, previous', () => {
  test('a first start creates, per algorithm, a current key and a next key stamped with the same instant', () => {
    assert.deepEqual(planStart([], ['ES256']), [{ kind: 'create', alg: 'ES256', to: 'active' }, { kind: 'create', alg: 'ES256', to: 'staged' }]);
    const keys = initial();
    for (const alg of ALGS) {
      assert.equal(activeOf(keys, alg).length, 1);
      assert.equal(stagedOf(keys, alg)[0]!.createdAt.getTime(), T0.getTime());
    }
  });

  test('a store from before next keys (a current key only) gets a next key at start, and the schedule creates one too', () => {
    const old = [key('ES256', 'active', { activatedAt: T0 })];
    assert.deepEqual(planStart(old, ['ES256']), [{ kind: 'create', alg: 'ES256', to: 'staged' }]);
    assert.deepEqual(plan(old, at(DAY), { ...settings, algs: ['ES256'] }).due, [{ kind: 'create', alg: 'ES256', to: 'staged' }]);
    assert.deepEqual(planStart(initial(), ALGS), [], 'nothing to do on a complete store');
  });

  test('a late next key (migrated store, overdue) signs no sooner than 24 h after it was published', () => {
    const s = { ...settings, algs: ['ES256'] as SigningAlg[] };
    let keys = [key('ES256', 'active', { activatedAt: T0 })];
    keys = apply(keys, planStart(keys, ['ES256']), at(45 * DAY));
    assert.deepEqual(plan(keys, at(45 * DAY + 24 * HOUR - 1), s).due, []);
    assert.deepEqual(plan(keys, at(45 * DAY), s).nextAt, at(46 * DAY));
  });

  test('at the end of the interval the next key signs, the current key becomes previous (retiring) and a new next key is created', () => {
    const keys = initial();
    assert.deepEqual(plan(keys, at(DAY), settings), { due: [], nextAt: at(30 * DAY) });
    const due = plan(keys, at(30 * DAY), settings).due.filter((t) => t.alg === 'ES256');
    const [cur, nxt] = [activeOf(keys, 'ES256')[0]!, stagedOf(keys, 'ES256')[0]!];
    assert.deepEqual(due, [
      { kind: 'move', kid: nxt.kid, alg: 'ES256', from: 'staged', to: 'active' },
      { kind: 'move', kid: cur.kid, alg: 'ES256', from: 'active', to: 'retiring' },
      { kind: 'create', alg: 'ES256', to: 'staged' },
    ]);
  });

  test('a retiring key is retired once every token it signed has expired', () => {
    const keys = [key('RS256', 'active', { activatedAt: at(DAY) }), key('RS256', 'staged', { createdAt: at(DAY) }), key('RS256', 'retiring', { activatedAt: T0, retiringAt: at(DAY) })];
    const s = { ...settings, algs: ['RS256'] as SigningAlg[] };
    assert.deepEqual(plan(keys, at(DAY + settings.retireAfterMs - 1), s).due, []);
    assert.deepEqual(plan(keys, at(DAY + settings.retireAfterMs), s).due, [{ kind: 'move', kid: keys[2]!.kid, alg: 'RS256', from: 'retiring', to: 'retired' }]);
  });

  test('an algorithm without an active key gets its staged key, or else a new one, and a new next key, at once', () => {
    const staged = key('ES256', 'staged', { createdAt: T0 });
    assert.deepEqual(plan([staged], T0, { ...settings, algs: ['ES256'] }).due, [
      { kind: 'move', kid: staged.kid, alg: 'ES256', from: 'staged', to: 'active' }, { kind: 'create', alg: 'ES256', to: 'staged' }]);
    assert.deepEqual(plan([], T0, { ...settings, algs: ['EdDSA'] }).due, [{ kind: 'create', alg: 'EdDSA', to: 'active' }, { kind: 'create', alg: 'EdDSA', to: 'staged' }]);
  });

  test('keys of an algorithm no longer configured keep rotating rather than vanish', () => {
    const keys = [key('EdDSA', 'active', { activatedAt: T0 })];
    assert.deepEqual(managedAlgs(keys, settings), ['ES256', 'RS256', 'EdDSA']);
  });

  test('over ten intervals: always one current and one next key per algorithm, each published a whole interval before signing, retired only after the longest token', () => {
    let keys = initial();
    let now = T0;
    for (let step = 0; step < 200 && now < at(300 * DAY); step++) {
      const { nextAt } = plan(keys, now, settings);
      now = nextAt!;
      const { due } = plan(keys, now, settings);
      assert.ok(due.length > 0, 'nextAt must point at due work');
      keys = apply(keys, due, now);
      for (const alg of ALGS) assert.deepEqual([activeOf(keys, alg).length, stagedOf(keys, alg).length], [1, 1]);
    }
    for (const k of keys.filter((x) => x.activatedAt && x.activatedAt > T0)) {
      assert.equal(k.activatedAt!.getTime() - k.createdAt.getTime(), 30 * DAY, `${k.kid} published one interval before signing`);
    }
    for (const k of keys.filter((x) => x.state === 'retired')) {
      assert.ok(k.retiredAt!.getTime() - k.retiringAt!.getTime() >= settings.retireAfterMs);
    }
    const activations = keys.filter((k) => k.alg === 'ES256' && k.activatedAt! > T0).map((k) => k.activatedAt!.getTime()).sort((a, b) => a - b);
    assert.deepEqual(activations, Array.from({ length: 10 }, (_, i) => at((i + 1) * 30 * DAY).getTime()));
    // The JWKS holds at most: current, next and one previous key per algorithm.
    assert.ok(keys.filter((k) => k.state !== 'retired').length <= 6);
  });

  test('property: from any wake-up times and manual rotations, no key signs before every cached JWKS holds it, and none retires before its last token', () => {
    const step = fc.record({ gap: fc.integer({ min: 1, max: 40 * DAY }), rotate: fc.boolean() });
    fc.assert(fc.property(fc.array(step, { minLength: 1, maxLength: 30 }), (steps) => {
      let keys = initial();
      let now = T0;
      for (const { gap, rotate } of steps) {
        now = new Date(now.getTime() + gap);
        keys = apply(keys, plan(keys, now, settings).due, now);
        if (rotate) keys = apply(keys, planRotation(keys, now, settings, ALGS).due, now);
        for (const alg of ALGS) if (activeOf(keys, alg).length !== 1 || stagedOf(keys, alg).length !== 1) return false;
      }
      return keys.every((k) => !k.activatedAt || k.createdAt.getTime() === T0.getTime() || k.activatedAt.getTime() - k.createdAt.getTime() >= settings.jwksMaxAgeMs)
        && keys.every((k) => k.state !== 'retired' || k.retiredAt!.getTime() - k.retiringAt!.getTime() >= settings.retireAfterMs);
    }));
  });
});

describe('manual and emergency rotation', () => {
  test('right after the first start a manual rotation is instant: the next key was created with the first key set', () => {
    const keys = initial();
    const next = stagedOf(keys, 'ES256')[0]!;
    assert.deepEqual(rotatableAt(next, keys, settings), T0);
    const { due, blocked } = planRotation(keys, T0, settings, ['ES256']);
    assert.deepEqual(blocked, []);
    assert.deepEqual(due.map((t) => (t.kind === 'move' ? `${t.from}>${t.to}` : `new ${t.to}`)), ['staged>active', 'active>retiring', 'new staged']);
  });

  test('two rotations in a row: the second is refused, with the time it becomes possible, until the new next key has been published for the JWKS max-age', () => {
    const first = initial();
    let keys = apply(first, planRotation(first, at(DAY), settings, ['ES256']).due, at(DAY));
    assert.deepEqual(planRotation(keys, at(DAY + HOUR - 1), settings, ['ES256']), { due: [], blocked: [{ alg: 'ES256', possibleAt: at(DAY + HOUR) }] });
    // All or nothing: RS256 could rotate, ES256 cannot, so neither does.
    assert.equal(planRotation(keys, at(DAY + 1), settings, ALGS).due.length, 0);
    const { due } = planRotation(keys, at(DAY + HOUR), settings, ['ES256']);
    assert.equal(due.length, 3);
    keys = apply(keys, due, at(DAY + HOUR));
    // The schedule then runs a whole interval from the manual activation.
    assert.deepEqual(nextTransitionOf(activeOf(keys, 'ES256')[0]!, keys, at(DAY + HOUR), settings), { to: 'retiring', at: at(31 * DAY + HOUR) });
  });

  test('an emergency rotation retires the active key at once, activates the next key (or a new key) and creates a new next key', () => {
    const active = key('ES256', 'active', { activatedAt: T0 });
    const staged = key('ES256', 'staged', { createdAt: at(DAY) });
    assert.deepEqual(planEmergency([active, staged], ['ES256']), [
      { kind: 'move', kid: staged.kid, alg: 'ES256', from: 'staged', to: 'active' },
      { kind: 'move', kid: active.kid, alg: 'ES256', from: 'active', to: 'retired' },
      { kind: 'create', alg: 'ES256', to: 'staged' },
    ]);
    assert.deepEqual(planEmergency([active], ['ES256']), [
      { kind: 'create', alg: 'ES256', to: 'active' },
      { kind: 'move', kid: active.kid, alg: 'ES256', from: 'active', to: 'retired' },
      { kind: 'create', alg: 'ES256', to: 'staged' },
    ]);
  });
});

describe('next transition of each key (for display)', () => {
  test('each state shows where it goes next and when', () => {
    const s: LifecycleSettings = { ...settings, algs: ['ES256'] };
    const active = key('ES256', 'active', { activatedAt: T0 });
    const staged = key('ES256', 'staged', { createdAt: T0 });
    const retiring = key('ES256', 'retiring', { retiringAt: at(DAY) });
    const keys = [active, staged, retiring];
    assert.deepEqual(nextTransitionOf(staged, keys, at(DAY), s), { to: 'active', at: at(30 * DAY) });
    assert.deepEqual(nextTransitionOf(active, keys, at(DAY), s), { to: 'retiring', at: at(30 * DAY) });
    assert.deepEqual(nextTransitionOf(retiring, keys, at(DAY), s), { to: 'retired', at: at(DAY + s.retireAfterMs) });
    assert.equal(nextTransitionOf(key('ES256', 'retired'), keys, at(DAY), s), undefined);
    // Overdue without a next key (a store from before next keys): one is created now and signs 24 h later.
    assert.deepEqual(nextTransitionOf(active, [active], at(60 * DAY), s), { to: 'retiring', at: at(61 * DAY) });
  });
});
