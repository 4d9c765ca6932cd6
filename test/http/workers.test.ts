import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/env.ts';
import { createTestDatabase, openTestStore, TEST_KEK, type TestDatabase } from '../support/harness.ts';
import { addressInUse, onFreshPort } from '../support/net.ts';

/**
 * KEYWARD_WORKERS=2 (src/http/cluster.ts): the real process, `node --import tsx src/main.ts`,
 * a node:cluster primary with two workers on one loopback port. Each answer names its worker
 * in the Keyward-Worker header; every request below opens a connection of its own, so the
 * primary's round-robin spreads them over both workers.
 */
const skip = process.env.DATABASE_URL ? false : 'needs PostgreSQL (several worker processes; PGlite serves one process)';
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const ADMIN_ID = 'workers-admin';
const ADMIN_SECRET = randomBytes(32).toString('base64url');
const ROTATION = '4s';
const ORDERS = 'https://orders.internal';

let db: TestDatabase;
let child: ChildProcess;
let port: number;
let base: string;
let output = '';

interface Answer {
  status: number;
  worker: string | undefined;
  body: string;
}

/** One request on a connection of its own (no keep-alive: the next one may reach the other worker). */
function request(method: string, pathname: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: pathname, method, headers: { ...headers, connection: 'close' }, agent: false }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, worker: res.headers['keyward-worker'] as string | undefined, body: text }));
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`${method} ${pathname}: no answer within 10 s`)));
    req.end(body);
  });
}

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

function tokenRequest(id: string, secret: string, resource: string): Promise<Answer> {
  return request('POST', '/token', { authorization: basic(id, secret), 'content-type': 'application/x-www-form-urlencoded' },
    new URLSearchParams({ grant_type: 'client_credentials', resource }).toString());
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}; server output:\n${output.slice(-5000)}`);
}

/** The pids of workers the primary logged as listening, by worker slot, in order. */
function listeningPids(): { worker: number; pid: number }[] {
  return output.split('\n').filter((l) => l.includes('"worker listening"')).map((l) => {
    const line = JSON.parse(l) as { worker: number; pid: number };
    return { worker: line.worker, pid: line.pid };
  });
}

describe('KEYWARD_WORKERS=2: one port, two worker processes', { skip }, () => {
  before(async () => {
    if (skip) return;
    db = await createTestDatabase();
    await onFreshPort(async (fresh) => {
      port = fresh;
      base = `http://127.0.0.1:${port}`;
      output = '';
      child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '',
          PORT: String(port), HOST: '127.0.0.1', ISSUER: base, LOG_LEVEL: 'info',
          DATABASE_URL: db.url!, KEYWARD_KEK: TEST_KEK, KEYWARD_KEK_FILE: path.join(db.dir, 'kek'),
          KEYWARD_WORKERS: '2', KEYWARD_RATE_LIMIT: 'off',
          KEYWARD_KEY_ROTATION_INTERVAL: ROTATION,
          KEYWARD_BOOTSTRAP_ADMIN_CLIENT_ID: ADMIN_ID, KEYWARD_BOOTSTRAP_ADMIN_CLIENT_SECRET: ADMIN_SECRET,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      let closed = false;
      child.once('close', () => (closed = true));
      await until('both workers listening', async () => {
        if (closed) throw /EADDRINUSE/.test(output) ? addressInUse(port) : new Error(`server exited before it was ready:\n${output}`);
        return listeningPids().length >= 2;
      }, 150_000);
    });
  });

  after(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
    await db?.drop();
  });

  test('both workers answer on the one port, each a process of its own', async () => {
    const pids = listeningPids();
    assert.deepEqual(pids.map((p) => p.worker).sort(), [1, 2]);
    assert.notEqual(pids[0]!.pid, pids[1]!.pid);
    assert.ok(!pids.some((p) => p.pid === child.pid), 'the primary serves nothing itself');
    const seen = new Set<string>();
    for (let i = 0; i < 10; i++) {
      const answer = await request('GET', '/.well-known/openid-configuration');
      assert.equal(answer.status, 200);
      seen.add(answer.worker!);
    }
    assert.deepEqual([...seen].sort(), ['1', '2']);
  });

  test('/metrics shows the whole deployment whichever worker answers (summed in the primary)', async () => {
    const discoveries = (text: string) => text.split('\n')
      .filter((l) => l.startsWith('keyward_http_request_duration_seconds_count') && l.includes('openid-configuration'))
      .reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
    const byWorker = new Map<string, number>();
    await until('/metrics from both workers', async () => {
      const answer = await request('GET', '/metrics');
      assert.equal(answer.status, 200, answer.body);
      byWorker.set(answer.worker!, discoveries(answer.body));
      return byWorker.size === 2;
    }, 5_000);
    // The previous test made 10 discovery requests, spread over both workers.
    assert.deepEqual([...byWorker.values()], [10, 10]);
  });

  test('a client disabled through the admin API is refused by every worker within 2 s (NOTIFY)', async () => {
    const admin = await tokenRequest(ADMIN_ID, ADMIN_SECRET, `${base}/admin`);
    assert.equal(admin.status, 200, admin.body);
    const bearer = { authorization: `Bearer ${(JSON.parse(admin.body) as { access_token: string }).access_token}`, 'content-type': 'application/json' };
    const role = await request('POST', '/admin/v1/roles', bearer, JSON.stringify({ name: 'orders-reader', permissions: ['orders:read'] }));
    assert.equal(role.status, 201, role.body);
    const api = await request('POST', '/admin/v1/resources', bearer, JSON.stringify({ identifier: ORDERS, scopes: ['orders:read'], access_token_ttl: 300 }));
    assert.equal(api.status, 201, api.body);
    const created = await request('POST', '/admin/v1/clients', bearer, JSON.stringify({ client_name: 'svc', grant_types: ['client_credentials'], roles: ['orders-reader'] }));
    assert.equal(created.status, 201, created.body);
    const svc = JSON.parse(created.body) as { client_id: string; client_secret: string };

    // Both workers have the client cached (served a token).
    const served = new Set<string>();
    await until('both workers to serve the client', async () => {
      const answer = await tokenRequest(svc.client_id, svc.client_secret, ORDERS);
      assert.equal(answer.status, 200, answer.body);
      served.add(answer.worker!);
      return served.size === 2;
    }, 10_000);

    const disabled = await request('PATCH', `/admin/v1/clients/${svc.client_id}`, bearer, JSON.stringify({ disabled: true }));
    assert.equal(disabled.status, 200, disabled.body);
    const at = Date.now();
    const refused = new Set<string>();
    await until('both workers to refuse the disabled client', async () => {
      const answer = await tokenRequest(svc.client_id, svc.client_secret, ORDERS);
      if (answer.status === 200) refused.delete(answer.worker!);
      else {
        assert.equal(answer.status, 401, answer.body);
        refused.add(answer.worker!);
      }
      return refused.size === 2;
    }, 2_000);
    assert.ok(Date.now() - at <= 2_000);
  });

  test(`the key schedule runs once per deployment: each scheduled transition (interval ${ROTATION}) is made once, by worker 1`, async () => {
    // The first scheduled promotion is due one interval after start; wait for two.
    const store = await openTestStore(db);
    try {
      const transitions = async () => store.sql.query<{ subject: string; to: string }>(
        "SELECT subject, details->>'to' AS to FROM audit_events WHERE type = 'key.transition' AND details->>'reason' = 'schedule'",
      );
      await until('two scheduled promotions', async () => (await transitions()).filter((t) => t.to === 'active').length >= 2, 20_000);
      const rows = await transitions();
      const keys = rows.map((r) => `${r.subject}→${r.to}`);
      assert.equal(new Set(keys).size, keys.length, `no transition made twice: ${keys.join(', ')}`);
      const logged = output.split('\n').filter((l) => l.includes('"signing key transition"') && l.includes('"reason":"schedule"'));
      assert.ok(logged.length >= 2);
      assert.ok(logged.every((l) => (JSON.parse(l) as { worker?: number }).worker === 1), 'only worker 1 runs the schedule');
    } finally {
      await store.close();
    }
  });

  test('a worker that dies is restarted and the port keeps serving meanwhile', async () => {
    const before = listeningPids();
    const victim = before.find((p) => p.worker === 2)!;
    process.kill(victim.pid, 'SIGKILL');
    // A connection the primary hands to the worker in the instant it dies is lost with it
    // (node:cluster round-robin); once the primary saw the exit, only the live worker gets them.
    await until('the primary to see the exit', async () => output.includes('"worker exited; restarting"'), 5_000);
    // Served throughout, by the other worker until the new one listens.
    const started = Date.now();
    await until('a new worker 2', async () => {
      const answer = await request('GET', '/.well-known/openid-configuration').catch((error: Error) => {
        throw new Error(`${error.message}; server output:\n${output.slice(-4000)}`);
      });
      assert.equal(answer.status, 200);
      return listeningPids().length > before.length;
    }, 60_000);
    assert.match(output, /"worker exited; restarting"/);
    const replacement = listeningPids().at(-1)!;
    assert.equal(replacement.worker, 2);
    assert.notEqual(replacement.pid, victim.pid);
    const seen = new Set<string>();
    await until('both workers answering again', async () => {
      const answer = await request('GET', '/.well-known/openid-configuration');
      assert.equal(answer.status, 200);
      seen.add(answer.worker!);
      return seen.size === 2;
    }, 5_000);
    assert.ok(Date.now() - started < 60_000);
  });

  test('SIGTERM to the primary: every worker finishes its in-flight request, then the primary exits 0', async () => {
    // Requests in flight on both workers: headers acknowledged (100 Continue), body still to come.
    const body = new URLSearchParams({ grant_type: 'client_credentials', resource: `${base}/admin` }).toString();
    const inFlight: { socket: net.Socket; response: () => string; ended: Promise<unknown> }[] = [];
    for (let i = 0; i < 4; i++) {
      const socket = net.connect(port, '127.0.0.1');
      await once(socket, 'connect');
      let response = '';
      socket.on('data', (chunk: Buffer) => (response += chunk.toString()));
      const ended = once(socket, 'end');
      socket.write([
        'POST /token HTTP/1.1', `Host: 127.0.0.1:${port}`, `Authorization: ${basic(ADMIN_ID, ADMIN_SECRET)}`,
        'Content-Type: application/x-www-form-urlencoded', `Content-Length: ${Buffer.byteLength(body)}`,
        'Expect: 100-continue', 'Connection: close', '', '',
      ].join('\r\n'));
      await until('100 Continue', async () => response.includes('100 Continue'), 10_000);
      socket.write(body.slice(0, 10));
      inFlight.push({ socket, response: () => response, ended });
    }
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    const signalled = Date.now();
    child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(child.exitCode, null, 'still running while requests are in flight');
    for (const { socket } of inFlight) socket.write(body.slice(10));
    await Promise.all(inFlight.map((r) => r.ended));
    const workers = new Set<string>();
    for (const r of inFlight) {
      assert.match(r.response(), /HTTP\/1\.1 200 OK/);
      workers.add(/keyward-worker: (\d+)/i.exec(r.response())![1]!);
    }
    assert.equal(workers.size, 2, 'requests were in flight on both workers');
    const [code, signal] = await exited;
    assert.equal(signal, null);
    assert.equal(code, 0, output.slice(-3000));
    assert.ok(Date.now() - signalled < 15_000);
    assert.equal(output.split('\n').filter((l) => l.includes('"worker stopped"') && l.includes('"code":0')).length, 2);
  });
});

describe('KEYWARD_WORKERS configuration', () => {
  test('a number, or auto for one per core; 1 by default', () => {
    assert.equal(loadConfig({}).workers, 1);
    const pg = { DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/x' };
    assert.equal(loadConfig({ ...pg, KEYWARD_WORKERS: '3' }).workers, 3);
    assert.equal(loadConfig({ ...pg, KEYWARD_WORKERS: 'auto' }).workers, os.availableParallelism());
    assert.throws(() => loadConfig({ ...pg, KEYWARD_WORKERS: '0' }), /^ConfigError: invalid KEYWARD_WORKERS: expected auto/);
    assert.throws(() => loadConfig({ ...pg, KEYWARD_WORKERS: 'many' }), /invalid KEYWARD_WORKERS/);
  });

  test('on PGlite more than one worker is refused at start, in one line, exit code 2', async () => {
    assert.throws(() => loadConfig({ KEYWARD_WORKERS: '2' }), (error: Error) => error instanceof ConfigError
      && error.message === 'invalid KEYWARD_WORKERS: 2 workers need PostgreSQL (DATABASE_URL); the embedded PGlite store serves one process');
    const proc = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', KEYWARD_WORKERS: '2', PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    proc.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = (await once(proc, 'exit')) as [number];
    assert.equal(code, 2);
    assert.equal(stderr, 'keyward: invalid KEYWARD_WORKERS: 2 workers need PostgreSQL (DATABASE_URL); the embedded PGlite store serves one process\n');
  });
});
