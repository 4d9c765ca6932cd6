import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { decodeJwt, decodeProtectedHeader, importJWK, importSPKI, jwtVerify, SignJWT, type JWK } from 'jose';
import { run } from '../../src/cli/run.ts';
import { createTestDatabase, startServer, TEST_KEK, type TestDatabase, type TestServer } from '../support/harness.ts';
import { onFreshPort, addressInUse } from '../support/net.ts';
import { authorize, codeGrant, seedUserFlow } from '../oidc/user-flow.ts';
import { adminEnv, adminToken } from '../keys/helpers.ts';
import { unsigned } from './issuer.ts';
import { binary } from '../support/binary.ts';
import { nginxPreamble } from '../support/nginx.ts';

/**
 * DESIGN.md "Verifying at the edge" with real gateways: nginx `auth_request` → the forward-auth
 * verifier (npm run verify-server, its own process), and HAProxy 2.6 `jwt_verify` with the keys
 * of `npm run cli -- keys export --pem`, each in front of a tiny upstream that echoes the
 * headers it got. Tokens come from a real Keyward. Each gateway's tests are skipped only when
 * its binary is missing (.ci/run installs both).
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const API = 'https://orders.gateway.test';
const OTHER_API = 'https://billing.gateway.test';

const NGINX = binary('nginx');
const HAPROXY = binary('haproxy');

let db: TestDatabase;
let keyward: TestServer;
let dir: string;
let upstream: { url: string; port: number; server: Server };
let clientId: string;
let clientSecret: string;
/** A user-flow client: its ID tokens carry aud = its client id. */
let flowClientId: string;
let idToken: string;

const children: ChildProcess[] = [];

async function token(resource = API): Promise<string> {
  const res = await fetch(`${keyward.url}/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope: 'orders:read' }),
  });
  const body = (await res.json()) as { access_token?: string };
  assert.equal(res.status, 200, JSON.stringify(body));
  return body.access_token!;
}

/** A token with the claims of a real one, expired, signed by Keyward's own current key. */
async function expiredToken(): Promise<string> {
  const real = await token();
  const header = decodeProtectedHeader(real);
  const claims = decodeJwt(real);
  const key = (await keyward.keyward.keys.loadUsable()).find((k) => k.kid === header.kid)!;
  const past = Math.floor(Date.now() / 1000) - 3600;
  return new SignJWT({ ...claims, iat: past, exp: past + 300 }).setProtectedHeader(header as { alg: string })
    .sign(await importJWK(key.privateJwk as JWK, header.alg));
}

function tampered(jwt: string): string {
  const [h, p, s] = jwt.split('.');
  const claims = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>;
  claims.roles = ['orders-reader', 'orders-admin'];
  return `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`;
}

async function algNone(): Promise<string> {
  const real = await token();
  return unsigned(decodeJwt(real), { kid: decodeProtectedHeader(real).kid });
}

/** Starts a gateway process whose config takes its port; again on a fresh port when it was taken. */
async function startGateway(name: string, start: (port: number) => { args: string[]; bin: string }): Promise<string> {
  return onFreshPort(async (port) => {
    const { bin, args } = start(port);
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (d: Buffer) => { output += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { output += d.toString(); });
    const url = `http://127.0.0.1:${port}`;
    for (let i = 0; i < 100; i++) {
      if (child.exitCode !== null) {
        if (/Address already in use|cannot bind socket/.test(output)) throw addressInUse(port);
        throw new Error(`${name} exited ${child.exitCode}: ${output}`);
      }
      try {
        await fetch(`${url}/__ready`);
        children.push(child);
        return url;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    child.kill('SIGKILL');
    throw new Error(`${name} did not start: ${output}`);
  });
}

before(async () => {
  db = await createTestDatabase();
  dir = mkdtempSync(path.join(os.tmpdir(), 'keyward-gateways-'));
  // A one-minute rotation interval: a rotated key signs within seconds (its staging lead), so
  // the rotation test can wait for it; the JWKS max-age shrinks with it.
  keyward = await startServer(db, { ...adminEnv, KEYWARD_KEY_ROTATION_INTERVAL: '60s' });
  const k = keyward.keyward;
  await k.roles.ensure({ name: 'orders-reader', permissions: ['orders:read'] });
  await k.resources.ensure({ identifier: API, name: 'Orders', scopes: ['orders:read'], access_token_ttl: 300, signing_alg: 'ES256' });
  await k.resources.ensure({ identifier: OTHER_API, name: 'Billing', scopes: ['orders:read'], access_token_ttl: 300, signing_alg: 'ES256' });
  const created = await k.clients.create({
    client_name: 'gateway test service', grant_types: ['client_credentials'], roles: ['orders-reader'],
    allowed_resources: [API, OTHER_API], default_resource: API,
  });
  clientId = created.client.client_id;
  clientSecret = created.client_secret!;
  const flow = await seedUserFlow(k, { allowed_resources: [API] });
  flowClientId = flow.clientId;
  const code = await authorize(keyward.url, flow, { scope: 'openid' });
  const res = await fetch(`${keyward.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(codeGrant(flow, code)) });
  const body = (await res.json()) as { id_token?: string };
  assert.equal(res.status, 200, JSON.stringify(body));
  idToken = body.id_token!;

  const echo = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ path: req.url, headers: req.headers }));
  });
  echo.listen(0, '127.0.0.1');
  await once(echo, 'listening');
  const port = (echo.address() as AddressInfo).port;
  upstream = { url: `http://127.0.0.1:${port}`, port, server: echo };
});

after(async () => {
  for (const child of children) {
    child.kill('SIGTERM');
    if (child.exitCode === null) await once(child, 'exit');
  }
  upstream?.server.closeAllConnections();
  upstream?.server.close();
  await keyward?.stop();
  await db?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The refusals both gateways must give. */
async function refusals(gateway: string, at: string): Promise<void> {
  const get = (auth?: string) => fetch(`${gateway}${at}`, { headers: auth ? { authorization: auth } : {} });
  const cases: [string, string | undefined][] = [
    ['missing', undefined],
    ['tampered', `Bearer ${tampered(await token())}`],
    ['expired', `Bearer ${await expiredToken()}`],
    ['wrong audience', `Bearer ${await token(OTHER_API)}`],
    ['ID token as access token', `Bearer ${idToken}`],
    ['alg none', `Bearer ${await algNone()}`],
  ];
  for (const [name, auth] of cases) {
    const res = await get(auth);
    assert.equal(res.status, 401, `${name}: ${res.status} ${await res.text()}`);
    assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/, name);
  }
}

describe('nginx auth_request → verify-server', { skip: NGINX ? false : 'nginx is not installed (.ci/run installs it)' }, () => {
  let gateway: string;
  let verifyUrl: string;
  let verifyServer: ChildProcess;

  before(async () => {
    // The verifier accepts the flow client's id as an audience too, so that an ID token is
    // refused for what it is (typ), not merely for its audience.
    verifyUrl = await onFreshPort(async (port) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/verify/server/main.ts'], {
        cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'],
        env: { PATH: process.env.PATH, HOME: process.env.HOME, KEYWARD_VERIFY_ISSUER: keyward.url, KEYWARD_VERIFY_AUDIENCE: `${API},${flowClientId}`, PORT: String(port), HOST: '127.0.0.1' },
      });
      let out = '';
      child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
      child.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
      await new Promise<void>((resolve, reject) => {
        const check = () => (/verify-server listening/.test(out) ? resolve() : undefined);
        child.stdout!.on('data', check);
        child.once('exit', () => reject(/EADDRINUSE/.test(out) ? addressInUse(port) : new Error(`verify-server exited: ${out}`)));
      });
      verifyServer = child;
      children.push(child);
      return `http://127.0.0.1:${port}`;
    });
    const verifyPort = new URL(verifyUrl).port;
    const locations = (prefix: string, roles: string) => `
      location ${prefix} {
        set $keyward_require_roles "${roles}";
        auth_request /_keyward_auth;
        auth_request_set $keyward_subject $upstream_http_x_keyward_subject;
        auth_request_set $keyward_client_id $upstream_http_x_keyward_client_id;
        auth_request_set $keyward_roles $upstream_http_x_keyward_roles;
        auth_request_set $keyward_scope $upstream_http_x_keyward_scope;
        proxy_set_header X-Keyward-Subject $keyward_subject;
        proxy_set_header X-Keyward-Client-Id $keyward_client_id;
        proxy_set_header X-Keyward-Roles $keyward_roles;
        proxy_set_header X-Keyward-Scope $keyward_scope;
        proxy_pass http://127.0.0.1:${upstream.port};
      }`;
    gateway = await startGateway('nginx', (port) => {
      const conf = path.join(dir, `nginx-${port}.conf`);
      writeFileSync(conf, `${nginxPreamble(dir, 128)}  upstream keyward_verify { server 127.0.0.1:${verifyPort}; keepalive 8; }
  server {
    listen 127.0.0.1:${port};
    location = /__ready { return 204; }
    location = /_keyward_auth {
      internal;
      proxy_pass http://keyward_verify/auth;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Forwarded-Method $request_method;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $host;
      proxy_set_header X-Forwarded-Uri $request_uri;
      proxy_set_header X-Keyward-Require-Roles $keyward_require_roles;
    }
    ${locations('/admin-only/', 'orders-admin')}
    ${locations('/', '')}
  }
}
`);
      return { bin: NGINX!, args: ['-p', dir, '-e', path.join(dir, 'nginx-error.log'), '-c', conf] };
    });
  });

  test('a valid token passes; the upstream gets the identity headers, never the client\'s own', async () => {
    const res = await fetch(`${gateway}/orders/7`, { headers: { authorization: `Bearer ${await token()}`, 'x-keyward-subject': 'spoofed', 'x-keyward-roles': 'orders-admin' } });
    assert.equal(res.status, 200);
    const seen = (await res.json()) as { path: string; headers: Record<string, string> };
    assert.equal(seen.path, '/orders/7');
    assert.equal(seen.headers['x-keyward-subject'], clientId);
    assert.equal(seen.headers['x-keyward-client-id'], clientId);
    assert.equal(seen.headers['x-keyward-roles'], 'orders-reader');
    assert.equal(seen.headers['x-keyward-scope'], 'orders:read');
  });

  test('missing, tampered, expired, wrong-audience, ID-token-as-access-token and alg none are refused with 401', async () => {
    await refusals(gateway, '/orders/7');
  });

  test('a location requiring a role the token lacks answers 403', async () => {
    const res = await fetch(`${gateway}/admin-only/x`, { headers: { authorization: `Bearer ${await token()}` } });
    // nginx copies WWW-Authenticate from the auth subrequest on 401 only: a 403 arrives bare.
    assert.equal(res.status, 403);
  });

  test('after POST /admin/v1/keys/rotate, a token signed by the new key passes nginx with no restart', async () => {
    const pid = verifyServer.pid;
    const before_ = decodeProtectedHeader(await token()).kid;
    // A rotation that would activate a key some cached JWKS may lack is refused (409 with
    // Retry-After) where rotation is instant; it is then repeated once that time has passed.
    let rotated: Response | undefined;
    for (let attempt = 0; attempt < 5; attempt++) {
      rotated = await fetch(`${keyward.url}/admin/v1/keys/rotate`, {
        method: 'POST', headers: { authorization: `Bearer ${await adminToken(keyward.url)}`, 'content-type': 'application/json' }, body: JSON.stringify({ alg: 'ES256' }),
      });
      if (rotated.status !== 409) break;
      const wait = Math.min(20, Number(rotated.headers.get('retry-after') ?? 5));
      await rotated.body?.cancel();
      await new Promise((r) => setTimeout(r, wait * 1000));
    }
    assert.equal(rotated!.status, 200, await rotated!.text());
    // Instant or after the staging lead (seconds with this interval): poll, bounded.
    let fresh = await token();
    for (let i = 0; i < 90 && decodeProtectedHeader(fresh).kid === before_; i++) {
      await new Promise((r) => setTimeout(r, 500));
      fresh = await token();
    }
    assert.notEqual(decodeProtectedHeader(fresh).kid, before_, 'no token with a new kid within 45 s of the rotation');
    const res = await fetch(`${gateway}/orders/8`, { headers: { authorization: `Bearer ${fresh}` } });
    assert.equal(res.status, 200, await res.text());
    assert.equal(verifyServer.pid, pid);
    assert.equal(verifyServer.exitCode, null);
  });
});

/** `npm run cli -- keys export --pem --out DIR`, in this process on the server's own store. */
async function exportKeys(out: string): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await run(['keys', 'export', '--pem', '--out', out], {
    stdout: { write: (text: string) => { stdout += text; } },
    stderr: new Writable({ write(chunk: Buffer, _e, done) { stderr += chunk.toString(); done(); } }),
    stdin: Readable.from([]),
    env: {
      KEYWARD_KEK: TEST_KEK, KEYWARD_KEK_FILE: path.join(db.dir, 'kek'), KEYWARD_DATA_DIR: path.join(db.dir, 'pgdata'),
      ...(db.url ? { DATABASE_URL: db.url } : {}),
    },
  }, { store: keyward.keyward.store });
  return { code, stdout, stderr };
}

test('keys export --pem writes current, next and previous public keys per algorithm, and the current one verifies Keyward\'s tokens', async () => {
  const out = path.join(dir, 'pem-check');
  const result = await exportKeys(out);
  assert.equal(result.code, 0, result.stderr);
  for (const alg of ['ES256', 'RS256']) {
    for (const role of ['current', 'next', 'previous']) {
      const pem = await readFile(path.join(out, `${alg}-${role}.pem`), 'utf8');
      assert.match(pem, /^-----BEGIN PUBLIC KEY-----\n/);
      assert.doesNotMatch(pem, /PRIVATE/);
    }
  }
  const jwt = await token();
  const pems = await Promise.all(['current', 'next', 'previous'].map((r) => readFile(path.join(out, `ES256-${r}.pem`), 'utf8')));
  const verified = await Promise.any(pems.map(async (pem) => jwtVerify(jwt, await importSPKI(pem, 'ES256'), { issuer: keyward.url, audience: API })));
  assert.equal(verified.payload.client_id, clientId);
});

describe('HAProxy 2.6 jwt_verify with exported PEM keys', { skip: HAPROXY ? false : 'haproxy is not installed (.ci/run installs it)' }, () => {
  let gateway: string;

  before(async () => {
    const keys = path.join(dir, 'haproxy-keys');
    const exported = await exportKeys(keys);
    assert.equal(exported.code, 0, exported.stderr);
    const verifyWith = (role: string) => `{ var(txn.bearer),jwt_verify("ES256","${keys}/ES256-${role}.pem") -m int 1 }`;
    gateway = await startGateway('haproxy', (port) => {
      const conf = path.join(dir, `haproxy-${port}.cfg`);
      writeFileSync(conf, `
global
  nbthread 1
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend api
  bind 127.0.0.1:${port}
  http-request return status 204 if { path /__ready }
  http-request set-var(txn.bearer) http_auth_bearer
  http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('$.alg')
  http-request set-var(txn.typ) var(txn.bearer),jwt_header_query('$.typ')
  http-request set-var(txn.iss) var(txn.bearer),jwt_payload_query('$.iss')
  http-request set-var(txn.aud) var(txn.bearer),jwt_payload_query('$.aud')
  http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('$.exp','int')
  http-request set-var(txn.now) date()
  # The algorithm is pinned (never read from the token: alg none and HMAC confusion), the
  # RFC 9068 typ, issuer, audience and expiry are checked, then the signature by any exported key.
  http-request deny deny_status 401 hdr WWW-Authenticate "Bearer" unless { var(txn.alg) -m str ES256 }
  http-request deny deny_status 401 hdr WWW-Authenticate "Bearer error=\\"invalid_token\\"" unless { var(txn.typ) -m str at+jwt }
  http-request deny deny_status 401 hdr WWW-Authenticate "Bearer error=\\"invalid_token\\"" unless { var(txn.iss) -m str ${keyward.url} }
  http-request deny deny_status 401 hdr WWW-Authenticate "Bearer error=\\"invalid_token\\"" unless { var(txn.aud) -m str ${API} }
  http-request deny deny_status 401 hdr WWW-Authenticate "Bearer error=\\"invalid_token\\"" if { var(txn.exp),sub(txn.now) lt 0 }
  http-request deny deny_status 401 hdr WWW-Authenticate "Bearer error=\\"invalid_token\\"" unless ${verifyWith('current')} || ${verifyWith('next')} || ${verifyWith('previous')}
  http-request set-header X-Keyward-Subject %[var(txn.bearer),jwt_payload_query('$.sub')]
  http-request set-header X-Keyward-Client-Id %[var(txn.bearer),jwt_payload_query('$.client_id')]
  http-request set-header X-Keyward-Scope %[var(txn.bearer),jwt_payload_query('$.scope')]
  default_backend upstream
backend upstream
  server echo 127.0.0.1:${upstream.port}
`);
      return { bin: HAPROXY!, args: ['-db', '-f', conf] };
    });
  });

  test('a valid token passes; the upstream gets the identity headers', async () => {
    const res = await fetch(`${gateway}/orders/7`, { headers: { authorization: `Bearer ${await token()}`, 'x-keyward-subject': 'spoofed' } });
    assert.equal(res.status, 200, await res.clone().text());
    const seen = (await res.json()) as { headers: Record<string, string> };
    assert.equal(seen.headers['x-keyward-subject'], clientId);
    assert.equal(seen.headers['x-keyward-client-id'], clientId);
    assert.equal(seen.headers['x-keyward-scope'], 'orders:read');
  });

  test('missing, tampered, expired, wrong-audience, ID-token-as-access-token and alg none are refused with 401', async () => {
    await refusals(gateway, '/orders/7');
  });
});
