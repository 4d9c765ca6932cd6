/**
 * What the benchmarks in bench/ share: a scratch PostgreSQL database, Keyward started in a
 * bench child process, the child processes themselves, and process figures from /proc.
 * Nothing here measures anything by itself; each bench's header says what it measures.
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { Keyward } from '../src/app.ts';
import type { Config } from '../src/config/env.ts';
import { onFreshPort } from '../test/support/net.ts';

/** The server a bench creates its scratch database on when DATABASE_URL is not set (benches that need PostgreSQL). */
const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

/** The key-encryption key of the bench servers: fixed, so that a bench's runs are alike. */
export const BENCH_KEK = Buffer.alloc(32, 9).toString('base64');

/** USER_HZ: the unit of the CPU times in /proc/<pid>/stat, 100 on every Linux this runs on. */
export const CLOCK_TICKS = 100;

// ---------------------------------------------------------------------------------------------
// Scratch database

/** A database of a bench's own, and how to get rid of it. */
export interface ScratchDatabase {
  /** Connection URL of the scratch database. */
  url: string;
  /** Drops the database (closing its connections) and the admin connection; once, later calls do nothing. */
  drop(): Promise<void>;
}

/** Creates `keyward_bench_<random hex>` on the server of `base`; the caller drops it in a finally. */
export async function scratchDatabase(base: string): Promise<ScratchDatabase> {
  const name = `keyward_bench_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } catch (error) {
    await admin.end();
    throw error;
  }
  const url = new URL(base);
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    url: url.toString(),
    async drop() {
      if (dropped) return;
      dropped = true;
      try {
        await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await admin.end();
      }
    },
  };
}

/** A scratch database on DATABASE_URL, else on DEFAULT_DATABASE_URL: for the benches that need PostgreSQL. */
export function defaultScratchDatabase(): Promise<ScratchDatabase> {
  return scratchDatabase(process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL);
}

/** A scratch database on DATABASE_URL when it is set; undefined without it (the bench runs on embedded PGlite). */
export async function optionalScratchDatabase(): Promise<ScratchDatabase | undefined> {
  const base = process.env.DATABASE_URL;
  return base ? scratchDatabase(base) : undefined;
}

// ---------------------------------------------------------------------------------------------
// Keyward in a bench child process

/** A LOG_LEVEL value. */
export type LogLevel = Config['logLevel'];

/**
 * Starts Keyward in this (child) process on a fresh loopback port, with `env` on top of the
 * bench KEK and under PORT, HOST, ISSUER and LOG_LEVEL, logging at `logLevel` to stdout. The
 * issuer carries the port: chosen first, started again elsewhere if taken meanwhile. The app
 * is imported here, so that a bench's parent process does not load it.
 */
export async function startKeyward(env: NodeJS.ProcessEnv, logLevel: LogLevel): Promise<{ keyward: Keyward; url: string }> {
  const { loadConfig, createKeyward, createLogger } = await keywardModules();
  return onFreshPort(async (port) => {
    const url = `http://127.0.0.1:${port}`;
    const config = loadConfig({ KEYWARD_KEK: BENCH_KEK, ...env, PORT: String(port), HOST: '127.0.0.1', ISSUER: url, LOG_LEVEL: logLevel });
    const keyward = await createKeyward(config, { logger: createLogger(logLevel) });
    try {
      await keyward.listen();
    } catch (error) {
      await keyward.close();
      throw error;
    }
    return { keyward, url };
  });
}

/**
 * The app's modules, from the TypeScript sources (tsx) or, with BENCH_RUNTIME=dist, from the
 * compiled runtime production runs (`npm run build` first; see buildRuntime()). tsx compiles
 * with esbuild's keepNames, which wraps every function created at run time in a naming call:
 * measurable on a hot path, and absent from what production runs.
 */
async function keywardModules(): Promise<{
  loadConfig: typeof import('../src/config/env.ts').loadConfig;
  createKeyward: typeof import('../src/app.ts').createKeyward;
  createLogger: typeof import('../src/log/logger.ts').createLogger;
}> {
  if (process.env.BENCH_RUNTIME === 'dist') {
    const dist = new URL('../dist/', import.meta.url);
    const [env, app, log] = await Promise.all([
      import(new URL('config/env.js', dist).href) as Promise<typeof import('../src/config/env.ts')>,
      import(new URL('app.js', dist).href) as Promise<typeof import('../src/app.ts')>,
      import(new URL('log/logger.js', dist).href) as Promise<typeof import('../src/log/logger.ts')>,
    ]);
    return { loadConfig: env.loadConfig, createKeyward: app.createKeyward, createLogger: log.createLogger };
  }
  const [env, app, log] = await Promise.all([import('../src/config/env.ts'), import('../src/app.ts'), import('../src/log/logger.ts')]);
  return { loadConfig: env.loadConfig, createKeyward: app.createKeyward, createLogger: log.createLogger };
}

/**
 * Builds the compiled runtime (`npm run build`) for the Keyward children of a bench and tells
 * them to use it (BENCH_RUNTIME=dist), unless BENCH_RUNTIME=src asks for the sources under tsx.
 * Returns which runtime the children run.
 */
export function buildRuntime(): 'dist' | 'src' {
  if (process.env.BENCH_RUNTIME === 'src') return 'src';
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: fileURLToPath(new URL('..', import.meta.url)), stdio: 'pipe' });
  process.env.BENCH_RUNTIME = 'dist';
  return 'dist';
}

// ---------------------------------------------------------------------------------------------
// Child processes

/**
 * Forks the bench script `script` (its file: URL, as import.meta.url) under tsx with `args`,
 * this process's environment plus `env`, and `execArgv` after tsx's: stdout to /dev/null
 * (inherited with BENCH_CHILD_STDOUT=1, to read a server's log lines), stderr inherited, an IPC channel.
 */
export function forkBench(script: string | URL, args: string[], env: NodeJS.ProcessEnv = {}, execArgv: string[] = []): ChildProcess {
  return fork(fileURLToPath(script), args, {
    execArgv: ['--import', 'tsx', ...execArgv],
    env: { ...process.env, ...env },
    stdio: ['ignore', process.env.BENCH_CHILD_STDOUT ? 'inherit' : 'ignore', 'inherit', 'ipc'],
  });
}

/** The first IPC message of `child`; rejects when `what` (the child) exits before it sends one. */
export async function firstMessage<T>(child: ChildProcess, what: string): Promise<T> {
  const [message] = (await Promise.race([
    once(child, 'message'),
    once(child, 'exit').then(([code]) => { throw new Error(`${what} exited with ${String(code)} before it served`); }),
  ])) as [T];
  return message;
}

/**
 * What `parse` finds in `child`'s stdout (all of it so far, each time more arrives), as soon as
 * it finds something; rejects when `what` (the child) exits first. Stdout is read to the end.
 */
export function stdoutMatch<T>(child: ChildProcess, what: string, parse: (output: string) => T | undefined): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let output = '';
    let found = false;
    child.stdout!.on('data', (chunk: Buffer) => {
      if (found) return;
      output += chunk.toString();
      const value = parse(output);
      if (value === undefined) return;
      found = true;
      resolve(value);
    });
    child.once('exit', (code) => reject(new Error(`${what} exited ${String(code)}`)));
  });
}

/** Sends `child` `signal` and waits until it has exited; at once when it already has. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  await exited;
}

// ---------------------------------------------------------------------------------------------
// Process figures from /proc

/** The fields of /proc/<pid>/stat after the parenthesised command name (which may contain spaces): field 3 first. */
async function statFields(pid: number): Promise<string[]> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** CPU time (user + system) `pid` has used, in clock ticks: utime and stime, fields 14 and 15 of /proc/<pid>/stat. */
export async function cpuTicks(pid: number): Promise<number> {
  const fields = await statFields(pid);
  return Number(fields[11]) + Number(fields[12]);
}

/** CPU time (user + system) `pid` has used, in seconds. */
export async function cpuSeconds(pid: number): Promise<number> {
  return (await cpuTicks(pid)) / CLOCK_TICKS;
}

/** CPU clock ticks of all of `pids` together; a process that has ended counts nothing. */
export async function cpuTicksOfAll(pids: number[]): Promise<number> {
  const ticks = await Promise.all(pids.map((pid) => cpuTicks(pid).catch(() => 0)));
  return ticks.reduce((sum, t) => sum + t, 0);
}

/** Resident set size (VmRSS of /proc/<pid>/status) of `pid` in MiB; 0 when the line is missing. */
export async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) / 1024;
}

/** The parent pid of every process, from /proc (field 4 of stat); processes that end meanwhile are left out. */
async function parentPids(): Promise<Map<number, number>> {
  const parents = new Map<number, number>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = await statFields(Number(entry)).catch(() => undefined);
    if (fields) parents.set(Number(entry), Number(fields[1]));
  }
  return parents;
}

/** `root` and all its descendants, each with its depth below `root` (root 0, its children 1, …). */
export async function processTree(root: number): Promise<Map<number, number>> {
  const parents = await parentPids();
  const depth = new Map([[root, 0]]);
  for (let grew = true; grew;) {
    grew = false;
    for (const [pid, ppid] of parents) {
      if (depth.has(ppid) && !depth.has(pid)) {
        depth.set(pid, depth.get(ppid)! + 1);
        grew = true;
      }
    }
  }
  return depth;
}

// ---------------------------------------------------------------------------------------------
// Statistics

/** The median of `values`: the middle one, or the mean of the two middle ones for an even count. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * The value at index ⌊n/2⌋ of the sorted `values`: the median for an odd count, the upper of
 * the two middle values for an even one. login.ts and federation.ts report this one.
 */
export function upperMedian(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
}
