/**
 * Client-credentials throughput: Keyward on PostgreSQL against a bare oidc-provider (in-memory
 * adapter, one static client, one resource server issuing the same ES256 JWT access tokens).
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench
 *
 * Each server runs in a child process of its own so the load generator (autocannon, here)
 * does not share an event loop with it. A fresh database is created and dropped.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import pg from 'pg';
import { onFreshPort } from '../test/support/net.ts';

const RESOURCE = 'https://orders.internal';
const WARMUP_SECONDS = 3;
const RUN_SECONDS = 10;
const CONCURRENCY = [10, 50];
const KEK = Buffer.alloc(32, 9).toString('base64');

interface Target {
  url: string;
  clientId: string;
  clientSecret: string;
}

interface Figures {
  tokensPerSecond: number;
  p50: number;
  p99: number;
  failures: number;
}


/** Child: a Keyward on the given database with one role, one API and one service client. */
async function serveKeyward(databaseUrl: string): Promise<Target> {
  const { loadConfig } = await import('../src/config/env.ts');
  const { createKeyward } = await import('../src/app.ts');
  const { createLogger } = await import('../src/log/logger.ts');
  // The issuer carries the port: chosen first, started again elsewhere if taken meanwhile.
  const { keyward, url } = await onFreshPort(async (port) => {
    const url = `http://127.0.0.1:${port}`;
    const config = loadConfig({
      PORT: String(port), HOST: '127.0.0.1', ISSUER: url, DATABASE_URL: databaseUrl, KEYWARD_KEK: KEK, LOG_LEVEL: 'silent',
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
  await keyward.roles.ensure({ name: 'orders-reader', permissions: ['orders:read'] });
  await keyward.resources.ensure({ identifier: RESOURCE, scopes: ['orders:read', 'orders:write'], access_token_ttl: 300 });
  const { client, client_secret } = await keyward.clients.create({
    client_name: 'bench', grant_types: ['client_credentials'], roles: ['orders-reader'],
  });
  return { url, clientId: client.client_id, clientSecret: client_secret! };
}

/** Child: what a user could run instead, oidc-provider with its defaults and a static client. */
async function serveBaseline(): Promise<Target> {
  const { default: Provider } = await import('oidc-provider');
  const { exportJWK, generateKeyPair } = await import('jose');
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const clientSecret = randomBytes(32).toString('base64url');
  const privateJwk = await exportJWK(privateKey);
  const baseline = (url: string) => new Provider(url, {
    jwks: { keys: [{ ...privateJwk, alg: 'ES256', use: 'sig', kid: 'bench' }] as never },
    clients: [{ client_id: 'bench', client_secret: clientSecret, grant_types: ['client_credentials'], response_types: [], redirect_uris: [], id_token_signed_response_alg: 'ES256' }],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => RESOURCE,
        getResourceServerInfo: () => ({ scope: 'orders:read orders:write', audience: RESOURCE, accessTokenTTL: 300, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } }),
      },
    },
  });
  const url = await onFreshPort(async (port) => {
    const url = `http://127.0.0.1:${port}`;
    const server = baseline(url).listen(port, '127.0.0.1');
    await once(server, 'listening');
    return url;
  });
  return { url, clientId: 'bench', clientSecret };
}

function load(target: Target, connections: number, seconds: number): Promise<Figures> {
  const body = new URLSearchParams({ grant_type: 'client_credentials', resource: RESOURCE, scope: 'orders:read' }).toString();
  const authorization = `Basic ${Buffer.from(`${encodeURIComponent(target.clientId)}:${encodeURIComponent(target.clientSecret)}`).toString('base64')}`;
  return new Promise((resolve, reject) => {
    autocannon({
      url: `${target.url}/token`,
      method: 'POST',
      headers: { authorization, 'content-type': 'application/x-www-form-urlencoded' },
      body,
      connections,
      duration: seconds,
    }, (error, result) => {
      if (error) return reject(error instanceof Error ? error : new Error(String(error)));
      resolve({
        tokensPerSecond: result['2xx'] / result.duration,
        p50: result.latency.p50,
        p99: result.latency.p99,
        failures: result.non2xx + result.errors,
      });
    });
  });
}

async function start(kind: 'keyward' | 'baseline', databaseUrl?: string): Promise<{ child: ChildProcess; target: Target }> {
  const child = fork(fileURLToPath(import.meta.url), [`serve-${kind}`], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, ...(databaseUrl ? { BENCH_DATABASE_URL: databaseUrl } : {}) },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const [message] = (await once(child, 'message')) as [Target];
  return { child, target: message };
}

/** One request by hand first: a benchmark of error responses would measure nothing. */
async function probe(name: string, target: Target): Promise<void> {
  const res = await fetch(`${target.url}/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(target.clientId)}:${encodeURIComponent(target.clientSecret)}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: RESOURCE, scope: 'orders:read' }),
  });
  if (res.status !== 200) throw new Error(`${name}: token request failed: ${res.status} ${await res.text()}`);
}

function line(name: string, connections: number, f: Figures): string {
  return `${name.padEnd(9)} c=${String(connections).padEnd(3)} ${f.tokensPerSecond.toFixed(0).padStart(6)} tokens/s  p50 ${String(f.p50).padStart(4)} ms  p99 ${String(f.p99).padStart(4)} ms${f.failures ? `  (${f.failures} failed)` : ''}`;
}

async function main(): Promise<void> {
  const base = process.env.DATABASE_URL;
  if (!base) {
    console.error('DATABASE_URL is required (a PostgreSQL server where a scratch database can be created)');
    process.exit(2);
  }
  const name = `keyward_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(base);
  url.pathname = `/${name}`;
  console.log(`warm-up ${WARMUP_SECONDS} s, then ${RUN_SECONDS} s per concurrency level; POST /token client_credentials (client_secret_basic, resource, scope)`);
  try {
    const [keyward, baseline] = await Promise.all([start('keyward', url.toString()), start('baseline')]);
    try {
      await probe('keyward', keyward.target);
      await probe('baseline', baseline.target);
      await load(keyward.target, 10, WARMUP_SECONDS);
      await load(baseline.target, 10, WARMUP_SECONDS);
      // Interleaved, so both see the same background load on a shared machine.
      for (const connections of CONCURRENCY) {
        const k = await load(keyward.target, connections, RUN_SECONDS);
        console.log(line('keyward', connections, k));
        const b = await load(baseline.target, connections, RUN_SECONDS);
        console.log(line('baseline', connections, b));
        console.log(`ratio     c=${String(connections).padEnd(3)} keyward/baseline: tokens/s ${(k.tokensPerSecond / b.tokensPerSecond).toFixed(2)}  p50 ${(k.p50 / b.p50).toFixed(2)}  p99 ${(k.p99 / b.p99).toFixed(2)}`);
      }
    } finally {
      keyward.child.kill();
      baseline.child.kill();
    }
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}

const role = process.argv[2];
if (role === 'serve-keyward' || role === 'serve-baseline') {
  const target = role === 'serve-keyward' ? await serveKeyward(process.env.BENCH_DATABASE_URL!) : await serveBaseline();
  process.send!(target);
} else {
  await main();
}
