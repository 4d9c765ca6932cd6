import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../support/harness.ts';
import { startProcess, type KeywardProcess } from './child.ts';

/**
 * Issue 11 §6: a flood of client_credentials requests with random, never-registered client ids
 * (measured before the fix: +574 MiB RSS over 72,000 requests, growing ≈ 8 KB per id, and one
 * audit row each). Every answer must be 401, RSS after 40,000 requests within 100 MiB of RSS
 * before them, and the audit rows bounded.
 */
const WARM_UP = 2_000;
const FLOOD = 40_000;
const CONCURRENCY = 16;
const LIMIT_MIB = 100;
/** Below the flood's 42,000 ids, so that the flood overflows the client cache's absences and their bound shows. */
const CLIENT_CACHE_SIZE = 10_000;

const postgres = Boolean(process.env.DATABASE_URL);
let db: TestDatabase;
let keyward: KeywardProcess | undefined;

before(async () => {
  if (!postgres) return;
  db = await createTestDatabase();
  // The per-IP rate limit would answer most of a one-address flood with 429: off, to measure the worst case.
  keyward = await startProcess(db, { KEYWARD_RATE_LIMIT: 'off', KEYWARD_CLIENT_CACHE_SIZE: String(CLIENT_CACHE_SIZE) });
});
after(async () => {
  await keyward?.stop();
  await db?.drop();
});

/** `count` token requests, each with a fresh random client id, `CONCURRENCY` at a time; the statuses seen. */
async function flood(base: string, count: number): Promise<Map<number, number>> {
  const statuses = new Map<number, number>();
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < count) {
      next += 1;
      const res = await fetch(`${base}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: randomBytes(16).toString('base64url'), client_secret: 'not-a-secret' }),
      });
      await res.arrayBuffer();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    }
  }));
  return statuses;
}

test('issue 11 §6: a random-client-id flood of 40,000 requests answers 401 each, RSS levels off within 100 MiB, audit rows stay bounded',
  { skip: postgres ? false : 'needs PostgreSQL (DATABASE_URL): the flood is measured against the production store' }, async (t) => {
    const { base } = keyward!;
    assert.deepEqual([...(await flood(base, WARM_UP))], [[401, WARM_UP]]);
    const before = await keyward!.rssMiB();
    const samples: number[] = [];
    const started = Date.now();
    const statuses = new Map<number, number>();
    for (let quarter = 0; quarter < 4; quarter += 1) {
      for (const [status, n] of await flood(base, FLOOD / 4)) statuses.set(status, (statuses.get(status) ?? 0) + n);
      samples.push(await keyward!.rssMiB());
    }
    const seconds = (Date.now() - started) / 1000;
    const after = samples.at(-1)!;
    t.diagnostic(`flood: ${FLOOD} requests in ${seconds.toFixed(1)} s (${Math.round(FLOOD / seconds)}/s); VmRSS before ${before.toFixed(1)} MiB, after each 10,000: ${samples.map((s) => s.toFixed(1)).join(', ')} MiB; growth ${(after - before).toFixed(1)} MiB`);
    process.stderr.write(`# flood: VmRSS before ${before.toFixed(1)} MiB, after ${FLOOD} requests ${after.toFixed(1)} MiB (samples ${samples.map((s) => s.toFixed(1)).join(', ')}), ${Math.round(FLOOD / seconds)} req/s\n`);
    assert.deepEqual([...statuses], [[401, FLOOD]], 'every answer is 401');
    assert.ok(after - before < LIMIT_MIB, `RSS grew ${(after - before).toFixed(1)} MiB (before ${before.toFixed(1)}, after ${after.toFixed(1)})`);

    // The audit trail: one row per address per minute (and its summary), not one per request.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ n: string }>("SELECT count(*) AS n FROM audit_events WHERE type = 'token.issued' AND outcome = 'failure'");
      const auditRows = Number(rows[0]!.n);
      process.stderr.write(`# flood: ${auditRows} audit rows for ${WARM_UP + FLOOD} failed client authentications\n`);
      assert.ok(auditRows <= 2 * Math.ceil(seconds / 60 + 2), `audit rows ${auditRows}`);
    } finally {
      await client.end();
    }
    const metrics = await (await fetch(`${base}/metrics`)).text();
    const entries = Number(/keyward_cache_entries\{cache="clients"\} (\d+)/.exec(metrics)?.[1]);
    // Found records and believed absences, each in an LRU of the cache's size (identity/lookup-cache.ts).
    assert.ok(entries > 0 && entries <= 2 * CLIENT_CACHE_SIZE, `client cache entries ${entries}`);
  });
