import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  jwksMaxAgeSeconds, lifecycleSettings, managedAlgs, nextTransitionOf, plan, planEmergency, planRotation,
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
const initial = (): LifecycleKey[] => [key('ES256', 'active', { activatedAt: T0 }), key('RS256', 'active', { activatedAt: T0 })];

/** Applies transitions as KeyStore would (the same timestamps), for simulation. */
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

describe('settings', () => {
  test('JWKS max-age is 1/8 of the rotation interval, at most 1 h, at least 1 s', () => {
    assert.equal(jwksMaxAgeSeconds(30 * DAY), 3600);
    assert.equal(jwksMaxAgeSeconds(90_000), 11);
    assert.equal(jwksMaxAgeSeconds(4_000), 1);
  });

  test('the staging lead is twice the JWKS max-age; retirement waits for the longest token plus 5 min', () => {
    assert.equal(settings.stagingLeadMs, 2 * HOUR);
    assert.equal(settings.retireAfterMs, HOUR + 5 * 60_000);
    const short = lifecycleSettings({ rotationIntervalMs: 90_000, longestTokenTtlSeconds: 300, algs: ['RS256'] });
    assert.equal(short.stagingLeadMs, 22_000);
    assert.ok(short.stagingLeadMs < short.rotationIntervalMs);
  });
});

describe('scheduled transitions', () => {
  test('nothing is due until the successor must be staged, one lead before the interval ends', () => {
    const keys = initial();
    const p = plan(keys, at(DAY), settings);
    assert.deepEqual(p.due, []);
    assert.deepEqual(p.nextAt, at(30 * DAY - 2 * HOUR));
  });

  test('at the staging time a successor is staged for each algorithm', () => {
    const p = plan(initial(), at(30 * DAY - 2 * HOUR), settings);
    assert.deepEqual(p.due, [{ kind: 'create', alg: 'ES256', to: 'staged' }, { kind: 'create', alg: 'RS256', to: 'staged' }]);
  });

  test('a staged key is not promoted before it has been published for the lead, even when the active key is overdue', () => {
    // A restart after 90 days of downtime: the successor is staged now, so it may sign only after the lead.
    let keys = initial();
    const late = at(90 * DAY);
    keys = apply(keys, plan(keys, late, settings).due, late);
    const p = plan(keys, at(90 * DAY + 2 * HOUR - 1), settings);
    assert.deepEqual(p.due, []);
    assert.deepEqual(p.nextAt, at(90 * DAY + 2 * HOUR));
  });

  test('promotion activates the successor before the old key starts retiring (never no signing key)', () => {
    const keys = [key('ES256', 'active', { activatedAt: T0 }), key('ES256', 'staged', { createdAt: at(DAY) })];
    const p = plan(keys, at(DAY + 2 * HOUR), { ...settings, algs: ['ES256'] });
    assert.deepEqual(p.due.map((t) => t.kind === 'move' && [t.kid, t.to]), [[keys[1]!.kid, 'active'], [keys[0]!.kid, 'retiring']]);
  });

  test('a retiring key is retired once every token it signed has expired', () => {
    const keys = [key('RS256', 'active', { activatedAt: at(DAY) }), key('RS256', 'retiring', { activatedAt: T0, retiringAt: at(DAY) })];
    const s = { ...settings, algs: ['RS256'] as SigningAlg[] };
    assert.deepEqual(plan(keys, at(DAY + settings.retireAfterMs - 1), s).due, []);
    assert.deepEqual(plan(keys, at(DAY + settings.retireAfterMs), s).due, [{ kind: 'move', kid: keys[1]!.kid, alg: 'RS256', from: 'retiring', to: 'retired' }]);
  });

  test('an algorithm without an active key gets its staged key, or else a new one, at once', () => {
    const staged = key('ES256', 'staged', { createdAt: T0 });
    assert.deepEqual(plan([staged], T0, { ...settings, algs: ['ES256'] }).due, [{ kind: 'move', kid: staged.kid, alg: 'ES256', from: 'staged', to: 'active' }]);
    assert.deepEqual(plan([], T0, { ...settings, algs: ['EdDSA'] }).due, [{ kind: 'create', alg: 'EdDSA', to: 'active' }]);
  });

  test('keys of an algorithm no longer configured keep rotating rather than vanish', () => {
    const keys = [key('EdDSA', 'active', { activatedAt: T0 })];
    assert.deepEqual(managedAlgs(keys, settings), ['ES256', 'RS256', 'EdDSA']);
  });

  test('over ten intervals: always one signing key per algorithm, every key published for the lead before signing, retired only after the longest token', () => {
    let keys = initial();
    let now = T0;
    for (let step = 0; step < 200 && now < at(300 * DAY); step++) {
      const { nextAt } = plan(keys, now, settings);
      now = nextAt!;
      const { due } = plan(keys, now, settings);
      assert.ok(due.length > 0, 'nextAt must point at due work');
      keys = apply(keys, due, now);
      for (const alg of ['ES256', 'RS256'] as const) assert.equal(activeOf(keys, alg).length, 1);
    }
    for (const k of keys.filter((x) => x.activatedAt && x.activatedAt > T0)) {
      assert.ok(k.activatedAt!.getTime() - k.createdAt.getTime() >= settings.stagingLeadMs, `${k.kid} signed before the lead`);
    }
    for (const k of keys.filter((x) => x.state === 'retired')) {
      assert.ok(k.retiredAt!.getTime() - k.retiringAt!.getTime() >= settings.retireAfterMs);
    }
    // A rotation at the end of every interval exactly (the scheduler woke on time).
    const activations = keys.filter((k) => k.alg === 'ES256' && k.activatedAt! > T0).map((k) => k.activatedAt!.getTime()).sort((a, b) => a - b);
    assert.deepEqual(activations, Array.from({ length: 10 }, (_, i) => at((i + 1) * 30 * DAY).getTime()));
    // The JWKS holds at most: active, staged and one retiring key per algorithm.
    assert.ok(keys.filter((k) => k.state !== 'retired').length <= 6);
  });

  test('property: from any reachable state and any wake-up times, no key signs before being published for the lead', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 1, max: 40 * DAY }), { minLength: 1, maxLength: 30 }), (gaps) => {
      let keys = initial();
      let now = T0;
      for (const gap of gaps) {
        now = new Date(now.getTime() + gap);
        keys = apply(keys, plan(keys, now, settings).due, now);
        for (const alg of ['ES256', 'RS256'] as const) if (activeOf(keys, alg).length !== 1) return false;
      }
      return keys.every((k) => !k.activatedAt || k.activatedAt.getTime() === T0.getTime() || k.activatedAt.getTime() - k.createdAt.getTime() >= settings.stagingLeadMs)
        && keys.every((k) => k.state !== 'retired' || k.retiredAt!.getTime() - k.retiringAt!.getTime() >= settings.retireAfterMs);
    }));
  });
});

describe('manual and emergency rotation', () => {
  test('a manual rotation stages a successor now; repeating it while the successor is young changes nothing', () => {
    let keys = initial();
    const first = planRotation(keys, at(DAY), settings, ['ES256']);
    assert.deepEqual(first, [{ kind: 'create', alg: 'ES256', to: 'staged' }]);
    keys = apply(keys, first, at(DAY));
    assert.deepEqual(planRotation(keys, at(DAY + HOUR), settings, ['ES256']), []);
    // The scheduler promotes it after the lead, not at the end of the original interval.
    assert.deepEqual(plan(keys, at(DAY + HOUR), settings).nextAt, at(DAY + 2 * HOUR));
  });

  test('a manual rotation promotes a successor whose lead has passed', () => {
    const keys = apply(initial(), planRotation(initial(), at(DAY), settings, ['RS256']), at(DAY));
    const due = planRotation(keys, at(DAY + 2 * HOUR), settings, ['RS256']);
    assert.deepEqual(due.map((t) => t.kind === 'move' && t.to), ['active', 'retiring']);
  });

  test('an emergency rotation retires the active key at once and activates the staged successor, or a new key', () => {
    const active = key('ES256', 'active', { activatedAt: T0 });
    const staged = key('ES256', 'staged', { createdAt: at(DAY) });
    assert.deepEqual(planEmergency([active, staged], ['ES256']), [
      { kind: 'move', kid: staged.kid, alg: 'ES256', from: 'staged', to: 'active' },
      { kind: 'move', kid: active.kid, alg: 'ES256', from: 'active', to: 'retired' },
    ]);
    assert.deepEqual(planEmergency([active], ['ES256']), [
      { kind: 'create', alg: 'ES256', to: 'active' },
      { kind: 'move', kid: active.kid, alg: 'ES256', from: 'active', to: 'retired' },
    ]);
  });
});

describe('next transition of each key (for display)', () => {
  test('each state shows where it goes next and when', () => {
    const s: LifecycleSettings = { ...settings, algs: ['ES256'] };
    const active = key('ES256', 'active', { activatedAt: T0 });
    assert.deepEqual(nextTransitionOf(active, [active], at(DAY), s), { to: 'retiring', at: at(30 * DAY) });
    const staged = key('ES256', 'staged', { createdAt: at(DAY) });
    const retiring = key('ES256', 'retiring', { retiringAt: at(DAY) });
    const keys = [active, staged, retiring];
    assert.deepEqual(nextTransitionOf(staged, keys, at(DAY), s), { to: 'active', at: at(DAY + 2 * HOUR) });
    assert.deepEqual(nextTransitionOf(active, keys, at(DAY), s), { to: 'retiring', at: at(DAY + 2 * HOUR) });
    assert.deepEqual(nextTransitionOf(retiring, keys, at(DAY), s), { to: 'retired', at: at(DAY + s.retireAfterMs) });
    assert.equal(nextTransitionOf(key('ES256', 'retired'), keys, at(DAY), s), undefined);
    // Overdue (after downtime): the successor has yet to be staged, so no earlier than now + lead.
    assert.deepEqual(nextTransitionOf(active, [active], at(60 * DAY), s), { to: 'retiring', at: at(60 * DAY + 2 * HOUR) });
  });
});
