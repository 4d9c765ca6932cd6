/**
 * CPU profile of Keyward's client-credentials path (issue 13 §3): the suite's Keyward server
 * (PostgreSQL, roles, audit, caches, LOG_LEVEL=info), loaded with wrk (ES256, 10 connections,
 * one client) for PROFILE_SECONDS (default 15) after a warm-up and profiled through the
 * inspector during that load only; then the profile's top functions and packages by self time
 * (per cent, µs per token) and the cache lookups of the load (misses are store round trips).
 *
 *   npm run bench:profile            # prints the tables; the .cpuprofile stays in bench/results/profiles/
 *   BENCH_AUDIT_LOG=info npm run bench:profile   # audit events as info log lines, as before issue 13 §1
 *   PROFILE_TARGET=baseline npm run bench:profile  # the bare oidc-provider of bench/suite.ts instead
 *   PROFILE_CLIENTS=10000 npm run bench:profile    # that many clients, round-robin (the client-count curve)
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildRuntime, CLOCK_TICKS, cpuTicks, defaultScratchDatabase, firstMessage, forkBench, stopChild } from './support.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const OUT = path.join(ROOT, 'bench', 'results', 'profiles');
const SECONDS = Number(process.env.PROFILE_SECONDS ?? 15);
const RESOURCE = 'https://api-es256.bench';
const CLIENTS = Math.max(1, Number(process.env.PROFILE_CLIENTS ?? 1));

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

function where(url: string): string {
  const rel = url.replace(/^file:\/\//, '');
  const nm = rel.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = rel.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  for (const root of ['/src/', '/dist/']) if (rel.includes(root)) return `keyward ${rel.slice(rel.indexOf(root) + 1).split('/').slice(0, 2).join('/')}`;
  if (rel.startsWith('node:') || rel === '') return rel || '(native/V8)';
  return path.basename(rel);
}

/** The profile's top functions and packages by self time, in per cent and in µs per token (`requests` tokens served). */
function analyse(profile: Profile, requests: number): string {
  const self = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) self.set(profile.samples[i]!, (self.get(profile.samples[i]!) ?? 0) + (profile.timeDeltas[i] ?? 0));
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const byFunction = new Map<string, number>();
  const byPackage = new Map<string, number>();
  for (const node of profile.nodes) {
    const t = self.get(node.id) ?? 0;
    const { functionName, url, lineNumber } = node.callFrame;
    const fn = `${functionName || '(anonymous)'} ${url ? `${where(url)}:${lineNumber + 1}` : ''}`.trim();
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + t);
    const pkg = functionName === '(idle)' || functionName === '(program)' || functionName === '(garbage collector)' ? functionName : where(url);
    byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + t);
  }
  const top = (m: Map<string, number>, n: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n)
    .map(([k, v], i) => `| ${i + 1} | ${k.replace(/\|/g, '\\|')} | ${(100 * v / total).toFixed(1)} % | ${(v / requests).toFixed(1)} |`).join('\n');
  return `Self time, top functions:\n\n| # | function | self | µs per token |\n|---:|---|---:|---:|\n${top(byFunction, 15)}\n\n`
    + `Self time by package:\n\n| # | package | self | µs per token |\n|---:|---|---:|---:|\n${top(byPackage, 30)}\n`;
}

async function main(): Promise<void> {
  buildRuntime();
  const database = await defaultScratchDatabase();
  let child: ChildProcess | undefined;
  try {
    const dir = path.join(OUT, new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19));
    await mkdir(dir, { recursive: true });
    const kind = process.env.PROFILE_TARGET === 'baseline' ? 'baseline' : 'keyward';
    child = forkBench(new URL('suite.ts', import.meta.url), [`serve-${kind}`], { BENCH_DATABASE_URL: database.url, BENCH_CLIENTS: String(CLIENTS) });
    const target = await firstMessage<{ url: string; clients: { id: string; secret: string }[] }>(child, `${kind} server`);
    const basic = (c: { id: string; secret: string }) => `Basic ${Buffer.from(`${encodeURIComponent(c.id)}:${encodeURIComponent(c.secret)}`).toString('base64')}`;
    const lua = path.join(os.tmpdir(), `keyward-profile-${process.pid}.lua`);
    // Every client in turn (PROFILE_CLIENTS; one by default).
    await writeFile(lua, `wrk.method = "POST"\nwrk.body = "grant_type=client_credentials&scope=orders%3Aread&resource=${encodeURIComponent(RESOURCE)}"\n`
      + `wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n`
      + `local auths = {${target.clients.map((c) => `"${basic(c)}"`).join(',')}}\nlocal i = math.random(0, #auths - 1)\n`
      + `function request()\n  i = i % #auths + 1\n  wrk.headers["Authorization"] = auths[i]\n  return wrk.format()\nend\n`);
    if (CLIENTS > 1) execFileSync('wrk', ['-t2', '-c10', `-d${Math.ceil(CLIENTS / 500)}s`, '-s', lua, `${target.url}/token`], { stdio: 'ignore' });
    execFileSync('wrk', ['-t2', '-c10', '-d3s', '-s', lua, `${target.url}/token`], { stdio: 'ignore' });
    // Keyward's cache series (`name{labels}` → value); the baseline has none.
    const caches = async () => kind === 'baseline' ? new Map<string, number>() : new Map((await (await fetch(`${target.url}/metrics`)).text()).split('\n')
      .filter((l) => l.startsWith('keyward_cache_')).map((l) => [l.slice(0, l.lastIndexOf(' ')), Number(l.slice(l.lastIndexOf(' ') + 1))] as const));
    const cachesBefore = await caches();
    // Only the measured load is profiled: not the start, the clients' creation or the warm-up.
    child.send('profile-start');
    const before = await cpuTicks(child.pid!);
    const out = execFileSync('wrk', ['-t2', '-c10', `-d${SECONDS}s`, '-s', lua, `${target.url}/token`], { encoding: 'utf8' });
    const cpuSeconds = ((await cpuTicks(child.pid!)) - before) / CLOCK_TICKS;
    const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
    console.log(out.split('\n').filter((l) => /Requests\/sec|Non-2xx|Latency/.test(l)).join('\n'));
    console.log(`server CPU ${cpuSeconds.toFixed(2)} s for ${requests} requests: ${Math.round(requests / cpuSeconds)} tokens per CPU-second (under the profiler)`);
    // Lookups during the profiled load, per cache and result (misses are store round trips), and entries held.
    for (const [series, value] of await caches()) {
      console.log(`${series} ${series.startsWith('keyward_cache_lookups') ? `+${value - (cachesBefore.get(series) ?? 0)}` : value}`);
    }
    const file = path.join(dir, `${kind}.cpuprofile`);
    child.send({ profileTo: file });
    await firstMessage(child, `${kind} server (profile)`);
    child.send('exit');
    await once(child, 'exit');
    const report = analyse(JSON.parse(await readFile(file, 'utf8')) as Profile, requests);
    await writeFile(path.join(dir, 'top.md'), report);
    console.log(`\n${report}\nprofile: ${path.relative(ROOT, file)} (open in Chrome DevTools or speedscope)`);
  } finally {
    // Stopped here only when something failed before its normal exit.
    if (child) await stopChild(child);
    await database.drop();
  }
}

await main();
