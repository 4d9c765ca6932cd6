/**
 * Server memory under a long run of client-credentials tokens (issue 13 §2: RSS after 200k and
 * 1M tokens, no growth that does not level off). Keyward runs in a child process on PostgreSQL
 * (a scratch database), production-like (roles, audit, caches on, LOG_LEVEL=info to /dev/null,
 * rate limits off); autocannon (10 connections) asks for BENCH_TOKENS tokens (default 1,000,000)
 * in steps of BENCH_STEP (100,000), and VmRSS of the server is sampled after each step.
 *
 *   npm run bench:memory                         # DATABASE_URL defaults to postgres://postgres@127.0.0.1:5432/postgres
 *   BENCH_TOKENS=200000 npm run bench:memory    (BENCH_STEP sets the sampling step)
 */
import os from 'node:os';
import autocannon from 'autocannon';
import { defaultScratchDatabase, firstMessage, forkBench, rssMiB, startKeyward, stopChild } from './support.ts';

const TOKENS = Number(process.env.BENCH_TOKENS ?? 1_000_000);
const STEP = Number(process.env.BENCH_STEP ?? 100_000);
const RESOURCE = 'https://orders.bench';

interface Target {
  url: string;
  pid: number;
  id: string;
  secret: string;
}

/** Child: Keyward on the given database, an ES256 API, a role and one service client. */
async function serve(databaseUrl: string): Promise<Target> {
  const { keyward, url } = await startKeyward({
    DATABASE_URL: databaseUrl, KEYWARD_RATE_LIMIT: 'off', KEYWARD_KEK_FILE: `${os.tmpdir()}/keyward-bench-memory-kek`,
  }, 'info');
  await keyward.roles.ensure({ name: 'orders-reader', permissions: ['orders:read'] });
  await keyward.resources.ensure({ identifier: RESOURCE, scopes: ['orders:read'], access_token_ttl: 300, signing_alg: 'ES256' });
  const { client, client_secret } = await keyward.clients.create({ client_name: 'bench', grant_types: ['client_credentials'], roles: ['orders-reader'] });
  return { url, pid: process.pid, id: client.client_id, secret: client_secret! };
}

async function main(): Promise<void> {
  const database = await defaultScratchDatabase();
  const child = forkBench(import.meta.url, ['serve'], { BENCH_DATABASE_URL: database.url });
  try {
    const target = await firstMessage<Target>(child, 'keyward server');
    console.log(`${os.cpus().length} cores, node ${process.version}, load average ${os.loadavg()[0]!.toFixed(1)}; ${TOKENS.toLocaleString('en-US')} tokens (ES256 JWT, client credentials, 10 connections), PostgreSQL`);
    console.log(`tokens        RSS MiB   tokens/s`);
    console.log(`${'0'.padStart(9)}  ${(await rssMiB(target.pid)).toFixed(0).padStart(8)}`);
    const authorization = `Basic ${Buffer.from(`${target.id}:${target.secret}`).toString('base64')}`;
    let issued = 0;
    const samples: number[] = [];
    while (issued < TOKENS) {
      const amount = Math.min(STEP, TOKENS - issued);
      const result = await autocannon({
        url: `${target.url}/token`, method: 'POST', connections: 10, amount,
        headers: { authorization, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource: RESOURCE, scope: 'orders:read' }).toString(),
      });
      issued += result['2xx'];
      if (result.non2xx || result.errors) console.log(`  ${result.non2xx} non-2xx, ${result.errors} errors in this step`);
      const rss = await rssMiB(target.pid);
      samples.push(rss);
      console.log(`${issued.toLocaleString('en-US').padStart(9)}  ${rss.toFixed(0).padStart(8)}  ${Math.round(result.requests.average).toString().padStart(9)}`);
    }
    const tail = samples.slice(-Math.max(2, Math.floor(samples.length / 2)));
    console.log(`second half of the run: RSS ${Math.min(...tail).toFixed(0)}–${Math.max(...tail).toFixed(0)} MiB`);
  } finally {
    await stopChild(child);
    await database.drop();
  }
}

if (process.argv[2] === 'serve') {
  process.send!(await serve(process.env.BENCH_DATABASE_URL!));
} else {
  await main();
}
