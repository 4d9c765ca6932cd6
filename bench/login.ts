/**
 * Browser-login throughput: complete authorization-code + PKCE logins over HTTP, the way a
 * browser drives them (fetch + a cookie jar per login, no browser): GET /auth → login page →
 * POST credentials → resume → (first-party consent skipped) → code → POST /token.
 *
 *   npm run bench:login                      # embedded PGlite in a temp dir
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench:login
 *
 * Prints successful logins/s at concurrency 4 and the median time of one login (concurrency 1),
 * each as the median of 3 runs. The server runs in a child process of its own; argon2id
 * verification (the login's dominant cost) runs on libuv's thread pool (4 threads by default).
 */
import { fork } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { onFreshPort } from '../test/support/net.ts';

const RUNS = 3;
const CONCURRENCY = 4;
const RUN_SECONDS = 10;
const SINGLE_LOGINS = 25;
const USERS = 8;
const KEK = Buffer.alloc(32, 9).toString('base64');
const REDIRECT_URI = 'http://127.0.0.1:9/cb';

interface Target {
  url: string;
  clientId: string;
  users: { username: string; password: string }[];
  argon2: string;
}


/** Child: Keyward with a few users and one first-party public client. */
async function serve(databaseUrl: string | undefined, dataDir: string): Promise<Target> {
  const { loadConfig } = await import('../src/config/env.ts');
  const { createKeyward } = await import('../src/app.ts');
  const { createLogger } = await import('../src/log/logger.ts');
  const { hashPassword, PASSWORD_PARAMS } = await import('../src/identity/passwords.ts');
  // The issuer carries the port: chosen first, started again elsewhere if taken meanwhile.
  const { keyward, url } = await onFreshPort(async (port) => {
    const url = `http://127.0.0.1:${port}`;
    const config = loadConfig({
      PORT: String(port), HOST: '127.0.0.1', ISSUER: url, KEYWARD_KEK: KEK, LOG_LEVEL: 'silent',
      KEYWARD_DATA_DIR: path.join(dataDir, 'pgdata'), KEYWARD_KEK_FILE: path.join(dataDir, 'kek'),
      ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
    });
    const keyward = await createKeyward(config, { logger: createLogger('silent') });
    try {
      await keyward.listen();
    } catch (error) {
      await keyward.close();
      throw error;
    }
    return { keyward, url };
  });
  await keyward.store.prisma.role.upsert({ where: { name: 'staff' }, create: { name: 'staff' }, update: {} });
  const users: Target['users'] = [];
  for (let i = 0; i < USERS; i++) {
    const username = `bench${i}`;
    const password = randomBytes(12).toString('base64url');
    await keyward.store.prisma.user.create({ data: { username, passwordHash: await hashPassword(password), roles: { create: [{ roleName: 'staff' }] } } });
    users.push({ username, password });
  }
  const { client } = await keyward.clients.create({
    client_name: 'bench', grant_types: ['authorization_code', 'refresh_token'], redirect_uris: [REDIRECT_URI],
    token_endpoint_auth_method: 'none', first_party: true,
  });
  const { memoryCost, timeCost, parallelism } = PASSWORD_PARAMS;
  return { url, clientId: client.client_id, users, argon2: `argon2id m=${memoryCost} KiB (${(memoryCost / 1024).toFixed(0)} MiB), t=${timeCost}, p=${parallelism}` };
}

/** The cookies a browser would keep for one login (paths ignored: names are unique enough here). */
class CookieJar {
  readonly #cookies = new Map<string, string>();
  store(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';');
      const [name, ...value] = pair!.split('=');
      const expired = attributes.some((a) => /^\s*expires=Thu, 01 Jan 1970/i.test(a));
      if (expired) this.#cookies.delete(name!.trim());
      else this.#cookies.set(name!.trim(), value.join('='));
    }
  }
  header(): string {
    return [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

/** One complete login; resolves with the token response status (200 = success). */
async function login(target: Target, user: Target['users'][number]): Promise<boolean> {
  const jar = new CookieJar();
  const go = async (url: string, init: RequestInit = {}) => {
    const res = await fetch(new URL(url, target.url), { ...init, redirect: 'manual', headers: { ...(init.headers as Record<string, string>), cookie: jar.header() } });
    jar.store(res);
    return res;
  };
  const verifier = randomBytes(32).toString('base64url');
  const auth = new URL('/auth', target.url);
  auth.search = new URLSearchParams({
    client_id: target.clientId, response_type: 'code', redirect_uri: REDIRECT_URI, scope: 'openid profile roles',
    code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256', state: randomBytes(8).toString('hex'),
  }).toString();
  let res = await go(auth.href);
  let location = res.headers.get('location')!;
  res = await go(location);
  const html = await res.text();
  const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1];
  if (!csrf) return false;
  res = await go(`${location}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ csrf, username: user.username, password: user.password }).toString(),
  });
  if (res.status !== 303) return false;
  location = res.headers.get('location')!;
  // resume → consent (first-party: skipped) → resume → redirect_uri?code=…
  while (!location.startsWith(REDIRECT_URI)) {
    res = await go(location);
    await res.arrayBuffer();
    const next = res.headers.get('location');
    if (!next) return false;
    location = next;
  }
  const code = new URL(location).searchParams.get('code');
  if (!code) return false;
  const token = await fetch(`${target.url}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, client_id: target.clientId, code_verifier: verifier }).toString(),
  });
  const body = (await token.json()) as { id_token?: string };
  return token.status === 200 && Boolean(body.id_token);
}

async function throughput(target: Target): Promise<{ perSecond: number; failed: number }> {
  const deadline = Date.now() + RUN_SECONDS * 1000;
  let ok = 0;
  let failed = 0;
  const start = Date.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async (_, worker) => {
    while (Date.now() < deadline) {
      if (await login(target, target.users[worker % target.users.length]!)) ok++;
      else failed++;
    }
  }));
  return { perSecond: ok / ((Date.now() - start) / 1000), failed };
}

async function single(target: Target): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < SINGLE_LOGINS; i++) {
    const startedAt = performance.now();
    if (!(await login(target, target.users[0]!))) throw new Error('login failed');
    times.push(performance.now() - startedAt);
  }
  return median(times);
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function main(): Promise<void> {
  const base = process.env.DATABASE_URL;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'keyward-bench-'));
  let databaseUrl: string | undefined;
  let drop = async () => {};
  if (base) {
    const name = `keyward_bench_${randomBytes(4).toString('hex')}`;
    const admin = new pg.Client({ connectionString: base });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    const url = new URL(base);
    url.pathname = `/${name}`;
    databaseUrl = url.toString();
    drop = async () => {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    };
  }
  const child = fork(fileURLToPath(import.meta.url), ['serve'], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, BENCH_DATA_DIR: dir, ...(databaseUrl ? { BENCH_DATABASE_URL: databaseUrl } : {}) },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  try {
    const [target] = (await once(child, 'message')) as [Target];
    console.log(`store: ${base ? 'PostgreSQL' : 'PGlite'}; password hashing: ${target.argon2}; ${os.cpus().length} CPUs`);
    await throughput({ ...target }); // warm-up (JIT, connection pool, dummy hash)
    const rates: number[] = [];
    const singles: number[] = [];
    for (let run = 1; run <= RUNS; run++) {
      const { perSecond, failed } = await throughput(target);
      const one = await single(target);
      rates.push(perSecond);
      singles.push(one);
      console.log(`run ${run}: ${perSecond.toFixed(1)} logins/s at concurrency ${CONCURRENCY}${failed ? ` (${failed} failed)` : ''}; one login median ${one.toFixed(1)} ms`);
    }
    console.log(`median of ${RUNS}: ${median(rates).toFixed(1)} logins/s at concurrency ${CONCURRENCY}; one login ${median(singles).toFixed(1)} ms`);
  } finally {
    child.kill();
    await drop();
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'serve') {
  process.send!(await serve(process.env.BENCH_DATABASE_URL, process.env.BENCH_DATA_DIR!));
} else {
  await main();
}
