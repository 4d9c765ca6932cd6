/**
 * The cost of a federated client authentication (federated_jwt) relative to a client secret,
 * at the token endpoint, client credentials, same run:
 *
 *   npm run bench:federation                 # embedded PGlite in a temp dir
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench:federation
 *
 * - throughput (autocannon, 10 connections, 5 s): client_secret_basic vs federated_jwt with a
 *   Kubernetes-style token (no jti, so one token serves every request, as a pod reuses its
 *   projected token) and the issuer's JWKS warm in Keyward's cache;
 * - one request at a time (median of 40): client_secret_basic, federated_jwt warm, and
 *   federated_jwt cold: before each cold request the server drops its cached issuer keys, so
 *   the request fetches the issuer's discovery document and JWKS over loopback HTTP. Cold is
 *   measured with single requests because under load only the first request of each cache
 *   lifetime (Cache-Control max-age, 5 min by default) is cold.
 * Throughput is also given per CPU-second of the server process (/proc/<pid>/stat), the steadier
 * figure on a shared machine. Each figure is the median of 3 runs. The stand-in issuer runs in this process (it serves
 * two small JSON documents per cold request); Keyward runs in a child process so the load
 * generator does not share its event loop. All on one machine: absolute figures are a floor,
 * the ratios are the result.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { cpuSeconds, firstMessage, forkBench, optionalScratchDatabase, startKeyward, stopChild, upperMedian } from './support.ts';

const RUNS = 3;
const SECONDS = 5;
const CONNECTIONS = 10;
const SINGLES = 40;
const ORDERS = 'https://orders.internal';
const SUBJECT = 'system:serviceaccount:payments:invoicer';

interface Target {
  url: string;
  secretClient: { id: string; secret: string };
  federatedClient: string;
}

/** Child: Keyward with a secret client and a federated_jwt client trusting `issuer`. */
async function serve(issuer: string, databaseUrl: string | undefined, dataDir: string): Promise<void> {
  const { federatedCredentialCreate } = await import('../src/identity/federation/index.ts');
  const { keyward, url } = await startKeyward({
    KEYWARD_RATE_LIMIT: 'off', KEYWARD_DATA_DIR: path.join(dataDir, 'pgdata'), KEYWARD_KEK_FILE: path.join(dataDir, 'kek'),
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
  }, 'silent');
  await keyward.resources.ensure({ identifier: ORDERS, name: 'Orders', scopes: ['orders:read'], access_token_ttl: 300 });
  await keyward.roles.ensure({ name: 'orders-reader', permissions: ['orders:read'] });
  const secret = await keyward.clients.create({ client_name: 'secret', grant_types: ['client_credentials'], roles: ['orders-reader'], default_resource: ORDERS });
  const federated = await keyward.clients.create({
    client_name: 'federated', grant_types: ['client_credentials'], token_endpoint_auth_method: 'federated_jwt', roles: ['orders-reader'], default_resource: ORDERS,
  });
  await keyward.federation.credentials.create(federated.client.client_id, federatedCredentialCreate.parse({ name: 'cluster', issuer, subject: SUBJECT }));
  process.on('message', (message) => {
    if (message === 'clear') {
      keyward.federation.issuerKeys.clear();
      process.send!('cleared');
    }
  });
  const target: Target = { url, secretClient: { id: secret.client.client_id, secret: secret.client_secret! }, federatedClient: federated.client.client_id };
  process.send!(target);
}

interface Request {
  headers: Record<string, string>;
  body: string;
}

/** Load for SECONDS; `perCpuSecond` counts requests per CPU-second of the server (steadier than wall time on a shared machine). */
async function load(url: string, request: Request, pid: number): Promise<{ rps: number; perCpuSecond: number; p50: number; failed: number }> {
  const cpuBefore = await cpuSeconds(pid);
  const result = await autocannon({
    url: `${url}/token`, method: 'POST', connections: CONNECTIONS, duration: SECONDS,
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...request.headers }, body: request.body,
  });
  const cpu = (await cpuSeconds(pid)) - cpuBefore;
  return { rps: result.requests.average, perCpuSecond: result.requests.total / cpu, p50: result.latency.p50, failed: result.non2xx + result.errors };
}

async function singles(url: string, request: Request, before?: () => Promise<void>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < SINGLES; i++) {
    await before?.();
    const startedAt = performance.now();
    const res = await fetch(`${url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...request.headers }, body: request.body });
    if (res.status !== 200) throw new Error(`token endpoint answered ${res.status}: ${await res.text()}`);
    await res.arrayBuffer();
    times.push(performance.now() - startedAt);
  }
  return upperMedian(times);
}

async function main(): Promise<void> {
  // The external issuer: discovery + JWKS like a Kubernetes API server's service-account issuer.
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'cluster-1', alg: 'RS256', use: 'sig' };
  let issuerFetches = 0;
  const issuerServer = createServer((req, res) => {
    issuerFetches += 1;
    res.setHeader('content-type', 'application/json');
    if (req.url === '/.well-known/openid-configuration') return res.end(JSON.stringify({ issuer: issuerUrl, jwks_uri: `${issuerUrl}/openid/v1/jwks` }));
    res.setHeader('cache-control', 'max-age=300');
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((resolve) => issuerServer.listen(0, '127.0.0.1', resolve));
  const issuerUrl = `http://127.0.0.1:${(issuerServer.address() as AddressInfo).port}`;

  const database = await optionalScratchDatabase();
  let dir: string | undefined;
  let child: ChildProcess | undefined;
  try {
    dir = await mkdtemp(path.join(os.tmpdir(), 'keyward-bench-'));
    const server = forkBench(import.meta.url, ['serve'], { BENCH_ISSUER: issuerUrl, BENCH_DATA_DIR: dir, ...(database ? { BENCH_DATABASE_URL: database.url } : {}) });
    child = server;
    const target = await firstMessage<Target>(server, 'keyward server');
    const clear = async () => {
      server.send('clear');
      await once(server, 'message');
    };
    // A projected token lives an hour; the benchmark fits in its lifetime.
    const now = Math.floor(Date.now() / 1000);
    const assertion = await new SignJWT({
      'kubernetes.io': { namespace: 'payments', serviceaccount: { name: 'invoicer', uid: 'bench' } },
    }).setProtectedHeader({ alg: 'RS256', kid: 'cluster-1' }).setIssuer(issuerUrl).setSubject(SUBJECT).setAudience([target.url])
      .setIssuedAt(now).setNotBefore(now).setExpirationTime(now + 3600).sign(privateKey);
    const secret: Request = {
      headers: { authorization: `Basic ${Buffer.from(`${target.secretClient.id}:${target.secretClient.secret}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'orders:read' }).toString(),
    };
    const federated: Request = {
      headers: {},
      body: new URLSearchParams({
        grant_type: 'client_credentials', scope: 'orders:read', client_id: target.federatedClient,
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion,
      }).toString(),
    };
    console.log(`store: ${database ? 'PostgreSQL' : 'PGlite'}; ${os.cpus().length} CPUs; load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    const pid = server.pid!;
    await load(target.url, secret, pid); // warm-up (JIT, pools)
    await load(target.url, federated, pid);
    const rows = { secretRps: [] as number[], federatedRps: [] as number[], secretCpu: [] as number[], federatedCpu: [] as number[], secretOne: [] as number[], warmOne: [] as number[], coldOne: [] as number[] };
    for (let run = 1; run <= RUNS; run++) {
      const s = await load(target.url, secret, pid);
      const f = await load(target.url, federated, pid);
      const fetchesBefore = issuerFetches;
      const secretOne = await singles(target.url, secret);
      const warmOne = await singles(target.url, federated);
      const coldOne = await singles(target.url, federated, clear);
      if (issuerFetches - fetchesBefore !== 2 * SINGLES) throw new Error(`expected ${2 * SINGLES} issuer fetches in the cold loop, saw ${issuerFetches - fetchesBefore}`);
      rows.secretRps.push(s.rps); rows.federatedRps.push(f.rps);
      rows.secretCpu.push(s.perCpuSecond); rows.federatedCpu.push(f.perCpuSecond);
      rows.secretOne.push(secretOne); rows.warmOne.push(warmOne); rows.coldOne.push(coldOne);
      console.log(`run ${run}: client_secret_basic ${s.rps.toFixed(0)} req/s, ${s.perCpuSecond.toFixed(0)} per CPU-s (p50 ${s.p50} ms${s.failed ? `, ${s.failed} failed` : ''}); `
        + `federated_jwt warm ${f.rps.toFixed(0)} req/s, ${f.perCpuSecond.toFixed(0)} per CPU-s (p50 ${f.p50} ms${f.failed ? `, ${f.failed} failed` : ''}); `
        + `one request: secret ${secretOne.toFixed(2)} ms, federated warm ${warmOne.toFixed(2)} ms, federated cold ${coldOne.toFixed(2)} ms`);
    }
    const m = Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, upperMedian(v)])) as Record<keyof typeof rows, number>;
    console.log(`\nmedians of ${RUNS} runs (${CONNECTIONS} connections, ${SECONDS} s; single requests: median of ${SINGLES}):`);
    console.log(`| | client_secret_basic | federated_jwt warm | federated_jwt cold |`);
    console.log(`|---|---:|---:|---:|`);
    console.log(`| throughput req/s | ${m.secretRps.toFixed(0)} | ${m.federatedRps.toFixed(0)} (${(m.federatedRps / m.secretRps).toFixed(2)}×) | – |`);
    console.log(`| requests per server CPU-second | ${m.secretCpu.toFixed(0)} | ${m.federatedCpu.toFixed(0)} (${(m.federatedCpu / m.secretCpu).toFixed(2)}×) | – |`);
    console.log(`| one request ms | ${m.secretOne.toFixed(2)} | ${m.warmOne.toFixed(2)} (${(m.warmOne / m.secretOne).toFixed(2)}×) | ${m.coldOne.toFixed(2)} (${(m.coldOne / m.secretOne).toFixed(2)}×) |`);
  } finally {
    if (child) await stopChild(child);
    issuerServer.close();
    await database?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'serve') {
  await serve(process.env.BENCH_ISSUER!, process.env.BENCH_DATABASE_URL, process.env.BENCH_DATA_DIR!);
} else {
  await main();
}
