import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { createForwardAuth, type ForwardAuth } from '../../src/verify/server/app.ts';
import { API, TestIssuer } from './issuer.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The forward-auth contract of DESIGN.md "Verifying at the edge", over HTTP. */
describe('forward-auth verifier', () => {
  let issuer: TestIssuer;
  let auth: ForwardAuth;
  let url: string;

  before(async () => {
    issuer = await TestIssuer.start();
    auth = createForwardAuth({ issuer: issuer.url, audience: API });
    url = await auth.listen(0);
  });
  after(async () => {
    await auth.close();
    await issuer.stop();
  });

  const ask = (headers: Record<string, string>, at = '/any/path?x=1') => fetch(`${url}${at}`, { headers });

  test('a valid bearer token on any path: 200 with the identity headers', async () => {
    const res = await ask({ authorization: `Bearer ${await issuer.token({ roles: ['orders-reader', 'auditor'], scope: 'orders:read orders:write' })}` });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-keyward-subject'), 'svc-orders');
    assert.equal(res.headers.get('x-keyward-client-id'), 'svc-orders');
    assert.equal(res.headers.get('x-keyward-roles'), 'orders-reader,auditor');
    assert.equal(res.headers.get('x-keyward-scope'), 'orders:read orders:write');
  });

  test('missing or invalid token: 401 with WWW-Authenticate (RFC 6750 §3)', async () => {
    const missing = await ask({});
    assert.equal(missing.status, 401);
    assert.equal(missing.headers.get('www-authenticate'), 'Bearer');
    const invalid = await ask({ authorization: `Bearer ${await issuer.token({ aud: 'https://other.example' })}` });
    assert.equal(invalid.status, 401);
    assert.match(invalid.headers.get('www-authenticate')!, /^Bearer error="invalid_token"/);
    assert.equal(invalid.headers.get('x-keyward-subject'), null);
    // invalid_request is 400 in RFC 6750, but gateways turn anything but 401/403 into a 500.
    const basic = await ask({ authorization: 'Basic Zm9vOmJhcg==' });
    assert.equal(basic.status, 401);
    assert.match(basic.headers.get('www-authenticate')!, /error="invalid_request"/);
  });

  test('X-Keyward-Require-Roles: a token lacking a listed role is 403, one holding all is 200', async () => {
    const token = await issuer.token({ roles: ['orders-reader'] });
    const forbidden = await ask({ authorization: `Bearer ${token}`, 'x-keyward-require-roles': 'orders-reader, orders-writer' });
    assert.equal(forbidden.status, 403);
    assert.match(forbidden.headers.get('www-authenticate')!, /error="insufficient_scope"/);
    assert.equal((await ask({ authorization: `Bearer ${token}`, 'x-keyward-require-roles': 'orders-reader' })).status, 200);
    assert.equal((await ask({ authorization: `Bearer ${token}`, 'x-keyward-require-scopes': 'orders:write' })).status, 403);
  });

  test('RFC 9449: a DPoP-bound token passes with a proof for the request the gateway names in X-Forwarded-*', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const jwk = await exportJWK(publicKey);
    const token = await issuer.token({ cnf: { jkt: await calculateJwkThumbprint(jwk) } });
    const proof = (htu: string) => new SignJWT({ jti: randomUUID(), htm: 'POST', htu, iat: Math.floor(Date.now() / 1000), ath: createHash('sha256').update(token).digest('base64url') })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk }).sign(privateKey);
    const forwarded = { 'x-forwarded-method': 'POST', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'api.example.test', 'x-forwarded-uri': '/orders?x=1' };
    const ok = await ask({ authorization: `DPoP ${token}`, dpop: await proof('https://api.example.test/orders'), ...forwarded });
    assert.equal(ok.status, 200);
    const elsewhere = await ask({ authorization: `DPoP ${token}`, dpop: await proof('https://api.example.test/invoices'), ...forwarded });
    assert.equal(elsewhere.status, 401);
    assert.match(elsewhere.headers.get('www-authenticate')!, /^DPoP error="invalid_token".*htu/);
    // RFC 9449 §7.1: presented as a plain bearer token, a bound token is refused.
    assert.equal((await ask({ authorization: `Bearer ${token}` })).status, 401);
  });

  test('RFC 8705: a certificate-bound token passes with the certificate the gateway forwards (nginx $ssl_client_escaped_cert)', async () => {
    const der = Buffer.from('30820122300d06092a864886f70d01010105000382010f00', 'hex');
    const pem = `-----BEGIN CERTIFICATE-----\n${der.toString('base64')}\n-----END CERTIFICATE-----\n`;
    const token = await issuer.token({ cnf: { 'x5t#S256': createHash('sha256').update(der).digest('base64url') } });
    assert.equal((await ask({ authorization: `Bearer ${token}`, 'x-keyward-client-cert': encodeURIComponent(pem) })).status, 200);
    assert.equal((await ask({ authorization: `Bearer ${token}` })).status, 401);
  });

  test('/healthz reports the key set; /metrics counts decisions and fetches', async () => {
    const health = await fetch(`${url}/healthz`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: 'ok', keys: 1 });
    const text = await (await fetch(`${url}/metrics`)).text();
    assert.match(text, /keyward_verify_decisions_total\{outcome="allowed"\} [1-9]/);
    assert.match(text, /keyward_verify_decisions_total\{outcome="forbidden"\} [1-9]/);
    assert.match(text, /keyward_verify_jwks_fetches_total\{reason="initial",result="ok"\} 1/);
    assert.match(text, /keyward_verify_duration_seconds_count [1-9]/);
  });
});

describe('npm run verify-server (the entry point in its own process)', () => {
  const entry = path.join(ROOT, 'src/verify/server/main.ts');
  const run = (env: Record<string, string>) => spawn(process.execPath, ['--import', 'tsx', entry], {
    cwd: ROOT, env: { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });

  test('refuses to start without an issuer and audience (exit 2, the reason on stderr)', async () => {
    const child = run({ PORT: '0' });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const [code] = await once(child, 'exit') as [number];
    assert.equal(code, 2);
    assert.match(stderr, /KEYWARD_VERIFY_ISSUER/);
  });

  test('starts from the environment, warms the key set, and verifies', async () => {
    const issuer = await TestIssuer.start();
    const child = run({ KEYWARD_VERIFY_ISSUER: issuer.url, KEYWARD_VERIFY_AUDIENCE: API, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info' });
    try {
      let stdout = '';
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          stdout += d.toString();
          const match = /"url":"([^"]+)"/.exec(stdout);
          if (match) resolve(match[1]!);
        });
        child.once('exit', (code) => reject(new Error(`exited ${code}: ${stdout}`)));
      });
      for (let i = 0; i < 50 && (await fetch(`${url}/healthz`)).status !== 200; i++) await new Promise((r) => setTimeout(r, 100));
      assert.equal(issuer.hits.jwks, 1, 'key set fetched at startup');
      const res = await fetch(`${url}/auth`, { headers: { authorization: `Bearer ${await issuer.token()}` } });
      assert.equal(res.status, 200);
    } finally {
      child.kill('SIGTERM');
      await once(child, 'exit');
      await issuer.stop();
    }
  });
});
