/**
 * Token endpoint throughput for clients bound to a key (RFC 8705, RFC 9449) against plain
 * client secrets, in one run:
 *
 *   npm run bench:bound
 *
 * client_credentials with ES256 access tokens; autocannon, 10 keep-alive connections, 5 s per
 * run, scenarios alternating, 3 rounds, medians reported with their ratio to the baseline.
 *   - secret/http      client_secret_basic over plain HTTP
 *   - secret/https     client_secret_basic over the HTTPS listener (the fair baseline for mTLS)
 *   - mtls/https       tls_client_auth by subject DN, certificate-bound token, same listener
 *   - hook/http      secret/http sent through autocannon's setupRequest (control for the next)
 *   - dpop/http        client_secret_basic + dpop_bound_access_tokens, a fresh ES256 proof per
 *                      request, signed here in the load generator (autocannon's setupRequest)
 * Keyward (two instances sharing one store, PostgreSQL when DATABASE_URL is set, else embedded: one HTTP, one HTTPS listener) runs in a
 * child process (this file with --serve), so the load generator does not share its event loop.
 * All on one machine: the load generator takes CPU from Keyward, so these figures are a floor.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { median, optionalScratchDatabase, stdoutMatch, stopChild } from './support.ts';

const RUNS = 3;
const SECONDS = 5;
const CONNECTIONS = 10;
const API = 'https://orders.bench.test';
const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface Setup {
  http: string;
  https: string;
  secret: { id: string; secret: string };
  mtls: string;
  dpop: { id: string; secret: string };
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl. */
function pki(dir: string) {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', `${dir}/ca.key`, '-out', `${dir}/ca.pem`, '-days', '1', '-subj', '/CN=bench CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign']);
  for (const [name, subject, ext] of [['server', '/CN=127.0.0.1', 'subjectAltName=IP:127.0.0.1'], ['client', '/O=Bench/CN=bench-client', 'extendedKeyUsage=clientAuth']] as const) {
    writeFileSync(`${dir}/${name}.ext`, `${ext}\n`);
    openssl(['req', '-new', ...ec, '-keyout', `${dir}/${name}.key`, '-out', `${dir}/${name}.csr`, '-subj', subject]);
    openssl(['x509', '-req', '-in', `${dir}/${name}.csr`, '-CA', `${dir}/ca.pem`, '-CAkey', `${dir}/ca.key`, '-CAcreateserial',
      '-out', `${dir}/${name}.pem`, '-days', '1', '-extfile', `${dir}/${name}.ext`]);
  }
}

/**
 * --serve: Keyward on HTTP and on HTTPS over one store (PostgreSQL at BENCH_DATABASE_URL, the
 * parent's scratch database, else embedded), with the bench clients; prints the setup as JSON.
 */
async function serve(dir: string): Promise<void> {
  const { createKeyward } = await import('../src/app.ts');
  const { loadConfig } = await import('../src/config/env.ts');
  const { createLogger } = await import('../src/log/logger.ts');
  const { openStore } = await import('../src/store/store.ts');
  const logger = createLogger('warn');
  const databaseUrl = process.env.BENCH_DATABASE_URL;
  const store = await openStore({ databaseUrl, dataDir: path.join(dir, 'pgdata'), logger });
  const [httpPort, httpsPort] = [await freePort(), await freePort()];
  const base = { ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}), HOST: '127.0.0.1', KEYWARD_KEK_FILE: path.join(dir, 'kek'), KEYWARD_DATA_DIR: path.join(dir, 'pgdata'), KEYWARD_RATE_LIMIT: 'off', LOG_LEVEL: 'warn' };
  const plain = await createKeyward(loadConfig({ ...base, PORT: String(httpPort), ISSUER: `http://127.0.0.1:${httpPort}` }), { logger, store });
  const tls = await createKeyward(loadConfig({
    ...base, PORT: String(httpsPort), ISSUER: `https://127.0.0.1:${httpsPort}`,
    KEYWARD_TLS_CERT_FILE: `${dir}/server.pem`, KEYWARD_TLS_KEY_FILE: `${dir}/server.key`, KEYWARD_TLS_CLIENT_CA_FILE: `${dir}/ca.pem`,
  }), { logger, store });
  await plain.listen();
  await tls.listen();
  await plain.resources.create({ identifier: API, name: 'Orders', signing_alg: 'ES256' });
  const secret = await plain.clients.create({ client_name: 'secret', grant_types: ['client_credentials'], default_resource: API });
  const mtls = await plain.clients.create({
    client_name: 'mtls', grant_types: ['client_credentials'], default_resource: API, token_endpoint_auth_method: 'tls_client_auth',
    tls_client_auth_subject_dn: 'CN=bench-client,O=Bench', tls_client_certificate_bound_access_tokens: true,
  });
  const dpop = await plain.clients.create({ client_name: 'dpop', grant_types: ['client_credentials'], default_resource: API, dpop_bound_access_tokens: true });
  const setup: Setup = {
    http: `http://127.0.0.1:${httpPort}`, https: `https://127.0.0.1:${httpsPort}`,
    secret: { id: secret.client.client_id, secret: secret.client_secret! }, mtls: mtls.client.client_id,
    dpop: { id: dpop.client.client_id, secret: dpop.client_secret! },
  };
  process.stdout.write(`${JSON.stringify(setup)}\n`);
  process.on('SIGTERM', () => {
    void Promise.all([plain.close(), tls.close()]).then(() => store.close()).then(() => process.exit(0));
  });
}

/** RFC 9449 §4.2 proof, signed synchronously so autocannon's setupRequest can make one per request. */
function proofMaker(htu: string): () => string {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const { kty, crv, x, y } = publicKey.export({ format: 'jwk' });
  const header = Buffer.from(JSON.stringify({ typ: 'dpop+jwt', alg: 'ES256', jwk: { kty, crv, x, y } })).toString('base64url');
  const key: KeyObject = privateKey;
  return () => {
    const payload = Buffer.from(JSON.stringify({ jti: randomUUID(), htm: 'POST', htu, iat: Math.floor(Date.now() / 1000) })).toString('base64url');
    const input = `${header}.${payload}`;
    return `${input}.${sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
  };
}

type Scenario = { name: string; run: (seconds: number) => Promise<{ rps: number; bad: number }> };

function scenarios(setup: Setup, dir: string): Scenario[] {
  const body = 'grant_type=client_credentials';
  const form = { 'content-type': 'application/x-www-form-urlencoded' };
  const basic = (c: { id: string; secret: string }) => `Basic ${Buffer.from(`${c.id}:${c.secret}`).toString('base64')}`;
  const ca = readFileSync(`${dir}/ca.pem`);
  const load = async (options: autocannon.Options) => {
    const r = await autocannon({ connections: CONNECTIONS, method: 'POST', body, ...options });
    return { rps: r.requests.average, bad: r.non2xx + r.errors };
  };
  const proof = proofMaker(`${setup.http}/token`);
  return [
    { name: 'secret/http', run: (duration) => load({ url: `${setup.http}/token`, duration, headers: { ...form, authorization: basic(setup.secret) } }) },
    { name: 'secret/https', run: (duration) => load({ url: `${setup.https}/token`, duration, headers: { ...form, authorization: basic(setup.secret) }, tlsOptions: { ca } }) },
    {
      name: 'mtls/https',
      run: (duration) => load({
        url: `${setup.https}/token`, duration, headers: form, body: `${body}&client_id=${setup.mtls}`,
        tlsOptions: { ca, cert: readFileSync(`${dir}/client.pem`), key: readFileSync(`${dir}/client.key`) },
      }),
    },
    {
      // Control: the same request path through setupRequest, without a proof (the hook's own cost).
      name: 'hook/http',
      run: (duration) => load({
        url: `${setup.http}/token`, duration,
        requests: [{
          method: 'POST', path: '/token', body, headers: { ...form, authorization: basic(setup.secret) },
          setupRequest: (req) => ({ ...req, headers: { ...req.headers, 'x-request-id': randomUUID() } }),
        }],
      }),
    },
    {
      name: 'dpop/http',
      run: (duration) => load({
        url: `${setup.http}/token`, duration,
        requests: [{
          method: 'POST', path: '/token', body, headers: { ...form, authorization: basic(setup.dpop) },
          setupRequest: (req) => ({ ...req, headers: { ...req.headers, dpop: proof() } }),
        }],
      }),
    },
  ];
}

async function main(): Promise<void> {
  if (process.argv[2] === '--serve') return serve(process.argv[3]!);
  const database = await optionalScratchDatabase();
  let dir: string | undefined;
  let child: ChildProcess | undefined;
  try {
    dir = mkdtempSync(path.join(os.tmpdir(), 'keyward-bench-bound-'));
    pki(dir);
    child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--serve', dir], {
      cwd: ROOT, env: { ...process.env, ...(database ? { BENCH_DATABASE_URL: database.url } : {}) }, stdio: ['ignore', 'pipe', 'inherit'],
    });
    const setup = await stdoutMatch(child, 'keyward', (out) => {
      const line = out.split('\n').find((l) => l.startsWith('{'));
      return line && out.includes('\n') ? JSON.parse(line) as Setup : undefined;
    });
    const all = scenarios(setup, dir);
    for (const s of all) await s.run(1); // warm-up: JIT, connections, caches
    const results = new Map(all.map((s) => [s.name, [] as { rps: number; bad: number }[]]));
    for (let round = 0; round < RUNS; round++) {
      for (const s of all) results.get(s.name)!.push(await s.run(SECONDS));
    }
    const rate = (name: string) => median(results.get(name)!.map((r) => r.rps));
    console.log(`# store: ${process.env.DATABASE_URL ? 'PostgreSQL' : 'PGlite (embedded)'}`);
    console.log(`# token endpoint, client_credentials, ES256; autocannon ${CONNECTIONS} connections × ${SECONDS} s, alternating, median of ${RUNS}; cores: ${os.cpus().length}`);
    for (const s of all) {
      const runs = results.get(s.name)!;
      console.log(`${s.name.padEnd(13)} ${String(Math.round(rate(s.name))).padStart(6)} req/s  (runs ${runs.map((r) => Math.round(r.rps)).join(', ')}; non-2xx/errors ${runs.reduce((a, r) => a + r.bad, 0)})`);
    }
    console.log(`ratios: mtls/https ÷ secret/https = ${(rate('mtls/https') / rate('secret/https')).toFixed(2)}; `
      + `dpop/http ÷ secret/http = ${(rate('dpop/http') / rate('secret/http')).toFixed(2)}; secret/https ÷ secret/http = ${(rate('secret/https') / rate('secret/http')).toFixed(2)}`);
  } finally {
    if (child) await stopChild(child);
    await database?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

await main();
