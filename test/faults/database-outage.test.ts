import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  admin, adminToken, ADMIN_ID, ADMIN_SECRET, auditedJtis, call, clientCredentials, createService, FaultCluster, Instance, jtiOf, sleep, until,
  type Answer,
} from './support.ts';

/**
 * Issue 11, items 1-4: a database stopped under load and started again. The instance stays
 * alive, answers every request within 3 s (503 temporarily_unavailable or problem+json for
 * what needs the store, tokens for a warm client until the cache staleness limit), /readyz
 * follows the outage within 5 s each way, it serves everything again within 15 s of the
 * database's return, and no audit event is lost. Three outages; the median recovery is printed.
 */
const STALENESS_S = 6;
const OUTAGE_MS = 9_000;
const CYCLES = 3;
const LOAD_CONCURRENCY = 4;
/** Upper bound of requests per outage, whatever the timing. */
const MAX_LOAD_REQUESTS = 1_500;

let cluster: FaultCluster;
let database: string;
let instance: Instance;

describe('database stopped under load and started again', () => {
  before(async () => {
    cluster = await FaultCluster.create();
    database = await cluster.createDatabase();
    instance = await Instance.start(cluster.url(database), { KEYWARD_CACHE_MAX_STALENESS: `${STALENESS_S}s` });
  });
  after(async () => {
    await instance?.stop();
    await FaultCluster.drop();
  });

  test('instance alive, 503 within 3 s during, warm client served until the staleness limit, recovered within 15 s, zero audit events lost', async () => {
    const recoveries: number[] = [];
    const issued: string[] = [];
    const coldToken = await adminToken(instance);
    for (let cycle = 1; cycle <= CYCLES; cycle++) {
      // Warm: the bootstrap admin client just got a token. Cold: a client never used on this instance.
      const cold = await createService(instance, coldToken, `cold ${cycle}`);
      const warm = await clientCredentials(instance, ADMIN_ID, ADMIN_SECRET);
      assert.equal(warm.status, 200);
      issued.push(warm.json!.access_token as string);

      // The LISTEN connection is lost somewhere between these two instants.
      const stoppingAt = performance.now();
      await cluster.stop();
      const stoppedAt = performance.now();

      // Bounded load on the warm path for the whole outage.
      const answers: (Answer & { at: number })[] = [];
      let sent = 0;
      const load = Promise.all(Array.from({ length: LOAD_CONCURRENCY }, async () => {
        while (performance.now() - stoppedAt < OUTAGE_MS && sent < MAX_LOAD_REQUESTS) {
          sent++;
          const at = performance.now() - stoppingAt;
          const answer = await clientCredentials(instance, ADMIN_ID, ADMIN_SECRET, 10_000);
          answers.push({ ...answer, at });
          if (answer.status === 200) issued.push(answer.json!.access_token as string);
          await sleep(20);
        }
      }));

      const coldAnswer = await clientCredentials(instance, cold.id, cold.secret, 10_000);
      assert.equal(coldAnswer.status, 503, JSON.stringify(coldAnswer));
      assert.deepEqual(coldAnswer.json?.error, 'temporarily_unavailable');
      assert.ok(coldAnswer.ms < 3_000, `cold client answered in ${coldAnswer.ms} ms`);

      const adminAnswer = await admin(instance, coldToken, 'GET', '/clients', undefined, 10_000);
      assert.equal(adminAnswer.status, 503, JSON.stringify(adminAnswer));
      assert.match(adminAnswer.contentType, /application\/problem\+json/);
      assert.equal(adminAnswer.json?.status, 503);
      assert.ok(adminAnswer.ms < 3_000, `admin API answered in ${adminAnswer.ms} ms`);

      await until('/readyz 503', async () => (await call(`${instance.url}/readyz`, {}, 5_000)).status === 503, 5_000);
      assert.ok(performance.now() - stoppedAt < 5_500, '/readyz turned 503 within 5 s of the outage');
      assert.equal((await call(`${instance.url}/healthz`)).status, 200);
      for (const path of ['/jwks', '/.well-known/openid-configuration']) {
        assert.equal((await call(`${instance.url}${path}`)).status, 200, `${path} keeps answering`);
      }

      await load;
      assert.ok(instance.alive, instance.output);
      for (const answer of answers) {
        assert.ok(answer.status === 200 || answer.status === 503, `during the outage: ${JSON.stringify(answer)}`);
        assert.ok(answer.ms < 3_000, `answered in ${answer.ms} ms`);
        if (answer.status === 503) assert.equal(answer.json?.error, 'temporarily_unavailable');
      }
      // Warm client: served while its cache entry is within the staleness limit, refused after it.
      const early = answers.filter((a) => a.at < (STALENESS_S - 1) * 1000);
      const late = answers.filter((a) => a.at > (stoppedAt - stoppingAt) + (STALENESS_S + 1) * 1000);
      assert.ok(early.length > 0 && early.every((a) => a.status === 200), `warm client served during the first ${STALENESS_S - 1} s: ${JSON.stringify(early.filter((a) => a.status !== 200).slice(0, 3))}\n${instance.output.slice(-3000)}`);
      assert.ok(late.length > 0 && late.every((a) => a.status === 503), `warm client refused after the ${STALENESS_S} s staleness limit`);

      await cluster.start();
      const startedAt = performance.now();
      let readyAt = 0;
      let seen = '';
      await until('everything served again', async () => {
        const ready = await call(`${instance.url}/readyz`, {}, 3_000);
        seen = `readyz ${ready.status} ${JSON.stringify(ready.json)}`;
        if (ready.status !== 200) return false;
        readyAt ||= performance.now() - startedAt;
        const [w, c, a] = await Promise.all([
          clientCredentials(instance, ADMIN_ID, ADMIN_SECRET, 3_000),
          clientCredentials(instance, cold.id, cold.secret, 3_000),
          admin(instance, coldToken, 'GET', '/clients', undefined, 3_000),
        ]);
        if (w.status === 200) issued.push(w.json!.access_token as string);
        if (c.status === 200) issued.push(c.json!.access_token as string);
        seen = JSON.stringify({ w, c, a });
        return w.status === 200 && c.status === 200 && a.status === 200;
      }, 15_000).catch((error: Error) => {
        throw new Error(`${error.message}; last seen: ${seen}\n${instance.output.slice(-2000)}`);
      });
      const recovery = performance.now() - startedAt;
      recoveries.push(recovery);
      assert.ok(readyAt < 5_000, `/readyz back to 200 ${readyAt} ms after the database`);
      process.stderr.write(`outage ${cycle}: ${answers.length} requests during it, /readyz 200 after ${Math.round(readyAt)} ms, everything served after ${Math.round(recovery)} ms\n`);
    }
    assert.ok(instance.alive, instance.output);

    // Every token issued (before, during and after the outages) has its audit event in the table.
    await until('the audit buffer to be written', async () => {
      const stored = await auditedJtis(cluster, database);
      return issued.every((token) => stored.has(jtiOf(token)));
    }, 10_000);
    const sorted = [...recoveries].sort((a, b) => a - b);
    process.stderr.write(`recovery after the database returns: median ${Math.round(sorted[1]!)} ms of ${sorted.map(Math.round).join(', ')} ms; ${issued.length} audited tokens\n`);
  });
});
