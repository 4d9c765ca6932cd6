/**
 * The benchmark suite (issue 13 §2): Keyward on PostgreSQL against a bare oidc-provider
 * (in-memory adapter, one static client, the same JWT access tokens), in one run, alternating.
 *
 *   npm run bench                     # DATABASE_URL defaults to postgres://postgres@127.0.0.1:5432/postgres
 *   RUNS=5 RUN_SECONDS=10 npm run bench
 *   BENCH_ONLY='token ES256' CLIENT_COUNTS= BENCH_ROTATION=off npm run bench   # one scenario, for an A/B
 *   BENCH_RUNTIME=src npm run bench   # Keyward from the TypeScript sources under tsx (default: `npm run build`, then dist/)
 *
 * Each server is a child process of its own; the load generator is wrk (Debian package
 * `wrk`, installed when missing and possible), a separate process with a Lua script for the
 * POST bodies and round-robin credentials. Keyward runs as configured in production: roles,
 * audit and caches on, LOG_LEVEL=info (lines to /dev/null), rate limits off
 * (KEYWARD_RATE_LIMIT=off: the load comes from one address).
 *
 * Scenarios, each Keyward then baseline (order swapped every run), medians of RUNS:
 *   - POST /token client_credentials, access token signed ES256 / RS256 / EdDSA, 10 and 50 connections
 *   - POST /token/introspection (10 connections) of Keyward's JWT access token; of an opaque one
 *     on the baseline (oidc-provider refuses to introspect JWTs)
 *   - GET /jwks (10 connections)
 *   - Keyward only: 1, 100, 1,000, 10,000 clients round-robin (ES256, 10 connections)
 *   - Keyward only: ES256 runs across which the key rotates (admin API) vs runs without
 *     (BENCH_ROTATION=off skips it); p99, the slowest request, and their ratio
 * Figures: requests/s, p50/p99 latency, requests per server CPU-second (utime+stime from
 * /proc/<pid>/stat of the server process), peak RSS during the run (VmRSS sampled every 100 ms),
 * and Keyward's ratio to the baseline. Results: bench/results/<time>.json and .md (and latest.md).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { onFreshPort } from '../test/support/net.ts';
import { buildRuntime, CLOCK_TICKS, cpuTicks, defaultScratchDatabase, firstMessage, forkBench, median, rssMiB, startKeyward, stopChild } from './support.ts';

const ALGS = ['ES256', 'RS256', 'EdDSA'] as const;
type Alg = (typeof ALGS)[number];
const RESOURCE = (alg: Alg) => `https://api-${alg.toLowerCase()}.bench`;
const OPAQUE_RESOURCE = 'https://api-opaque.bench';
const RUNS = Number(process.env.RUNS ?? 3);
const RUN_SECONDS = Number(process.env.RUN_SECONDS ?? 5);
const WARMUP_SECONDS = Number(process.env.WARMUP_SECONDS ?? 2);
const CLIENT_COUNTS = (process.env.CLIENT_COUNTS ?? '1,100,1000,10000').split(',').filter(Boolean).map(Number);
/** Only the scenarios whose name contains this text (e.g. `token ES256`); all when unset. */
const ONLY = process.env.BENCH_ONLY;
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const RESULTS = path.join(ROOT, 'bench', 'results');

interface Credentials {
  id: string;
  secret: string;
}

interface Target {
  url: string;
  pid: number;
  clients: Credentials[];
  /** Keyward: an admin-console client (role `admin`), for the rotation scenario. */
  admin?: Credentials;
}

/** One wrk run as seen by wrk and by /proc. */
interface Sample {
  rps: number;
  p50: number;
  p99: number;
  /** The slowest request of the run (ms). */
  max: number;
  perCpuSecond: number;
  peakRssMiB: number;
  failures: number;
}

interface Row {
  scenario: string;
  connections: number;
  keyward: Sample;
  baseline?: Sample;
}

// ---------------------------------------------------------------------------------------------
// Servers (child processes)

/** Child: Keyward on the given database, one role, an API per algorithm, `clients` service clients. */
async function serveKeyward(databaseUrl: string, clientCount: number): Promise<Target> {
  // Production logging: info lines to stdout (which the parent sends to /dev/null).
  const { keyward, url } = await startKeyward({
    DATABASE_URL: databaseUrl, KEYWARD_SIGNING_ALGS: ALGS.join(','), KEYWARD_RATE_LIMIT: 'off',
    // bench/profile.ts compares with audit events as info lines (before issue 13 §1).
    ...(process.env.BENCH_AUDIT_LOG ? { KEYWARD_AUDIT_LOG: process.env.BENCH_AUDIT_LOG } : {}),
  }, 'info');
  await keyward.roles.ensure({ name: 'orders-reader', permissions: ['orders:read'] });
  for (const alg of ALGS) {
    await keyward.resources.ensure({ identifier: RESOURCE(alg), scopes: ['orders:read', 'orders:write'], access_token_ttl: 300, signing_alg: alg });
  }
  const clients: Credentials[] = [];
  const create = async (i: number) => {
    const { client, client_secret } = await keyward.clients.create({
      client_name: `bench-${i}`, grant_types: ['client_credentials'], roles: ['orders-reader'],
    });
    clients[i] = { id: client.client_id, secret: client_secret! };
  };
  for (let i = 0; i < clientCount; i += 25) {
    await Promise.all(Array.from({ length: Math.min(25, clientCount - i) }, (_, j) => create(i + j)));
  }
  const admin = await keyward.clients.create({ client_name: 'bench-admin', grant_types: ['client_credentials'], roles: ['admin'], first_party: true, admin_console: true });
  return { url, pid: process.pid, clients, admin: { id: admin.client.client_id, secret: admin.client_secret! } };
}

/** Child: what a user could run instead, oidc-provider with its defaults and a static client. */
async function serveBaseline(): Promise<Target> {
  const { default: Provider } = await import('oidc-provider');
  const { exportJWK, generateKeyPair } = await import('jose');
  const keys = await Promise.all(ALGS.map(async (alg) => {
    const { privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
    return { ...(await exportJWK(privateKey)), alg, use: 'sig', kid: `bench-${alg}` };
  }));
  const secret = randomBytes(32).toString('base64url');
  const algOf = (resource: string) => ALGS.find((a) => RESOURCE(a) === resource) ?? 'ES256';
  const url = await onFreshPort(async (port) => {
    const url = `http://127.0.0.1:${port}`;
    const provider = new Provider(url, {
      jwks: { keys: keys as never },
      clients: [{ client_id: 'bench', client_secret: secret, grant_types: ['client_credentials'], response_types: [], redirect_uris: [] }],
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        introspection: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => RESOURCE('ES256'),
          // oidc-provider introspects only the tokens it stores: opaque ones, for the introspection scenario.
          getResourceServerInfo: (_ctx, resource) => (resource === OPAQUE_RESOURCE
            ? { scope: 'orders:read orders:write', audience: resource, accessTokenTTL: 300, accessTokenFormat: 'opaque' }
            : { scope: 'orders:read orders:write', audience: resource, accessTokenTTL: 300, accessTokenFormat: 'jwt', jwt: { sign: { alg: algOf(resource) } } }),
        },
      },
    });
    const server = provider.listen(port, '127.0.0.1');
    await once(server, 'listening');
    return url;
  });
  return { url, pid: process.pid, clients: [{ id: 'bench', secret }] };
}

/** Forks this file as the `kind` server with `env`; resolves once it has sent its Target. */
async function start(kind: 'keyward' | 'baseline', env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; target: Target }> {
  const child = forkBench(import.meta.url, [`serve-${kind}`], env);
  return { child, target: await firstMessage<Target>(child, `${kind} server`) };
}

// ---------------------------------------------------------------------------------------------
// Load (wrk) and /proc

const WRK_SCRIPT = `
-- args: spec file. Line 1 method, 2 path, 3 body (may be empty), then one Authorization value a line.
local method, path, body, auths, i
function init(args)
  local f = assert(io.open(args[1]))
  method = f:read("*l"); path = f:read("*l"); body = f:read("*l")
  auths = {}
  for line in f:lines() do auths[#auths + 1] = line end
  f:close()
  if body == "" then body = nil end
  -- Threads start at different places in the round-robin.
  i = math.random(0, math.max(#auths - 1, 0))
end
function request()
  local headers = {}
  if #auths > 0 then
    i = i % #auths + 1
    headers["Authorization"] = auths[i]
  end
  if body then headers["Content-Type"] = "application/x-www-form-urlencoded" end
  return wrk.format(method, path, headers, body)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK_JSON {"requests":%d,"duration_us":%d,"status_errors":%d,"socket_errors":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99), latency.max))
end
`;

interface LoadSpec {
  method: 'GET' | 'POST';
  path: string;
  body: string;
  authorizations: string[];
}

function basic(c: Credentials): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(c.id)}:${encodeURIComponent(c.secret)}`).toString('base64')}`;
}

let scratch = '';

async function wrk(target: Target, spec: LoadSpec, connections: number, seconds: number): Promise<Sample> {
  const specFile = path.join(scratch, `spec-${randomBytes(4).toString('hex')}`);
  await writeFile(specFile, [spec.method, spec.path, spec.body, ...spec.authorizations].join('\n') + '\n');
  const scriptFile = path.join(scratch, 'bench.lua');
  if (!existsSync(scriptFile)) await writeFile(scriptFile, WRK_SCRIPT);
  const cpuBefore = await cpuTicks(target.pid);
  let peak = await rssMiB(target.pid);
  const sampler = setInterval(() => void rssMiB(target.pid).then((r) => { peak = Math.max(peak, r); }, () => {}), 100);
  const child = spawn('wrk', ['-t2', `-c${connections}`, `-d${seconds}s`, '--timeout', '10s', '-s', scriptFile, `${target.url}${spec.path}`, '--', specFile], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString(); });
  const [code] = (await once(child, 'exit')) as [number | null];
  clearInterval(sampler);
  const cpuSeconds = ((await cpuTicks(target.pid)) - cpuBefore) / CLOCK_TICKS;
  await rm(specFile, { force: true });
  const line = /WRK_JSON (\{.*\})/.exec(out)?.[1];
  if (code !== 0 || !line) throw new Error(`wrk failed (exit ${String(code)}):\n${out}`);
  const r = JSON.parse(line) as { requests: number; duration_us: number; status_errors: number; socket_errors: number; p50_us: number; p99_us: number; max_us: number };
  const ok = r.requests - r.status_errors;
  return {
    rps: ok / (r.duration_us / 1e6),
    p50: r.p50_us / 1000,
    p99: r.p99_us / 1000,
    max: r.max_us / 1000,
    perCpuSecond: cpuSeconds > 0 ? ok / cpuSeconds : 0,
    peakRssMiB: peak,
    failures: r.status_errors + r.socket_errors,
  };
}

async function post(target: Target, p: string, credentials: Credentials, body: Record<string, string>): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${target.url}${p}`, {
    method: 'POST',
    headers: { authorization: basic(credentials), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

/** A token by hand first: a benchmark of error responses would measure nothing. */
async function token(name: string, target: Target, alg: Alg, credentials = target.clients[0]!): Promise<string> {
  const { status, json } = await post(target, '/token', credentials, { grant_type: 'client_credentials', resource: RESOURCE(alg), scope: 'orders:read' });
  if (status !== 200) throw new Error(`${name}: token request failed: ${status} ${JSON.stringify(json)}`);
  const header = JSON.parse(Buffer.from(String(json.access_token).split('.')[0]!, 'base64url').toString()) as { alg: string };
  if (header.alg !== alg) throw new Error(`${name}: asked for a ${alg} token, got ${header.alg}`);
  return String(json.access_token);
}

function tokenSpec(alg: Alg, clients: Credentials[]): LoadSpec {
  return {
    method: 'POST', path: '/token', authorizations: clients.map(basic),
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: RESOURCE(alg), scope: 'orders:read' }).toString(),
  };
}

/** The rotation scenario's figures: runs without a rotation, runs across one, how long each rotation call took. */
interface Rotation {
  without: Sample;
  across: Sample | undefined;
  rotations: number;
  rotateMs: number[];
  refused?: string;
}

/**
 * Issue 13 §5, "no cliffs": ES256 tokens at 10 connections, RUNS runs without a rotation and,
 * interleaved, runs across which the ES256 key rotates (POST /admin/v1/keys/rotate half-way
 * through; the provider is rebuilt with the new key set). Only the first rotation of a fresh
 * key set is allowed at once (the next key must have been published for the JWKS max-age
 * before the one after), so later attempts that answer 409 end the series.
 */
async function rotationScenario(k: Target): Promise<Rotation> {
  const spec = tokenSpec('ES256', k.clients.slice(0, 1));
  await wrk(k, spec, 10, WARMUP_SECONDS);
  const without: Sample[] = [];
  const across: Sample[] = [];
  const rotateMs: number[] = [];
  let refused: string | undefined;
  for (let run = 0; run < RUNS; run++) {
    without.push(await wrk(k, spec, 10, RUN_SECONDS));
    if (refused) continue;
    const { json } = await post(k, '/token', k.admin!, { grant_type: 'client_credentials', resource: `${k.url}/admin` });
    const running = wrk(k, spec, 10, RUN_SECONDS);
    await new Promise((resolve) => setTimeout(resolve, (RUN_SECONDS * 1000) / 2));
    const started = performance.now();
    const res = await fetch(`${k.url}/admin/v1/keys/rotate`, {
      method: 'POST',
      headers: { authorization: `Bearer ${String(json.access_token)}`, 'content-type': 'application/json' },
      body: JSON.stringify({ alg: 'ES256' }),
    });
    const took = performance.now() - started;
    const answer = await res.text();
    const sample = await running;
    if (res.status === 200) {
      across.push(sample);
      rotateMs.push(took);
    } else {
      refused = `rotation ${across.length + 1} answered ${res.status}${res.status === 409 ? ' (too early for the next key)' : `: ${answer.slice(0, 200)}`}`;
    }
    console.log(`rotation run ${run + 1}: without p99 ${ms(without.at(-1)!.p99)} ms${res.status === 200 ? `, across a rotation p99 ${ms(sample.p99)} ms max ${ms(sample.max)} ms (rotate call ${took.toFixed(0)} ms)` : `; ${refused!}`}`);
  }
  return { without: summarize(without), across: across.length ? summarize(across) : undefined, rotations: across.length, rotateMs, ...(refused ? { refused } : {}) };
}

// ---------------------------------------------------------------------------------------------
// Statistics and output

function summarize(samples: Sample[]): Sample {
  return {
    rps: median(samples.map((s) => s.rps)),
    p50: median(samples.map((s) => s.p50)),
    p99: median(samples.map((s) => s.p99)),
    max: median(samples.map((s) => s.max)),
    perCpuSecond: median(samples.map((s) => s.perCpuSecond)),
    peakRssMiB: Math.max(...samples.map((s) => s.peakRssMiB)),
    failures: samples.reduce((n, s) => n + s.failures, 0),
  };
}

const f0 = (n: number) => Math.round(n).toLocaleString('en-US');
const ms = (n: number) => (n < 10 ? n.toFixed(2) : n.toFixed(1));
const x = (a: number, b: number) => `${(a / b).toFixed(2)}×`;

function markdown(rows: Row[], curve: { clients: number; sample: Sample }[], rotation: Rotation | undefined, machine: Record<string, unknown>): string {
  const lines = [
    `Machine: ${String(machine.cpu)}, ${String(machine.cores)} cores, ${String(machine.memGiB)} GiB; Node ${String(machine.node)}; ${String(machine.postgres)}; wrk -t2; Keyward ${String(machine.keywardRuntime)}.`,
    `Load average before/after: ${String(machine.loadBefore)} / ${String(machine.loadAfter)}. Medians of ${RUNS} runs of ${RUN_SECONDS} s; Keyward and baseline alternating.`,
    '',
    '| scenario | conns | Keyward req/s | baseline req/s | ratio | Keyward p50 / p99 ms | baseline p50 / p99 ms | Keyward req per CPU-s | baseline req per CPU-s | ratio | peak RSS MiB K / B |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    const k = r.keyward;
    const b = r.baseline!;
    lines.push(`| ${r.scenario} | ${r.connections} | ${f0(k.rps)} | ${f0(b.rps)} | ${x(k.rps, b.rps)} | ${ms(k.p50)} / ${ms(k.p99)} | ${ms(b.p50)} / ${ms(b.p99)} | ${f0(k.perCpuSecond)} | ${f0(b.perCpuSecond)} | ${x(k.perCpuSecond, b.perCpuSecond)} | ${f0(k.peakRssMiB)} / ${f0(b.peakRssMiB)} |`);
  }
  if (curve.length) {
    const one = curve.find((c) => c.clients === 1)?.sample ?? curve[0]!.sample;
    lines.push('', 'Keyward, client credentials ES256, 10 connections, clients round-robin:', '',
      '| active clients | tokens/s | vs 1 client | p50 / p99 ms | tokens per CPU-s | peak RSS MiB |', '|---:|---:|---:|---:|---:|---:|');
    for (const { clients, sample: s } of curve) {
      lines.push(`| ${f0(clients)} | ${f0(s.rps)} | ${x(s.rps, one.rps)} | ${ms(s.p50)} / ${ms(s.p99)} | ${f0(s.perCpuSecond)} | ${f0(s.peakRssMiB)} |`);
    }
  }
  if (rotation) {
    const w = rotation.without;
    const a = rotation.across;
    lines.push('', 'Keyward, client credentials ES256, 10 connections, across a key rotation (POST /admin/v1/keys/rotate half-way through a run; the provider is rebuilt):', '',
      '| runs | tokens/s | p50 / p99 ms | max ms | p99 vs without |', '|---|---:|---:|---:|---:|',
      `| without a rotation (${RUNS}) | ${f0(w.rps)} | ${ms(w.p50)} / ${ms(w.p99)} | ${ms(w.max)} | 1.00× |`);
    if (a) lines.push(`| across a rotation (${rotation.rotations}; rotate call ${rotation.rotateMs.map((t) => t.toFixed(0)).join(', ')} ms) | ${f0(a.rps)} | ${ms(a.p50)} / ${ms(a.p99)} | ${ms(a.max)} | ${x(a.p99, w.p99)} |`);
    if (rotation.refused) lines.push('', `Further rotations refused: ${rotation.refused}.`);
  }
  const failures = [...rows.flatMap((r) => [r.keyward, r.baseline!]), ...curve.map((c) => c.sample), ...(rotation ? [rotation.without, ...(rotation.across ? [rotation.across] : [])] : [])].reduce((n, s) => n + s.failures, 0);
  lines.push('', failures ? `**${failures} failed requests** (non-2xx or socket errors) across all runs.` : 'No failed requests.');
  return lines.join('\n') + '\n';
}

/** The version of the PostgreSQL server at `url` (SHOW server_version). */
async function postgresVersion(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return String((await client.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version ?? '?');
  } finally {
    await client.end();
  }
}

function ensureWrk(): void {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
    return;
  } catch (error) {
    // wrk --version exits 1 after printing its version: present.
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') return;
  }
  console.log('wrk is missing: apt-get install -y wrk');
  execFileSync('apt-get', ['install', '-y', '-qq', 'wrk'], { stdio: 'inherit' });
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = Date.now();
  ensureWrk();
  const runtime = buildRuntime();
  const database = await defaultScratchDatabase();
  let keyward: { child: ChildProcess; target: Target } | undefined;
  let baseline: { child: ChildProcess; target: Target } | undefined;
  try {
    const postgres = await postgresVersion(database.url);
    scratch = await mkdtemp(path.join(os.tmpdir(), 'keyward-bench-'));
    const load = () => os.loadavg().map((l) => l.toFixed(2)).join(' ');
    const machine = {
      cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, memGiB: Math.round(os.totalmem() / 2 ** 30),
      node: process.version, postgres: `PostgreSQL ${postgres}`, loadBefore: load(), loadAfter: '',
      keywardRuntime: runtime === 'dist' ? 'compiled (dist/)' : 'TypeScript sources under tsx',
    };
    console.log(`machine: ${machine.cpu}, ${machine.cores} cores, load ${machine.loadBefore}; ${RUNS} runs × ${RUN_SECONDS} s; Keyward ${machine.keywardRuntime}`);
    const maxClients = Math.max(...CLIENT_COUNTS, 1);
    [keyward, baseline] = await Promise.all([
      start('keyward', { BENCH_DATABASE_URL: database.url, BENCH_CLIENTS: String(maxClients) }),
      start('baseline', {}),
    ]);
    console.log(`servers up in ${((Date.now() - started) / 1000).toFixed(0)} s (${maxClients} Keyward clients created)`);
    const k = keyward.target;
    const b = baseline.target;

    // Scenarios; a token of each kind first, by hand.
    const scenarios: { name: string; connections: number; spec: (t: Target) => LoadSpec }[] = [];
    for (const alg of ALGS) {
      await token('keyward', k, alg);
      await token('baseline', b, alg);
      for (const connections of [10, 50]) scenarios.push({ name: `token ${alg}`, connections, spec: (t) => tokenSpec(alg, t.clients.slice(0, 1)) });
    }
    // Keyward introspects its JWTs (signature, expiry, revocation list); oidc-provider refuses
    // JWTs ("Structured JWT Tokens cannot be introspected") and looks opaque ones up in memory.
    const opaque = await post(b, '/token', b.clients[0]!, { grant_type: 'client_credentials', resource: OPAQUE_RESOURCE, scope: 'orders:read' });
    const introspected = new Map([[k, await token('keyward', k, 'ES256')], [b, String(opaque.json.access_token)]]);
    for (const t of [k, b]) {
      const { status, json } = await post(t, '/token/introspection', t.clients[0]!, { token: introspected.get(t)! });
      if (status !== 200 || json.active !== true) throw new Error(`introspection probe failed: ${status} ${JSON.stringify(json)}`);
    }
    scenarios.push({
      name: 'introspection (baseline: opaque)', connections: 10,
      spec: (t) => ({ method: 'POST', path: '/token/introspection', authorizations: [basic(t.clients[0]!)], body: new URLSearchParams({ token: introspected.get(t)! }).toString() }),
    });
    scenarios.push({ name: 'JWKS', connections: 10, spec: () => ({ method: 'GET', path: '/jwks', authorizations: [], body: '' }) });

    if (ONLY) scenarios.splice(0, scenarios.length, ...scenarios.filter((s) => s.name.includes(ONLY)));
    for (const s of scenarios) {
      await wrk(k, s.spec(k), s.connections, WARMUP_SECONDS);
      await wrk(b, s.spec(b), s.connections, WARMUP_SECONDS);
    }
    const samples = new Map<string, { keyward: Sample[]; baseline: Sample[] }>();
    for (let run = 0; run < RUNS; run++) {
      for (const s of scenarios) {
        const key = `${s.name} c${s.connections}`;
        const entry = samples.get(key) ?? { keyward: [], baseline: [] };
        samples.set(key, entry);
        // Alternating, and which goes first swaps every run: both see the same background load.
        const order: ['keyward' | 'baseline', Target][] = run % 2 === 0 ? [['keyward', k], ['baseline', b]] : [['baseline', b], ['keyward', k]];
        for (const [who, t] of order) entry[who].push(await wrk(t, s.spec(t), s.connections, RUN_SECONDS));
        const kk = entry.keyward.at(-1)!;
        const bb = entry.baseline.at(-1)!;
        console.log(`run ${run + 1} ${key.padEnd(20)} keyward ${f0(kk.rps).padStart(6)}/s p99 ${ms(kk.p99).padStart(5)} ms ${f0(kk.perCpuSecond).padStart(6)}/CPU-s | baseline ${f0(bb.rps).padStart(6)}/s p99 ${ms(bb.p99).padStart(5)} ms ${f0(bb.perCpuSecond).padStart(6)}/CPU-s`);
      }
    }
    const rows: Row[] = scenarios.map((s) => {
      const entry = samples.get(`${s.name} c${s.connections}`)!;
      return { scenario: s.name, connections: s.connections, keyward: summarize(entry.keyward), baseline: summarize(entry.baseline) };
    });

    // The client-count curve: Keyward only, every client used in turn.
    const curve: { clients: number; sample: Sample }[] = [];
    for (const count of CLIENT_COUNTS) {
      const spec = tokenSpec('ES256', k.clients.slice(0, count));
      // Every client gets a token once first (a warm-up by time alone leaves some clients cold
      // on a loaded machine), then the usual warm-up.
      for (let i = 0; i < count; i += 50) await Promise.all(k.clients.slice(i, Math.min(i + 50, count)).map((c) => token('keyward', k, 'ES256', c)));
      const warm = WARMUP_SECONDS;
      await wrk(k, spec, 10, warm);
      const runs: Sample[] = [];
      for (let run = 0; run < RUNS; run++) runs.push(await wrk(k, spec, 10, RUN_SECONDS));
      const sample = summarize(runs);
      curve.push({ clients: count, sample });
      console.log(`clients ${f0(count).padStart(6)}: ${f0(sample.rps)} tokens/s p99 ${ms(sample.p99)} ms (each client once, then ${warm} s warm-up)`);
    }

    const rotation = process.env.BENCH_ROTATION === 'off' ? undefined : await rotationScenario(k);
    if (rotation?.across) console.log(`rotation: p99 ${ms(rotation.without.p99)} ms without, ${ms(rotation.across.p99)} ms across (${x(rotation.across.p99, rotation.without.p99)})`);

    machine.loadAfter = load();
    const table = markdown(rows, curve, rotation, machine);
    console.log(`\n${table}`);
    await mkdir(RESULTS, { recursive: true });
    const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
    const json = { date: new Date().toISOString(), machine, runs: RUNS, runSeconds: RUN_SECONDS, rows, curve, rotation, samples: Object.fromEntries(samples), wallSeconds: Math.round((Date.now() - started) / 1000) };
    await writeFile(path.join(RESULTS, `${stamp}.json`), JSON.stringify(json, null, 2) + '\n');
    await writeFile(path.join(RESULTS, `${stamp}.md`), table);
    // A partial run (BENCH_ONLY, CLIENT_COUNTS, BENCH_ROTATION=off) is an A/B, not the latest table.
    const complete = !ONLY && process.env.CLIENT_COUNTS === undefined && process.env.BENCH_ROTATION !== 'off';
    if (complete) await writeFile(path.join(RESULTS, 'latest.md'), table);
    console.log(`results: bench/results/${stamp}.{json,md}${complete ? ' (and latest.md)' : ''}; ${json.wallSeconds} s in all`);
  } finally {
    for (const server of [keyward, baseline]) if (server) await stopChild(server.child);
    if (scratch) await rm(scratch, { recursive: true, force: true });
    await database.drop();
  }
}

const role = process.argv[2];
if (role === 'serve-keyward' || role === 'serve-baseline') {
  const target = role === 'serve-keyward'
    ? await serveKeyward(process.env.BENCH_DATABASE_URL!, Number(process.env.BENCH_CLIENTS ?? 1))
    : await serveBaseline();
  process.send!(target);
  // bench/profile.ts profiles the load alone (not the setup): 'profile-start', then
  // { profileTo: file }, answered 'profiled' once the .cpuprofile is written.
  const { Session } = await import('node:inspector/promises');
  const session = new Session();
  process.on('message', (message: unknown) => {
    if (message === 'exit') process.exit(0);
    if (message === 'profile-start') {
      session.connect();
      void session.post('Profiler.enable').then(() => session.post('Profiler.start'));
    } else if (typeof message === 'object' && message && 'profileTo' in message) {
      void session.post('Profiler.stop').then(async ({ profile }) => {
        await writeFile(String(message.profileTo), JSON.stringify(profile));
        session.disconnect();
        process.send!('profiled');
      });
    }
  });
} else {
  await main();
}
