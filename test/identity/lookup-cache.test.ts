import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LookupCache } from '../../src/identity/lookup-cache.ts';
import { TestClock } from '../support/clock.ts';

/** A loader over a fixed table that counts its calls (the store is what the cache saves). */
function table(rows: Record<string, string>) {
  const calls: string[] = [];
  return {
    calls,
    load: async (key: string) => {
      calls.push(key);
      return rows[key] === undefined ? undefined : { value: rows[key] };
    },
  };
}

test('bounded: 5,000 distinct unknown keys leave at most `max` entries', async () => {
  const source = table({});
  const cache = new LookupCache(source.load, { max: 100, absentTtlMs: 60_000 });
  for (let i = 0; i < 5_000; i += 1) assert.equal(await cache.get(`unknown-${i}`), undefined);
  assert.ok(cache.stats().size <= 100, `size ${cache.stats().size}`);
  assert.equal(cache.stats().misses, 5_000);
});

test('a known key is loaded once and then served as a hit until invalidated', async () => {
  const source = table({ a: 'A' });
  const cache = new LookupCache(source.load, { max: 10, absentTtlMs: 1_000 });
  assert.deepEqual(await cache.get('a'), { value: 'A' });
  assert.deepEqual(await cache.get('a'), { value: 'A' });
  assert.deepEqual(source.calls, ['a']);
  cache.invalidate('a');
  await cache.get('a');
  assert.deepEqual(source.calls, ['a', 'a']);
  assert.deepEqual({ hits: cache.stats().hits, misses: cache.stats().misses }, { hits: 1, misses: 2 });
});

test('concurrent lookups of one key share one load', async () => {
  const source = table({ a: 'A' });
  const cache = new LookupCache(source.load, { max: 10, absentTtlMs: 1_000 });
  await Promise.all(Array.from({ length: 20 }, () => cache.get('a')));
  assert.deepEqual(source.calls, ['a']);
});

test('an absence is believed only for absentTtlMs, so a client registered later is found', async () => {
  const clock = new TestClock(1_000_000);
  const rows: Record<string, string> = {};
  const source = table(rows);
  const cache = new LookupCache(source.load, { max: 10, absentTtlMs: 5_000, now: () => clock.ms });
  assert.equal(await cache.get('late'), undefined);
  rows.late = 'here';
  clock.advance(4_000);
  assert.equal(await cache.get('late'), undefined, 'still believed absent within the TTL');
  clock.advance(1_001);
  assert.deepEqual(await cache.get('late'), { value: 'here' });
  assert.deepEqual(source.calls, ['late', 'late']);
});

test('a failed load is not cached', async () => {
  let fail = true;
  const cache = new LookupCache(async () => {
    if (fail) throw new Error('store away');
    return { value: 'ok' };
  }, { max: 10, absentTtlMs: 1_000 });
  await assert.rejects(cache.get('a'), /store away/);
  fail = false;
  assert.deepEqual(await cache.get('a'), { value: 'ok' });
});

test('an entry invalidated while its load is in flight is not stored from that load', async () => {
  let release!: () => void;
  let version = 1;
  const cache = new LookupCache(async () => {
    const seen = version;
    if (seen === 1) await new Promise<void>((resolve) => { release = resolve; });
    return { value: `v${seen}` };
  }, { max: 10, absentTtlMs: 1_000 });
  const first = cache.get('a');
  await new Promise((resolve) => setImmediate(resolve));
  version = 2;
  cache.invalidate('a');
  release();
  assert.deepEqual(await first, { value: 'v1' }, 'the caller in flight gets its answer');
  assert.deepEqual(await cache.get('a'), { value: 'v2' }, 'the next lookup loads again');
});

test('a flood of unknown keys evicts only other absences: a found entry stays a hit', async () => {
  const source = table({ known: 'K' });
  const cache = new LookupCache(source.load, { max: 100, absentTtlMs: 60_000 });
  assert.deepEqual(await cache.get('known'), { value: 'K' });
  for (let i = 0; i < 5_000; i += 1) assert.equal(await cache.get(`random-${i}`), undefined);
  assert.deepEqual(await cache.get('known'), { value: 'K' });
  assert.equal(source.calls.filter((key) => key === 'known').length, 1, 'loaded once, never evicted by the flood');
  assert.ok(cache.stats().size <= 101, `size ${cache.stats().size}`);
});

test('an absence loaded while its key is invalidated is not believed (a client registered mid-lookup is found at once)', async () => {
  let release!: () => void;
  const rows: Record<string, string> = {};
  const cache = new LookupCache(async (key) => {
    const seen = rows[key];
    await new Promise<void>((resolve) => { release = resolve; });
    return seen === undefined ? undefined : { value: seen };
  }, { max: 10, absentTtlMs: 60_000 });
  const first = cache.get('new');
  await new Promise((resolve) => setImmediate(resolve));
  rows.new = 'created';
  cache.invalidate('new');
  release();
  assert.equal(await first, undefined, 'the caller in flight gets its answer');
  const second = cache.get('new');
  await new Promise((resolve) => setImmediate(resolve));
  release();
  assert.deepEqual(await second, { value: 'created' });
});
