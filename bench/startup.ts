/**
 * Cold start and memory of the real process, as an operator starts it (`npm start`):
 * time from spawn until discovery is served, and VmRSS of the Keyward node process at that
 * moment (npm → sh → tsx → node: the figure is read from the node process running
 * src/main.ts, not from npm or the tsx launcher). Medians of RUNS (default 3) for:
 *   - PGlite, fresh data directory (initdb + migrations + key generation + bootstrap)
 *   - PGlite, existing data directory (the same directories, started again)
 *   - PostgreSQL, fresh database (when DATABASE_URL is set; created and dropped here)
 *
 * Usage: npm run bench:startup    (DATABASE_URL=postgres://… to include PostgreSQL)
 *        RUNS=5 npm run bench:startup
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { addressInUse, onFreshPort } from '../test/support/net.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const RUNS = Number(process.env.RUNS ?? 3);
const KEK = randomBytes(32).toString('base64');
/** USER_HZ: 100 on every Linux this runs on. */
const CLOCK_TICKS = 100;

interface Sample {
  ms: number;
  /** CPU seconds of the server process until discovery was served (less sensitive to load than wall time). */
  cpu: number;
  rssMiB: number;
}


/** Parent pid of every process, from /proc. */
async function parents(): Promise<Map<number, number>> {
  const map = new Map<number, number>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      // Field 4 (ppid) follows the parenthesised command name, which may contain spaces.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      map.set(Number(entry), ppid);
    } catch {
      // The process ended while we looked.
    }
  }
  return map;
}

/**
 * The Keyward server under `root`: the deepest node process whose arguments name src/main.ts
 * (npm → sh → node …/.bin/tsx src/main.ts → node --import …/tsx/loader src/main.ts).
 */
async function keywardPid(root: number): Promise<number> {
  const ppids = await parents();
  const depth = new Map([[root, 0]]);
  for (let grew = true; grew;) {
    grew = false;
    for (const [pid, ppid] of ppids) {
      if (depth.has(ppid) && !depth.has(pid)) {
        depth.set(pid, depth.get(ppid)! + 1);
        grew = true;
      }
    }
  }
  let best: { pid: number; depth: number } | undefined;
  for (const [pid, d] of depth) {
    const [comm, cmdline] = await Promise.all([
      readFile(`/proc/${pid}/comm`, 'utf8').catch(() => ''),
      readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => ''),
    ]);
    if (comm.trim() !== 'node' || !cmdline.split('\0').some((a) => a.endsWith('src/main.ts'))) continue;
    if (!best || d > best.depth) best = { pid, depth: d };
  }
  if (!best) throw new Error(`no node process running src/main.ts under ${root}`);
  return best.pid;
}

/** CPU time (user + system) the process has used, in seconds. */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of stat, i.e. 11 and 12 after the command name.
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

async function vmRssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]);
  return kib / 1024;
}

/** Starts `npm start` with `env`, waits for discovery, samples, then stops it with SIGTERM. */
async function startOnce(env: Record<string, string>): Promise<Sample> {
  // The issuer carries the port: chosen first, started again elsewhere if taken meanwhile.
  return onFreshPort((port) => startOn(port, env));
}

async function startOn(port: number, env: Record<string, string>): Promise<Sample> {
  const base = `http://127.0.0.1:${port}`;
  const started = performance.now();
  const child: ChildProcess = spawn('npm', ['start', '--silent'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PORT: String(port), HOST: '127.0.0.1', ISSUER: base, LOG_LEVEL: 'warn', KEYWARD_KEK: KEK, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  // Collected only for error reports; the bootstrap secret printed on a fresh store is never echoed.
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stdout!.resume();
  const exited = once(child, 'exit');
  try {
    for (;;) {
      if (child.exitCode !== null) throw /EADDRINUSE/.test(output) ? addressInUse(port) : new Error(`server exited with ${child.exitCode}: ${output}`);
      const ok = await fetch(`${base}/.well-known/openid-configuration`).then((r) => r.ok, () => false);
      if (ok) break;
      if (performance.now() - started > 120_000) throw new Error(`no discovery after 120 s: ${output}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const ms = performance.now() - started;
    const pid = await keywardPid(child.pid!);
    const [rssMiB, cpu] = await Promise.all([vmRssMiB(pid), cpuSeconds(pid)]);
    process.kill(pid, 'SIGTERM');
    await exited;
    return { ms, cpu, rssMiB };
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function report(label: string, samples: Sample[]): void {
  const ms = samples.map((s) => s.ms);
  const rss = samples.map((s) => s.rssMiB);
  const cpu = samples.map((s) => s.cpu);
  const list = (values: number[], digits: number) => values.map((v) => v.toFixed(digits)).join(', ');
  console.log(
    `${label.padEnd(27)} start→discovery ${(median(ms) / 1000).toFixed(2)} s [${list(ms.map((v) => v / 1000), 2)}]`
    + `  server CPU ${median(cpu).toFixed(2)} s [${list(cpu, 2)}]`
    + `  VmRSS ${median(rss).toFixed(0)} MiB [${list(rss, 0)}]`,
  );
}

async function main(): Promise<void> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'keyward-bench-startup-'));
  try {
    console.log(`node ${process.version}, ${os.cpus().length} CPUs, load average ${os.loadavg()[0]!.toFixed(1)}; medians of ${RUNS} runs of \`npm start\``);
    const dirs = Array.from({ length: RUNS }, (_, i) => path.join(tmp, `run${i}`));
    const pgliteEnv = (dir: string) => ({ KEYWARD_DATA_DIR: path.join(dir, 'data'), KEYWARD_KEK_FILE: path.join(dir, 'kek') });

    const fresh: Sample[] = [];
    for (const dir of dirs) fresh.push(await startOnce(pgliteEnv(dir)));
    report('PGlite, fresh data dir', fresh);

    const existing: Sample[] = [];
    for (const dir of dirs) existing.push(await startOnce(pgliteEnv(dir)));
    report('PGlite, existing data dir', existing);

    const baseUrl = process.env.DATABASE_URL;
    if (!baseUrl) {
      console.log('PostgreSQL                   skipped (set DATABASE_URL to include it)');
      return;
    }
    const postgres: Sample[] = [];
    for (const dir of dirs) {
      const name = `keyward_bench_${randomBytes(6).toString('hex')}`;
      const admin = new pg.Client({ connectionString: baseUrl });
      await admin.connect();
      await admin.query(`CREATE DATABASE ${name}`);
      try {
        const url = new URL(baseUrl);
        url.pathname = `/${name}`;
        postgres.push(await startOnce({ DATABASE_URL: url.toString(), KEYWARD_KEK_FILE: path.join(dir, 'kek') }));
      } finally {
        await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await admin.end();
      }
    }
    report('PostgreSQL, fresh database', postgres);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

await main();
