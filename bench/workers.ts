/**
 * KEYWARD_WORKERS (issue 13 §4): client-credentials tokens/s (ES256 JWT access tokens, 50
 * connections, wrk on the same machine) of Keyward with KEYWARD_WORKERS=1 against
 * KEYWARD_WORKERS=2, on PostgreSQL. Both deployments are real processes (`node dist/main.js`
 * after `npm run build`, as production runs; BENCH_RUNTIME=src: `node --import tsx src/main.ts`) on one scratch database and run side by side; wrk loads one, then the other,
 * the order swapped every run; medians of RUNS. Prints both, the factor, and the server CPU
 * (utime+stime of the primary and all its workers, from /proc).
 *
 *   npm run bench:workers          # DATABASE_URL defaults to postgres://postgres@127.0.0.1:5432/postgres
 *   RUNS=5 RUN_SECONDS=10 CONNECTIONS=50 WORKERS=2 npm run bench:workers
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { addressInUse, onFreshPort } from '../test/support/net.ts';
import { BENCH_KEK, buildRuntime, CLOCK_TICKS, cpuTicksOfAll, defaultScratchDatabase, median, processTree, stopChild } from './support.ts';

const RUNS = Number(process.env.RUNS ?? 3);
const RUN_SECONDS = Number(process.env.RUN_SECONDS ?? 5);
const WARMUP_SECONDS = Number(process.env.WARMUP_SECONDS ?? 3);
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 50);
const WORKERS = Number(process.env.WORKERS ?? 2);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ADMIN_ID = 'bench-admin';
const ADMIN_SECRET = randomBytes(32).toString('base64url');
const RESOURCE = 'https://orders.bench';

interface Server {
  workers: number;
  url: string;
  child: ChildProcess;
}

const WRK_SCRIPT = `
local body, auth
function init(args)
  local f = assert(io.open(args[1]))
  auth = f:read("*l"); body = f:read("*l")
  f:close()
end
function request()
  return wrk.format("POST", "/token", { ["Authorization"] = auth, ["Content-Type"] = "application/x-www-form-urlencoded" }, body)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK_JSON {"requests":%d,"duration_us":%d,"status_errors":%d,"socket_errors":%d,"p50_us":%d,"p99_us":%d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
`;

async function start(workers: number, databaseUrl: string, dir: string): Promise<Server> {
  return onFreshPort(async (port) => {
    const url = `http://127.0.0.1:${port}`;
    let output = '';
    const child = spawn(process.execPath, runtime === 'dist' ? ['dist/main.js'] : ['--import', 'tsx', 'src/main.ts'], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PORT: String(port), HOST: '127.0.0.1', ISSUER: url,
        DATABASE_URL: databaseUrl, KEYWARD_KEK: BENCH_KEK, KEYWARD_KEK_FILE: path.join(dir, 'kek'), KEYWARD_WORKERS: String(workers),
        KEYWARD_RATE_LIMIT: 'off', LOG_LEVEL: 'info',
        KEYWARD_BOOTSTRAP_ADMIN_CLIENT_ID: ADMIN_ID, KEYWARD_BOOTSTRAP_ADMIN_CLIENT_SECRET: ADMIN_SECRET,
      },
      // Production logging: info lines, to /dev/null here; stderr kept for error reports.
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr!.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-5000)));
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (child.exitCode !== null) throw /EADDRINUSE/.test(output) ? addressInUse(port) : new Error(`keyward exited: ${output}`);
      // Every worker must be up: readiness from as many fresh connections as there are workers, twice.
      const ready = await Promise.all(Array.from({ length: 2 * workers }, () =>
        fetch(`${url}/readyz`, { headers: { connection: 'close' } }).then((r) => r.status === 200, () => false)));
      if (ready.every(Boolean)) break;
      if (Date.now() > deadline) throw new Error(`keyward not ready: ${output}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    return { workers, url, child };
  });
}

interface Sample {
  rps: number;
  p50: number;
  p99: number;
  cpuSeconds: number;
  failures: number;
}

async function wrk(server: Server, scratch: string, seconds: number): Promise<Sample> {
  // The primary and all its workers.
  const pids = [...(await processTree(server.child.pid!)).keys()];
  const before = await cpuTicksOfAll(pids);
  const child = spawn('wrk', ['-t2', `-c${CONNECTIONS}`, `-d${seconds}s`, '--timeout', '10s', '-s', path.join(scratch, 'bench.lua'), `${server.url}/token`, '--', path.join(scratch, 'spec')], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  const cpuSeconds = ((await cpuTicksOfAll(pids)) - before) / CLOCK_TICKS;
  const line = /WRK_JSON (\{.*\})/.exec(out)?.[1];
  if (code !== 0 || !line) throw new Error(`wrk failed (exit ${String(code)}):\n${out}`);
  const r = JSON.parse(line) as { requests: number; duration_us: number; status_errors: number; socket_errors: number; p50_us: number; p99_us: number };
  return { rps: (r.requests - r.status_errors) / (r.duration_us / 1e6), p50: r.p50_us / 1000, p99: r.p99_us / 1000, cpuSeconds, failures: r.status_errors + r.socket_errors };
}

async function json(res: Response): Promise<Record<string, unknown>> {
  const body = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`${res.status} ${JSON.stringify(body)}`);
  return body;
}

const runtime = buildRuntime();

async function main(): Promise<void> {
  const database = await defaultScratchDatabase();
  let scratch: string | undefined;
  const servers: Server[] = [];
  try {
    scratch = await mkdtemp(path.join(os.tmpdir(), 'keyward-bench-workers-'));
    console.log(`${os.cpus()[0]?.model ?? '?'}, ${os.cpus().length} cores, node ${process.version}, Keyward ${runtime === 'dist' ? 'compiled' : 'under tsx'}; load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    console.log(`client credentials ES256, ${CONNECTIONS} connections, wrk -t2 on the same machine; ${RUNS} runs of ${RUN_SECONDS} s, alternating`);
    servers.push(await start(1, database.url, scratch));
    servers.push(await start(WORKERS, database.url, scratch));
    const [one] = servers;
    // Setup through the admin API: an ES256 API, a role, a service client.
    const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    const adminToken = String((await json(await fetch(`${one!.url}/token`, {
      method: 'POST', headers: { ...form, authorization: basic(ADMIN_ID, ADMIN_SECRET) },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: `${one!.url}/admin` }),
    }))).access_token);
    const api = (p: string, body: unknown) => fetch(`${one!.url}/admin/v1${p}`, {
      method: 'POST', headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
    }).then(json);
    await api('/roles', { name: 'orders-reader', permissions: ['orders:read'] });
    await api('/resources', { identifier: RESOURCE, scopes: ['orders:read'], access_token_ttl: 300, signing_alg: 'ES256' });
    const client = await api('/clients', { client_name: 'bench', grant_types: ['client_credentials'], roles: ['orders-reader'] });
    const body = new URLSearchParams({ grant_type: 'client_credentials', resource: RESOURCE, scope: 'orders:read' }).toString();
    await writeFile(path.join(scratch, 'spec'), `${basic(String(client.client_id), String(client.client_secret))}\n${body}\n`);
    await writeFile(path.join(scratch, 'bench.lua'), WRK_SCRIPT);
    for (const s of servers) {
      const probe = await json(await fetch(`${s.url}/token`, { method: 'POST', headers: { ...form, authorization: basic(String(client.client_id), String(client.client_secret)) }, body }));
      const header = JSON.parse(Buffer.from(String(probe.access_token).split('.')[0]!, 'base64url').toString()) as { alg: string };
      if (header.alg !== 'ES256') throw new Error(`expected an ES256 token, got ${header.alg}`);
      await wrk(s, scratch, WARMUP_SECONDS);
    }
    const samples = new Map<number, Sample[]>(servers.map((s) => [s.workers, []]));
    for (let run = 0; run < RUNS; run++) {
      const order = run % 2 === 0 ? servers : [...servers].reverse();
      for (const s of order) {
        const sample = await wrk(s, scratch, RUN_SECONDS);
        samples.get(s.workers)!.push(sample);
        console.log(`run ${run + 1} KEYWARD_WORKERS=${s.workers}: ${Math.round(sample.rps)} tokens/s, p50 ${sample.p50.toFixed(1)} ms, p99 ${sample.p99.toFixed(1)} ms, server CPU ${sample.cpuSeconds.toFixed(1)} s${sample.failures ? `, ${sample.failures} failed` : ''}`);
      }
    }
    const rps = (w: number) => median(samples.get(w)!.map((s) => s.rps));
    const cpu = (w: number) => median(samples.get(w)!.map((s) => s.cpuSeconds / RUN_SECONDS));
    console.log(`\nmedian KEYWARD_WORKERS=1: ${Math.round(rps(1))} tokens/s (server ${cpu(1).toFixed(2)} cores)`);
    console.log(`median KEYWARD_WORKERS=${WORKERS}: ${Math.round(rps(WORKERS))} tokens/s (server ${cpu(WORKERS).toFixed(2)} cores)`);
    console.log(`factor: ${(rps(WORKERS) / rps(1)).toFixed(2)}×; load average after ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  } finally {
    for (const s of servers) await stopChild(s.child);
    if (scratch) await rm(scratch, { recursive: true, force: true });
    await database.drop();
  }
}

await main();
