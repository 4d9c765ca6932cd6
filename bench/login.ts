/**
 * Browser-login throughput: complete authorization-code + PKCE logins over HTTP, the way a
 * browser drives them (fetch + a cookie jar per login, no browser): GET /auth → login page →
 * POST credentials → resume → (first-party consent skipped) → code → POST /token.
 *
 *   npm run bench:login                      # embedded PGlite in a temp dir
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench:login
 *
 * Prints successful logins/s at concurrency 4 and the median time of one login (concurrency 1),
 * each as the median of 3 runs, first with 100 users, then with 100,000 (BENCH_USERS_LARGE;
 * seeded by one bulk INSERT, all sharing one argon2id hash computed once), and the ratio.
 * Each login picks a user at random from all of them. The server runs in a child process of its own; argon2id
 * verification (the login's dominant cost) runs on libuv's thread pool (4 threads by default).
 */
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { firstMessage, forkBench, optionalScratchDatabase, startKeyward, stopChild, upperMedian } from './support.ts';

const RUNS = Number(process.env.RUNS ?? 3);
const CONCURRENCY = 4;
const RUN_SECONDS = Number(process.env.RUN_SECONDS ?? 10);
const SINGLE_LOGINS = Number(process.env.SINGLE_LOGINS ?? 25);
const USERS = 100;
const USERS_LARGE = Number(process.env.BENCH_USERS_LARGE ?? 100_000);
const REDIRECT_URI = 'http://127.0.0.1:9/cb';

interface Target {
  url: string;
  clientId: string;
  /** Every user is bench<i> for i < userCount, all with this password. */
  password: string;
  userCount: number;
  argon2: string;
}

/** Adds users bench<from>…bench<to - 1>, 10,000 a statement (each within the statement timeout), with their role. */
async function seedUsers(sql: { exec(text: string): Promise<unknown> }, from: number, to: number, hash: string): Promise<void> {
  // The hash is argon2id's PHC string ([A-Za-z0-9$=,+/]): safe inside a literal; checked anyway.
  if (!/^[A-Za-z0-9$=,+/.-]+$/.test(hash)) throw new Error('unexpected hash form');
  for (let start = from; start < to; start += 10_000) {
    const end = Math.min(to, start + 10_000) - 1;
    await sql.exec(`WITH added AS (INSERT INTO users (id, username, password_hash, updated_at)
      SELECT gen_random_uuid(), 'bench' || g, '${hash}', now() FROM generate_series(${start}, ${end}) g RETURNING id)
      INSERT INTO user_roles (user_id, role_name) SELECT id, 'staff' FROM added`);
  }
}


/** Child: Keyward with a few users and one first-party public client. */
async function serve(databaseUrl: string | undefined, dataDir: string): Promise<Target> {
  const { hashPassword, PASSWORD_PARAMS } = await import('../src/identity/passwords.ts');
  // Rate limits off: every login comes from this one address (300 logins a minute by default).
  const { keyward, url } = await startKeyward({
    KEYWARD_RATE_LIMIT: 'off', KEYWARD_DATA_DIR: path.join(dataDir, 'pgdata'), KEYWARD_KEK_FILE: path.join(dataDir, 'kek'),
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
  }, 'silent');
  await keyward.store.prisma.role.upsert({ where: { name: 'staff' }, create: { name: 'staff' }, update: {} });
  const password = randomBytes(12).toString('base64url');
  const hash = await hashPassword(password);
  await seedUsers(keyward.store.sql, 0, USERS, hash);
  // Asked by the parent between the two measurements: grow to USERS_LARGE users.
  process.on('message', (message: { grow?: number }) => {
    if (!message.grow) return;
    const started = Date.now();
    void seedUsers(keyward.store.sql, USERS, message.grow, hash).then(
      () => process.send!({ grown: message.grow, ms: Date.now() - started }),
      (error: Error) => process.send!({ error: error.message }),
    );
  });
  const { client } = await keyward.clients.create({
    client_name: 'bench', grant_types: ['authorization_code', 'refresh_token'], redirect_uris: [REDIRECT_URI],
    token_endpoint_auth_method: 'none', first_party: true,
  });
  const { memoryCost, timeCost, parallelism } = PASSWORD_PARAMS;
  return { url, clientId: client.client_id, password, userCount: USERS, argon2: `argon2id m=${memoryCost} KiB (${(memoryCost / 1024).toFixed(0)} MiB), t=${timeCost}, p=${parallelism}` };
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
async function login(target: Target, user: { username: string; password: string }): Promise<boolean> {
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

const randomUser = (target: Target) => ({ username: `bench${Math.floor(Math.random() * target.userCount)}`, password: target.password });

async function throughput(target: Target): Promise<{ perSecond: number; failed: number }> {
  const deadline = Date.now() + RUN_SECONDS * 1000;
  let ok = 0;
  let failed = 0;
  const start = Date.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (Date.now() < deadline) {
      if (await login(target, randomUser(target))) ok++;
      else failed++;
    }
  }));
  return { perSecond: ok / ((Date.now() - start) / 1000), failed };
}

async function single(target: Target): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < SINGLE_LOGINS; i++) {
    const startedAt = performance.now();
    if (!(await login(target, randomUser(target)))) throw new Error('login failed');
    times.push(performance.now() - startedAt);
  }
  return upperMedian(times);
}

async function main(): Promise<void> {
  const database = await optionalScratchDatabase();
  let dir: string | undefined;
  let child: ChildProcess | undefined;
  try {
    dir = await mkdtemp(path.join(os.tmpdir(), 'keyward-bench-'));
    child = forkBench(import.meta.url, ['serve'], { BENCH_DATA_DIR: dir, ...(database ? { BENCH_DATABASE_URL: database.url } : {}) });
    const target = await firstMessage<Target>(child, 'keyward server');
    console.log(`store: ${database ? 'PostgreSQL' : 'PGlite'}; password hashing: ${target.argon2}; ${os.cpus().length} CPUs; load average ${os.loadavg()[0]!.toFixed(1)}`);
    await throughput({ ...target }); // warm-up (JIT, connection pool, dummy hash)
    const measure = async (label: string) => {
      const rates: number[] = [];
      const singles: number[] = [];
      for (let run = 1; run <= RUNS; run++) {
        const { perSecond, failed } = await throughput(target);
        const one = await single(target);
        rates.push(perSecond);
        singles.push(one);
        console.log(`${label} run ${run}: ${perSecond.toFixed(1)} logins/s at concurrency ${CONCURRENCY}${failed ? ` (${failed} failed)` : ''}; one login median ${one.toFixed(1)} ms`);
      }
      console.log(`${label} median of ${RUNS}: ${upperMedian(rates).toFixed(1)} logins/s at concurrency ${CONCURRENCY}; one login ${upperMedian(singles).toFixed(1)} ms`);
      return upperMedian(rates);
    };
    const small = await measure(`${USERS.toLocaleString('en-US')} users`);
    child.send({ grow: USERS_LARGE });
    const [grown] = (await once(child, 'message')) as [{ grown?: number; ms?: number; error?: string }];
    if (!grown.grown) throw new Error(`seeding failed: ${grown.error}`);
    console.log(`seeded ${USERS_LARGE.toLocaleString('en-US')} users in ${((grown.ms ?? 0) / 1000).toFixed(1)} s`);
    target.userCount = USERS_LARGE;
    const large = await measure(`${USERS_LARGE.toLocaleString('en-US')} users`);
    console.log(`ratio ${USERS_LARGE.toLocaleString('en-US')} / ${USERS} users: ${(large / small).toFixed(2)}×`);
  } finally {
    if (child) await stopChild(child);
    await database?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'serve') {
  process.send!(await serve(process.env.BENCH_DATABASE_URL, process.env.BENCH_DATA_DIR!));
} else {
  await main();
}
