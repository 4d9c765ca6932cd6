import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTlsServer, request as tlsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import Koa from 'koa';
import {
  createVerifier, expressAuth, koaAuth, requireRoles, requireScopes, withAuth, type AccessTokenClaims, type KoaAuthState, type Verifier,
} from 'keyward/verify';
import { API, TestIssuer } from './issuer.ts';

/** The koa, express (plain node:http, structurally the same) and fetch adapters over real HTTP. */
let issuer: TestIssuer;
let verifier: Verifier;

before(async () => {
  issuer = await TestIssuer.start();
  verifier = createVerifier({ issuer: issuer.url, audience: API });
});
after(() => issuer.stop());

async function listen(server: ReturnType<typeof createServer>): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** The RFC 6750 answers every adapter must give, checked against one base URL. */
async function contract(base: string): Promise<void> {
  const get = (headers: Record<string, string> = {}) => fetch(`${base}/orders`, { headers });

  const missing = await get();
  assert.equal(missing.status, 401);
  // RFC 6750 §3.1: no error code when the request had no credentials.
  assert.equal(missing.headers.get('www-authenticate'), 'Bearer realm="orders"');

  const bad = await get({ authorization: 'Bearer not.a.token' });
  assert.equal(bad.status, 401);
  assert.match(bad.headers.get('www-authenticate')!, /^Bearer realm="orders", error="invalid_token", error_description="/);

  const scheme = await get({ authorization: 'Basic Zm9vOmJhcg==' });
  assert.equal(scheme.status, 400);
  assert.match(scheme.headers.get('www-authenticate')!, /error="invalid_request"/);

  const noRole = await get({ authorization: `Bearer ${await issuer.token({ roles: [] })}` });
  assert.equal(noRole.status, 403);
  assert.match(noRole.headers.get('www-authenticate')!, /error="insufficient_scope"/);

  const noScope = await get({ authorization: `Bearer ${await issuer.token({ scope: 'orders:write' })}` });
  assert.equal(noScope.status, 403);
  assert.match(noScope.headers.get('www-authenticate')!, /scope="orders:read"/);

  const ok = await get({ authorization: `Bearer ${await issuer.token()}` });
  assert.equal(ok.status, 200);
  assert.deepEqual(await ok.json(), { sub: 'svc-orders', roles: ['orders-reader'] });
}

const guards = { realm: 'orders', require: [requireScopes('orders:read'), requireRoles('orders-reader')] };

describe('adapters', () => {
  test('express-style middleware (node:http request and response): 401, 400, 403, 200 with req.auth', async () => {
    const auth = expressAuth(verifier, guards);
    const server = createServer((req: IncomingMessage & { auth?: AccessTokenClaims }, res: ServerResponse) => {
      auth(req, res, (error) => {
        if (error) {
          res.statusCode = 500;
          res.end();
          return;
        }
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ sub: req.auth!.sub, roles: req.auth!.roles }));
      });
    });
    try {
      await contract(await listen(server));
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  test('koa middleware: 401, 400, 403, 200 with ctx.state.auth', async () => {
    const app = new Koa<KoaAuthState>();
    app.use(koaAuth(verifier, guards));
    app.use((ctx) => {
      ctx.body = { sub: ctx.state.auth.sub, roles: ctx.state.auth.roles };
    });
    const callback = app.callback();
    const server = createServer((req, res) => void callback(req, res));
    try {
      await contract(await listen(server));
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  test('fetch-style handler: 401, 400, 403, 200 with the claims', async () => {
    const handler = withAuth(verifier, (_req, claims) => Response.json({ sub: claims.sub, roles: claims.roles }), guards);
    // Served through node:http so the same contract() applies.
    const server = createServer((req, res) => {
      void (async () => {
        const headers = new Headers();
        for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers.set(k, v);
        const response = await handler(new Request(`http://${req.headers.host}${req.url}`, { method: req.method, headers }));
        res.statusCode = response.status;
        response.headers.forEach((value, name) => res.setHeader(name, value));
        res.end(await response.text());
      })();
    });
    try {
      await contract(await listen(server));
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  test('an issuer that cannot be reached at all: 503, not 401 (the token may be fine)', async () => {
    const down = createVerifier({ issuer: 'http://127.0.0.1:9', audience: API, jwks: { timeoutSeconds: 1 } });
    const response = await withAuth(down, () => new Response('no'))(new Request('http://x/', { headers: { authorization: `Bearer ${await issuer.token()}` } }));
    assert.equal(response.status, 503);
  });

  test('RFC 8705 §3: express-style middleware on a TLS server takes the client certificate of the connection', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'keyward-mtls-'));
    try {
      const files = (name: string) => ({ key: path.join(dir, `${name}.key`), crt: path.join(dir, `${name}.crt`) });
      for (const name of ['server', 'client', 'other']) {
        const f = files(name);
        execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
          '-subj', `/CN=${name}`, '-keyout', f.key, '-out', f.crt], { stdio: 'ignore' });
      }
      const clientDer = new X509Certificate(readFileSync(files('client').crt)).raw;
      const x5t = createHash('sha256').update(clientDer).digest('base64url');
      const auth = expressAuth(verifier);
      const server = createTlsServer({ key: readFileSync(files('server').key), cert: readFileSync(files('server').crt), requestCert: true, rejectUnauthorized: false },
        (req: IncomingMessage & { auth?: AccessTokenClaims }, res) => auth(req, res, () => res.end(`ok ${req.auth!.sub}`)));
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const port = (server.address() as AddressInfo).port;
      const token = await issuer.token({ cnf: { 'x5t#S256': x5t } });
      const call = (name: string) => new Promise<number>((resolve, reject) => {
        const f = files(name);
        const req = tlsRequest({ host: '127.0.0.1', port, path: '/', rejectUnauthorized: false, key: readFileSync(f.key), cert: readFileSync(f.crt), headers: { authorization: `Bearer ${token}` }, agent: false },
          (res) => { res.resume(); resolve(res.statusCode!); });
        req.on('error', reject);
        req.end();
      });
      try {
        assert.equal(await call('client'), 200);
        assert.equal(await call('other'), 401);
      } finally {
        server.closeAllConnections();
        server.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
