import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { TEST_KEK } from '../support/harness.ts';
import { addressInUse, onFreshPort } from '../support/net.ts';

/**
 * The fault suite's own PostgreSQL cluster and real Keyward processes. The cluster is created
 * on a free port, stopped and started by the tests, and dropped at the end; the shared 5432
 * cluster is never touched.
 */
const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const VERSION = '15';
const NAME = 'kwfaults';

export class FaultCluster {
  private constructor(readonly port: number) {}

  /** Creates and starts the cluster (dropping one left behind by an interrupted run). */
  static async create(): Promise<FaultCluster> {
    await FaultCluster.drop();
    const port = await freePort();
    await run('pg_createcluster', [VERSION, NAME, '-p', String(port)]);
    // The same trust rules as the shared cluster (loopback connections as postgres).
    await copyFile(`/etc/postgresql/${VERSION}/main/pg_hba.conf`, `/etc/postgresql/${VERSION}/${NAME}/pg_hba.conf`);
    const cluster = new FaultCluster(port);
    await cluster.start();
    return cluster;
  }

  /** Stops and removes the cluster; harmless when there is none. */
  static async drop(): Promise<void> {
    const { stdout } = await run('pg_lsclusters', ['--no-header']);
    if (stdout.split('\n').some((line) => line.split(/\s+/)[1] === NAME)) {
      await run('pg_dropcluster', ['--stop', VERSION, NAME]);
    }
  }

  url(database = 'postgres'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  /** Starts the cluster and waits until it accepts connections. */
  async start(): Promise<void> {
    await run('pg_ctlcluster', ['--skip-systemctl-redirect', VERSION, NAME, 'start']);
    await until('the fault cluster to accept connections', async () => {
      const client = new pg.Client({ connectionString: this.url(), connectionTimeoutMillis: 1_000 });
      client.on('error', () => undefined);
      try {
        await client.connect();
        await client.end();
        return true;
      } catch {
        return false;
      }
    }, 30_000);
  }

  /** Stops the cluster the way an operator would restart a database (`-m fast`: sessions are ended). */
  async stop(): Promise<void> {
    await run('pg_ctlcluster', ['--skip-systemctl-redirect', VERSION, NAME, 'stop', '-m', 'fast']);
  }

  async query<T extends object>(text: string, params: unknown[] = [], database = 'postgres'): Promise<T[]> {
    const client = new pg.Client({ connectionString: this.url(database) });
    await client.connect();
    try {
      return (await client.query<T>(text, params)).rows;
    } finally {
      await client.end();
    }
  }

  /** A fresh database on the cluster. */
  async createDatabase(): Promise<string> {
    const name = `kwf_${randomBytes(5).toString('hex')}`;
    await this.query(`CREATE DATABASE ${name}`);
    return name;
  }
}

async function freePort(): Promise<number> {
  return onFreshPort(async (port) => port);
}

/** Polls `check` every 50 ms until it is true, or throws after `timeoutMs`. */
export async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(50);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export const ADMIN_ID = 'fault-admin';
export const ADMIN_SECRET = randomBytes(32).toString('base64url');

/** A real Keyward process (`node --import tsx src/main.ts`) on the fault cluster. */
export class Instance {
  output = '';
  private constructor(readonly child: ChildProcess, readonly port: number, readonly dir: string) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  static async start(databaseUrl: string, env: Record<string, string> = {}): Promise<Instance> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'keyward-fault-'));
    return onFreshPort(async (port) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH ?? '',
          HOME: process.env.HOME ?? '',
          PORT: String(port),
          HOST: '127.0.0.1',
          ISSUER: `http://127.0.0.1:${port}`,
          LOG_LEVEL: 'warn',
          KEYWARD_KEK: TEST_KEK,
          KEYWARD_KEK_FILE: path.join(dir, 'kek'),
          KEYWARD_BOOTSTRAP_ADMIN_CLIENT_ID: ADMIN_ID,
          KEYWARD_BOOTSTRAP_ADMIN_CLIENT_SECRET: ADMIN_SECRET,
          DATABASE_URL: databaseUrl,
          ...env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const instance = new Instance(child, port, dir);
      child.stdout!.on('data', (chunk: Buffer) => (instance.output += chunk.toString()));
      child.stderr!.on('data', (chunk: Buffer) => (instance.output += chunk.toString()));
      let closed = false;
      child.once('close', () => (closed = true));
      await until(`instance on ${port} to be ready`, async () => {
        if (closed) throw /EADDRINUSE/.test(instance.output) ? addressInUse(port) : new Error(`instance exited before it was ready:\n${instance.output}`);
        return fetch(`${instance.url}/readyz`).then((r) => r.status === 200, () => false);
      }, 150_000);
      return instance;
    });
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.alive) return;
    const exited = once(this.child, 'exit');
    this.child.kill(signal);
    await exited;
  }

  async stop(): Promise<void> {
    await this.kill('SIGKILL');
    await rm(this.dir, { recursive: true, force: true });
  }
}

export interface Answer {
  status: number;
  ms: number;
  json: Record<string, unknown> | undefined;
  contentType: string;
  /** Set when no HTTP answer came (refused, reset, or the client's own timeout). */
  failure?: string;
}

/** One HTTP request with a hard client-side deadline; never throws. */
export async function call(url: string, init: RequestInit = {}, timeoutMs = 5_000): Promise<Answer> {
  const started = performance.now();
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    let json: Record<string, unknown> | undefined;
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      json = undefined;
    }
    return { status: res.status, ms: performance.now() - started, json, contentType: res.headers.get('content-type') ?? '' };
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause;
    return { status: 0, ms: performance.now() - started, json: undefined, contentType: '', failure: cause?.code ?? (error as Error).name };
  }
}

export function basic(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

/** The API the suite's services ask tokens for (created by ensureFaultApi). */
export const FAULT_API = 'https://api.faults.test';

/** POST /token client_credentials: the bootstrap admin client for the admin API, any other client for FAULT_API. */
export function clientCredentials(instance: Instance, id: string, secret: string, timeoutMs = 5_000): Promise<Answer> {
  return call(`${instance.url}/token`, {
    method: 'POST',
    headers: { authorization: basic(id, secret), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: id === ADMIN_ID ? `${instance.url}/admin` : FAULT_API }),
  }, timeoutMs);
}

/** An admin API request with a fresh admin token. */
export async function admin(instance: Instance, token: string, method: string, pathname: string, body?: unknown, timeoutMs = 5_000): Promise<Answer> {
  return call(`${instance.url}/admin/v1${pathname}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  }, timeoutMs);
}

/** An admin token for the bootstrap admin client. */
export async function adminToken(instance: Instance): Promise<string> {
  const answer = await clientCredentials(instance, ADMIN_ID, ADMIN_SECRET);
  if (answer.status !== 200) throw new Error(`admin token: ${answer.status} ${JSON.stringify(answer.json)}`);
  return answer.json!.access_token as string;
}

/** Registers FAULT_API once per database (a 409 means it is there). */
export async function ensureFaultApi(instance: Instance, token: string): Promise<void> {
  const answer = await admin(instance, token, 'POST', '/resources', { identifier: FAULT_API, scopes: ['faults:read'] });
  if (answer.status !== 201 && answer.status !== 409) throw new Error(`create resource: ${answer.status} ${JSON.stringify(answer.json)}`);
}

/** A confidential client-credentials service for FAULT_API. */
export async function createService(instance: Instance, token: string, name: string): Promise<{ id: string; secret: string }> {
  await ensureFaultApi(instance, token);
  const answer = await admin(instance, token, 'POST', '/clients', {
    client_name: name, grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic',
  });
  if (answer.status !== 201) throw new Error(`create client: ${answer.status} ${JSON.stringify(answer.json)}`);
  return { id: answer.json!.client_id as string, secret: answer.json!.client_secret as string };
}

/** The jti of a JWT access token. */
export function jtiOf(accessToken: string): string {
  return (JSON.parse(Buffer.from(accessToken.split('.')[1]!, 'base64url').toString()) as { jti: string }).jti;
}

/** The jtis of the successful token.issued events in the audit table of `database`. */
export async function auditedJtis(cluster: FaultCluster, database: string): Promise<Set<string>> {
  const rows = await cluster.query<{ jti: string }>("SELECT details->>'jti' AS jti FROM audit_events WHERE type = 'token.issued' AND outcome = 'success'", [], database);
  return new Set(rows.map((r) => r.jti));
}

/**
 * POST /token client_credentials on a connection of its own (`Connection: close`): no request
 * can meet a keep-alive connection the server is closing, so "not accepted" means refused.
 */
export function clientCredentialsOnNewConnection(instance: Instance, id: string, secret: string, timeoutMs = 10_000): Promise<Answer> {
  const started = performance.now();
  const body = new URLSearchParams({ grant_type: 'client_credentials', resource: id === ADMIN_ID ? `${instance.url}/admin` : FAULT_API }).toString();
  return new Promise((resolve) => {
    const req = http.request({
      host: '127.0.0.1', port: instance.port, path: '/token', method: 'POST', agent: false, timeout: timeoutMs,
      headers: { authorization: basic(id, secret), 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body), connection: 'close' },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        let json: Record<string, unknown> | undefined;
        try {
          json = JSON.parse(text) as Record<string, unknown>;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, ms: performance.now() - started, json, contentType: String(res.headers['content-type'] ?? '') });
      });
      res.on('error', (error: NodeJS.ErrnoException) => resolve({ status: 0, ms: performance.now() - started, json: undefined, contentType: '', failure: `response ${error.code ?? error.message}` }));
    });
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    req.on('error', (error: NodeJS.ErrnoException) => resolve({ status: 0, ms: performance.now() - started, json: undefined, contentType: '', failure: error.code ?? error.message }));
    req.end(body);
  });
}
