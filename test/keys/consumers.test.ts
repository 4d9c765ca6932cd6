import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { JwksConsumers } from '../../src/keys/consumers.ts';
import { TestClock } from '../support/clock.ts';
import { createTestDatabase, silentLogger, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';
import { adminEnv, adminToken, kidOf, only } from './helpers.ts';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** A JWKS fetch as consumer `name` (its User-Agent); every fetch in these tests names one. */
async function fetchAs(url: string, name: string): Promise<void> {
  const res = await fetch(`${url}/jwks`, { headers: { 'user-agent': name } });
  assert.equal(res.status, 200);
  await res.arrayBuffer();
}

async function admin(url: string, path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${url}/admin/v1${path}`, { headers: { authorization: `Bearer ${await adminToken(url)}` } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

interface NextView { kid: string; alg: string; role?: string; published_at: string; consumers?: { seen: number; ready: number } }
/** Next keys as GET /keys shows them (through the API while the admin token is fresh on the test clock). */
const nextKeys = async (server: TestServer, viaApi = false): Promise<NextView[]> =>
  (viaApi ? (await admin(server.url, '/keys')).body.items as NextView[] : await server.keyward.keyService.list()).filter((k) => k.role === 'next');
/** When the schedule activates the next `alg` key. */
const promotionOf = async (server: TestServer, alg: string) =>
  Date.parse((await server.keyward.keyService.list()).find((v) => v.alg === alg && v.role === 'next')!.next_transition_at!);

describe('consumer readiness: who has fetched the next key (three simulated consumers, injected clock)', () => {
  let db: TestDatabase;
  let server: TestServer;
  const clock = new TestClock();

  before(async () => {
    db = await createTestDatabase();
    server = await startServer(db, { ...adminEnv, KEYWARD_KEY_ROTATION_INTERVAL: '2h' }, { now: clock.now, timers: clock.timers });
    // The test runs the schedule itself (runDue) after moving the clock.
    await server.keyward.keyScheduler.stop();
  });
  after(async () => {
    await server?.stop();
    await db?.drop();
  });

  test('GET /keys shows consumers {seen, ready} for each next key; GET /keys/consumers lists those not ready; a consumer not seen for an interval no longer counts', async () => {
    clock.advance(MINUTE);
    for (const name of ['gateway-a', 'gateway-b', 'gateway-c']) await fetchAs(server.url, name);
    for (const next of await nextKeys(server, true)) assert.deepEqual(next.consumers, { seen: 3, ready: 3 }, 'all fetched after the first next keys were published');

    await server.keyward.keyService.rotate({ actor: 'test' });
    clock.advance(MINUTE);
    await fetchAs(server.url, 'gateway-a');
    const views = await nextKeys(server, true);
    assert.equal(views.length, 2);
    for (const next of views) assert.deepEqual(next.consumers, { seen: 3, ready: 1 });

    const report = await admin(server.url, '/keys/consumers?limit=10');
    assert.equal(report.status, 200);
    const items = report.body.items as { address: string; user_agent: string; last_fetch_at: string }[];
    assert.deepEqual(items.map((c) => c.user_agent).sort(), ['gateway-b', 'gateway-c']);
    assert.equal(report.body.total, 2);
    assert.equal(report.body.published_at, views[0]!.published_at);
    assert.ok(items.every((c) => c.address.includes('127.0.0.1') && Date.parse(c.last_fetch_at) <= Date.parse(views[0]!.published_at)), JSON.stringify(items));
    assert.equal((await admin(server.url, '/keys/consumers?limit=1')).body.items instanceof Array, true);
    assert.equal(((await admin(server.url, '/keys/consumers?limit=1')).body.items as unknown[]).length, 1);
    assert.equal((await admin(server.url, '/keys/consumers?limit=0')).status, 400);

    // b catches up. c is not seen again: once a next key is published (here by the schedule)
    // more than an interval after c's last fetch, c no longer counts.
    clock.advance(MINUTE);
    await fetchAs(server.url, 'gateway-b');
    for (const next of await nextKeys(server)) assert.deepEqual(next.consumers, { seen: 3, ready: 2 });
    clock.advance(2 * HOUR + 10 * MINUTE);
    await server.keyward.keyScheduler.runDue();
    clock.advance(MINUTE);
    await fetchAs(server.url, 'gateway-a');
    await fetchAs(server.url, 'gateway-b');
    for (const next of await nextKeys(server)) assert.deepEqual(next.consumers, { seen: 2, ready: 2 });
    assert.equal((await server.keyward.keyService.consumers(10)).total, 0);
  });

  test('every JWKS fetch reaches the store, in a batch', async () => {
    const count = async () => Number((await server.keyward.store.sql.query<{ n: string }>('SELECT count(*) AS n FROM jwks_consumers'))[0]!.n);
    const before = await count();
    await Promise.all(Array.from({ length: 20 }, (_, i) => fetchAs(server.url, `burst-${i}`)));
    await server.keyward.keyService.list();
    assert.equal(await count(), before + 20);
  });
});

describe('consumer records are bounded', () => {
  let db: TestDatabase;
  let server: TestServer;

  before(async () => {
    db = await createTestDatabase();
    server = await startServer(db, adminEnv);
  });
  after(async () => {
    await server?.stop();
    await db?.drop();
  });

  test('recording does no I/O: a thousand fetches are one INSERT when the batch is written', async () => {
    const statements: string[] = [];
    const sql = server.keyward.store.sql;
    const counting = { ...sql, query: ((text: string, params?: unknown[]) => {
      statements.push(text.trim().split(/\s+/)[0]!);
      return sql.query(text, params);
    }) as typeof sql.query };
    const consumers = new JwksConsumers({ sql: counting, logger: silentLogger(), now: () => new Date(), flushMs: 3_600_000 });
    consumers.start();
    for (let i = 0; i < 1000; i++) consumers.record('198.51.100.7', `agent-${i % 50}`);
    assert.deepEqual(statements, []);
    await consumers.stop();
    assert.deepEqual(statements.filter((s) => s === 'INSERT'), ['INSERT']);
  });

  test('only the newest N consumers are kept, in memory and in the store', async () => {
    const clock = new TestClock();
    const consumers = new JwksConsumers({ sql: server.keyward.store.sql, logger: silentLogger(), now: clock.now, max: 3 });
    for (let i = 0; i < 5; i++) {
      consumers.record('192.0.2.1', `agent-${i}`);
      clock.advance(1000);
    }
    await consumers.flush();
    const rows = await server.keyward.store.sql.query<{ user_agent: string }>("SELECT user_agent FROM jwks_consumers WHERE address = '192.0.2.1' ORDER BY user_agent");
    assert.deepEqual(rows.map((r) => r.user_agent), ['agent-2', 'agent-3', 'agent-4']);
    consumers.record('192.0.2.1', 'x'.repeat(10_000));
    await consumers.stop();
    const [long] = await server.keyward.store.sql.query<{ n: number }>("SELECT max(length(user_agent)) AS n FROM jwks_consumers");
    assert.equal(Number(long!.n), 256);
  });
});

describe('KEYWARD_KEY_ROTATION_WAIT_FOR_CONSUMERS: the scheduled rotation waits for consumers, at most the maximum delay', () => {
  let db: TestDatabase;
  let server: TestServer;
  const clock = new TestClock();

  before(async () => {
    db = await createTestDatabase();
    server = await startServer(db, {
      ...adminEnv, KEYWARD_KEY_ROTATION_INTERVAL: '2h', KEYWARD_KEY_ROTATION_WAIT_FOR_CONSUMERS: 'true', KEYWARD_KEY_ROTATION_MAX_DELAY: '1h',
    }, { now: clock.now, timers: clock.timers });
    await server.keyward.keyScheduler.stop();
  });
  after(async () => {
    await server?.stop();
    await db?.drop();
  });

  test('held while a recently seen consumer has not fetched the next key, logged with who holds it up; promoted once all are ready, or at the maximum delay', async () => {
    const runDue = () => server.keyward.keyScheduler.runDue();
    await fetchAs(server.url, 'slow-gateway');
    // A first rotation by hand publishes a fresh next key that slow-gateway has not fetched.
    await server.keyward.keyService.rotate({ alg: 'ES256' });
    const signer = (await only(server, 'ES256', 'active')).kid;
    const next = (await only(server, 'ES256', 'staged')).kid;
    clock.advance(MINUTE);
    await fetchAs(server.url, 'fast-gateway');
    clock.set(await promotionOf(server, 'ES256'));
    await runDue();
    assert.equal(kidOf(await adminToken(server.url)), signer, 'held: slow-gateway has not fetched since the next key was published');
    const held = server.logs.lines.filter((l) => l.includes('waits for JWKS consumers')).map((l) => JSON.parse(l) as { kid: string; waiting_for: string[]; seen: number; ready: number });
    assert.ok(held.some((l) => l.kid === next && l.waiting_for.some((w) => w.includes('slow-gateway')) && l.seen === 2 && l.ready === 1), server.logs.lines.filter((l) => /wait|held|JWKS/.test(l)).join('\n'));
    assert.ok((await server.keyward.keyScheduler.nextDueAt())!.getTime() > clock.ms, 'no busy loop while held');

    await fetchAs(server.url, 'slow-gateway');
    await runDue();
    assert.equal(kidOf(await adminToken(server.url)), next, 'promoted once every recent consumer is ready');

    // The next round: nobody fetches again; the rotation happens at the maximum delay.
    const next2 = (await only(server, 'ES256', 'staged')).kid;
    clock.set(await promotionOf(server, 'ES256'));
    const dueAt = clock.ms;
    await runDue();
    assert.equal(kidOf(await adminToken(server.url)), next, 'held again');
    clock.set(dueAt + HOUR - 1);
    await runDue();
    assert.equal(kidOf(await adminToken(server.url)), next);
    clock.set(dueAt + HOUR);
    await runDue();
    assert.equal(kidOf(await adminToken(server.url)), next2, 'the maximum delay ends the wait');
  });
});
