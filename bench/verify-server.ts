/**
 * Verification cost: the forward-auth verifier (`npm run verify-server`) under keep-alive load,
 * and keyward/verify in-process.
 *
 *   npm run bench:verify
 *
 * A stand-in issuer in this process serves discovery and the JWKS (fetched once: every request
 * is then verified locally). The verifier runs in a child process so the load generator does not
 * share its event loop; wrk (when /usr/bin/wrk exists) and autocannon each run 3 times, and the
 * medians of throughput and p99 latency are reported. All on one machine: the load generator
 * takes CPU from the verifier, so these figures are a floor.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { createVerifier } from 'keyward/verify';
import { median, stdoutMatch, stopChild } from './support.ts';

const AUDIENCE = 'https://orders.internal';
const RUNS = 3;
const SECONDS = 10;
const CONNECTIONS = 50;
const ROOT = fileURLToPath(new URL('..', import.meta.url));

async function issuer(alg: 'ES256' | 'RS256' | 'EdDSA') {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  const jwk = { ...(await exportJWK(publicKey)), kid: `bench-${alg}`, alg, use: 'sig' };
  const server = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.setHeader('cache-control', 'public, max-age=3600');
    if (req.url === '/.well-known/openid-configuration') return res.end(JSON.stringify({ issuer: url, jwks_uri: `${url}/jwks` }));
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const now = Math.floor(Date.now() / 1000);
  const token = await new SignJWT({ iss: url, aud: AUDIENCE, sub: 'svc', client_id: 'svc', iat: now, exp: now + 3600, jti: 'bench', scope: 'orders:read', roles: ['orders-reader'] })
    .setProtectedHeader({ alg, kid: jwk.kid, typ: 'at+jwt' }).sign(privateKey);
  return { url, token, close: () => { server.closeAllConnections(); server.close(); } };
}

/** keyward/verify in this process, sequential calls: verifications per second (median of 3 runs of 3 s). */
async function inProcess(alg: 'ES256' | 'RS256' | 'EdDSA'): Promise<number> {
  const iss = await issuer(alg);
  const verifier = createVerifier({ issuer: iss.url, audience: AUDIENCE });
  await verifier.verify(iss.token);
  const rates: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    let n = 0;
    const start = performance.now();
    while (performance.now() - start < 3000) {
      await verifier.verify(iss.token);
      n++;
    }
    rates.push(n / ((performance.now() - start) / 1000));
  }
  iss.close();
  return median(rates);
}

async function startVerifyServer(issuerUrl: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/verify/server/main.ts'], {
    cwd: ROOT, env: { ...process.env, KEYWARD_VERIFY_ISSUER: issuerUrl, KEYWARD_VERIFY_AUDIENCE: AUDIENCE, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await stdoutMatch(child, 'verify-server', (out) => /"url":"([^"]+)"/.exec(out)?.[1]);
  for (let i = 0; i < 50 && (await fetch(`${url}/healthz`)).status !== 200; i++) await new Promise((r) => setTimeout(r, 100));
  return { url, stop: () => stopChild(child) };
}

async function withAutocannon(url: string, token: string): Promise<{ rps: number; p99: number; errors: number }> {
  const result = await autocannon({ url: `${url}/auth`, connections: CONNECTIONS, duration: SECONDS, headers: { authorization: `Bearer ${token}` } });
  return { rps: result.requests.average, p99: result.latency.p99, errors: result.non2xx + result.errors };
}

function withWrk(url: string, token: string): { rps: number; p99: number; errors: number } {
  const run = spawnSync('/usr/bin/wrk', ['-t1', `-c${CONNECTIONS}`, `-d${SECONDS}s`, '--latency', '-H', `Authorization: Bearer ${token}`, `${url}/auth`], { encoding: 'utf8' });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(run.stdout)?.[1]);
  const p99m = /\s99%\s+([\d.]+)(us|ms|s)/.exec(run.stdout);
  const p99 = p99m ? Number(p99m[1]) * ({ us: 0.001, ms: 1, s: 1000 } as Record<string, number>)[p99m[2]!]! : Number.NaN;
  const errors = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(run.stdout)?.[1] ?? 0);
  return { rps, p99, errors };
}

console.log(`# keyward/verify in-process (sequential verify() calls, median of ${RUNS} × 3 s)`);
for (const alg of ['ES256', 'RS256', 'EdDSA'] as const) {
  console.log(`${alg}: ${Math.round(await inProcess(alg))} verifications/s`);
}

const iss = await issuer('ES256');
const server = await startVerifyServer(iss.url);
try {
  // Warm-up: JIT, key import, connection pools.
  await autocannon({ url: `${server.url}/auth`, connections: 10, duration: 2, headers: { authorization: `Bearer ${iss.token}` } });
  const tools: [string, () => Promise<{ rps: number; p99: number; errors: number }>][] = [['autocannon', () => withAutocannon(server.url, iss.token)]];
  if (existsSync('/usr/bin/wrk')) tools.unshift(['wrk', async () => withWrk(server.url, iss.token)]);
  for (const [name, once_] of tools) {
    const runs = [];
    for (let i = 0; i < RUNS; i++) runs.push(await once_());
    console.log(`# verify-server, ${name}, ${CONNECTIONS} keep-alive connections, ${SECONDS} s, ES256 token, median of ${RUNS}`);
    console.log(`${name}: ${Math.round(median(runs.map((r) => r.rps)))} requests/s, p99 ${median(runs.map((r) => r.p99)).toFixed(2)} ms, non-2xx/errors ${runs.reduce((a, r) => a + r.errors, 0)}  (runs: ${runs.map((r) => Math.round(r.rps)).join(', ')} req/s)`);
  }
} finally {
  await server.stop();
  iss.close();
}
