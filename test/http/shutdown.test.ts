import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { decodeJwt } from 'jose';
import { createTestDatabase, openTestStore, startServer, TEST_KEK, type TestDatabase } from '../support/harness.ts';
import { addressInUse, onFreshPort } from '../support/net.ts';

/**
 * Graceful shutdown of the real process (src/main.ts): on SIGTERM it stops accepting, lets
 * in-flight requests finish, flushes the audit buffer, closes the store and exits 0 in 10 s.
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLIENT_ID = 'shutdown-admin';
const SECRET = randomBytes(32).toString('base64url');
const BASIC = `Basic ${Buffer.from(`${CLIENT_ID}:${SECRET}`).toString('base64')}`;

let db: TestDatabase;
let child: ChildProcess;
let port: number;
let base: string;
let output = '';


/** Polls `check` every 50 ms until it returns true or `timeoutMs` passes (an error from `check` ends it). */
async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}; server output:\n${output}`);
}

function refusesConnections(): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

async function token(): Promise<string> {
  const res = await fetch(`${base}/token`, {
    method: 'POST',
    headers: { authorization: BASIC, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: `${base}/admin` }),
  });
  const body = (await res.json()) as { access_token?: string };
  assert.equal(res.status, 200, JSON.stringify(body));
  return body.access_token!;
}

describe('the real process on SIGTERM', () => {
before(async () => {
  db = await createTestDatabase();
  // The issuer carries the port, so it is chosen before the child binds; a child that finds it
  // taken exits with EADDRINUSE and is started again on a fresh one (counted in net.ts).
  await onFreshPort(async (fresh) => {
    port = fresh;
    base = `http://127.0.0.1:${port}`;
    output = '';
    child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
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
        KEYWARD_BOOTSTRAP_ADMIN_CLIENT_ID: CLIENT_ID,
        KEYWARD_BOOTSTRAP_ADMIN_CLIENT_SECRET: SECRET,
        ...(db.url ? { DATABASE_URL: db.url } : { KEYWARD_DATA_DIR: path.join(db.dir, 'pgdata') }),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    let closed = false;
    child.once('close', () => (closed = true));
    await until('/readyz', async () => {
      // All output is in once the child's streams closed.
      if (closed) throw /EADDRINUSE/.test(output) ? addressInUse(port) : new Error(`server exited before it was ready:\n${output}`);
      return fetch(`${base}/readyz`).then((r) => r.status === 200, () => false);
    }, 150_000);
  });
});

after(async () => {
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await once(child, 'exit');
  }
  await db?.drop();
});

test('SIGTERM: stops accepting, finishes the in-flight request, loses no audit event, exits 0 within 10 s', async () => {
  // Audit events still in the writer's buffer when the signal arrives.
  const burst = await Promise.all(Array.from({ length: 10 }, () => token()));

  // An in-flight request: headers sent and acknowledged (100 Continue proves the server is
  // handling it), body still to come.
  const body = new URLSearchParams({ grant_type: 'client_credentials', resource: `${base}/admin` }).toString();
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  let response = '';
  socket.on('data', (chunk: Buffer) => (response += chunk.toString()));
  const ended = once(socket, 'end');
  socket.write([
    'POST /token HTTP/1.1',
    `Host: 127.0.0.1:${port}`,
    `Authorization: ${BASIC}`,
    'Content-Type: application/x-www-form-urlencoded',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Expect: 100-continue',
    'Connection: close',
    '', '',
  ].join('\r\n'));
  await until('100 Continue', async () => response.includes('100 Continue'), 10_000);
  socket.write(body.slice(0, 10));

  const signalled = Date.now();
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  child.kill('SIGTERM');

  await until('new connections to be refused', refusesConnections, 5_000);
  assert.equal(child.exitCode, null, 'still running while a request is in flight');

  // Trickle the rest of the body; the request completes normally.
  for (const part of body.slice(10).match(/.{1,20}/g)!) {
    socket.write(part);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await ended;
  assert.match(response, /HTTP\/1\.1 200 OK/);
  const late = JSON.parse(response.slice(response.indexOf('\r\n\r\n', response.indexOf('200 OK')) + 4)) as { access_token: string };

  const [code, signal] = await exited;
  assert.equal(signal, null);
  assert.equal(code, 0, output);
  assert.ok(Date.now() - signalled < 10_000, `exited ${Date.now() - signalled} ms after SIGTERM`);

  // Every token.issued event is in the table, the one issued during shutdown included.
  const store = await openTestStore(db);
  try {
    const rows = await store.sql.query<{ jti: string }>(
      "SELECT details->>'jti' AS jti FROM audit_events WHERE type = 'token.issued' AND outcome = 'success'",
    );
    const stored = new Set(rows.map((r) => r.jti));
    for (const jwt of [...burst, late.access_token]) {
      const { jti } = decodeJwt(jwt);
      assert.ok(stored.has(jti!), `audit event for token ${jti} was written`);
    }
  } finally {
    await store.close();
  }
});
});

/** Sends a POST /token with `Expect: 100-continue` and waits until the server is handling it. */
async function openRequest(socket: net.Socket, portNumber: number, body: string, connection: 'close' | 'keep-alive'): Promise<() => string> {
  let response = '';
  socket.on('data', (chunk: Buffer) => (response += chunk.toString()));
  socket.write([
    'POST /token HTTP/1.1',
    `Host: 127.0.0.1:${portNumber}`,
    `Authorization: ${BASIC}`,
    'Content-Type: application/x-www-form-urlencoded',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Expect: 100-continue',
    `Connection: ${connection}`,
    '', '',
  ].join('\r\n'));
  await until('100 Continue', async () => response.includes('100 Continue'), 10_000);
  return () => response;
}

describe('close() with keep-alive connections', () => {
  let kdb: TestDatabase;

  before(async () => {
    kdb = await createTestDatabase();
  });
  after(async () => {
    await kdb?.drop();
  });

  test('a keep-alive connection is closed once its in-flight response is sent, not kept until its idle timeout', async () => {
    const server = await startServer(kdb, { KEYWARD_BOOTSTRAP_ADMIN_CLIENT_ID: CLIENT_ID, KEYWARD_BOOTSTRAP_ADMIN_CLIENT_SECRET: SECRET });
    const serverPort = Number(new URL(server.url).port);
    const body = new URLSearchParams({ grant_type: 'client_credentials', resource: `${server.url}/admin` }).toString();
    const socket = net.connect(serverPort, '127.0.0.1');
    await once(socket, 'connect');
    const socketClosed = once(socket, 'close');
    const response = await openRequest(socket, serverPort, body, 'keep-alive');

    const started = Date.now();
    const closed = server.stop();
    socket.write(body);
    await until('the response', async () => /\r\n\r\n\{/.test(response()), 10_000);
    assert.match(response(), /HTTP\/1\.1 200 OK/);
    await socketClosed;
    await closed;
    // Node's keep-alive timeout is 5 s and the shutdown timeout 10 s: both are far off.
    assert.ok(Date.now() - started < 3000, `close() took ${Date.now() - started} ms`);
  });
});
