import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TEST_KEK, type TestDatabase } from '../support/harness.ts';
import { addressInUse, onFreshPort } from '../support/net.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** A real Keyward process (src/main.ts) on a loopback port, for what only a process shows (RSS). */
export interface KeywardProcess {
  child: ChildProcess;
  pid: number;
  base: string;
  output(): string;
  /** Resident set size of the Keyward node process, from /proc/<pid>/status, in MiB. */
  rssMiB(): Promise<number>;
  stop(): Promise<void>;
}

export async function startProcess(db: TestDatabase, env: Record<string, string> = {}): Promise<KeywardProcess> {
  return onFreshPort(async (port) => {
    const base = `http://127.0.0.1:${port}`;
    let output = '';
    // node itself (not npm/npx), so the pid is the process whose memory is measured.
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        PORT: String(port),
        HOST: '127.0.0.1',
        ISSUER: base,
        LOG_LEVEL: 'warn',
        KEYWARD_KEK: TEST_KEK,
        KEYWARD_KEK_FILE: path.join(db.dir, 'kek'),
        ...(db.url ? { DATABASE_URL: db.url } : { KEYWARD_DATA_DIR: path.join(db.dir, 'pgdata') }),
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-20_000)));
    child.stderr!.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-20_000)));
    let closed = false;
    child.once('close', () => (closed = true));
    const deadline = Date.now() + 150_000;
    for (;;) {
      if (closed) throw /EADDRINUSE/.test(output) ? addressInUse(port) : new Error(`keyward exited before it was ready:\n${output}`);
      if (await fetch(`${base}/readyz`).then((r) => r.status === 200, () => false)) break;
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`keyward was not ready within 150 s:\n${output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return {
      child,
      pid: child.pid!,
      base,
      output: () => output,
      async rssMiB() {
        const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
        const kb = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1]);
        return kb / 1024;
      },
      async stop() {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await once(child, 'exit');
        clearTimeout(timer);
      },
    };
  });
}
