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
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { addressInUse, onFreshPort } from '../test/support/net.ts';
import { cpuSeconds, median, processTree, rssMiB, scratchDatabase } from './support.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const RUNS = Number(process.env.RUNS ?? 3);
const KEK = randomBytes(32).toString('base64');

interface Sample {
  ms: number;
  /** CPU seconds of the server process until discovery was served (less sensitive to load than wall time). */
  cpu: number;
  rssMiB: number;
}


/**
 * The Keyward server under `root`: the deepest node process whose arguments name src/main.ts
 * (npm → sh → node …/.bin/tsx src/main.ts → node --import …/tsx/loader src/main.ts).
 */
async function keywardPid(root: number): Promise<number> {
  const depth = await processTree(root);
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
    const [rss, cpu] = await Promise.all([rssMiB(pid), cpuSeconds(pid)]);
    process.kill(pid, 'SIGTERM');
    await exited;
    return { ms, cpu, rssMiB: rss };
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
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
      const database = await scratchDatabase(baseUrl);
      try {
        postgres.push(await startOnce({ DATABASE_URL: database.url, KEYWARD_KEK_FILE: path.join(dir, 'kek') }));
      } finally {
        await database.drop();
      }
    }
    report('PostgreSQL, fresh database', postgres);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

await main();
