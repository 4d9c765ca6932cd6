import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { createPublicClient, startCallback, type Callback } from '../e2e/support.ts';
import { createTestDatabase, startServer, type TestDatabase } from '../support/harness.ts';

/**
 * Everything oidc-provider publishes derives from ISSUER, never from what a request claims
 * its host is (a shared cache would otherwise serve one attacker's discovery to everyone),
 * and an https issuer gets Secure cookies and HSTS even without X-Forwarded-Proto.
 */
let db: TestDatabase;
let callback: Callback;

before(async () => {
  db = await createTestDatabase();
  callback = await startCallback();
});
after(async () => {
  await callback?.close();
  await db?.drop();
});

/** A raw GET, so Host and the request target are exactly what the test sends. */
function rawGet(base: string, target: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: hostname, port, method: 'GET', path: target, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { body += chunk; });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Every string in a discovery document that looks like a URL. */
function urlsIn(document: Record<string, unknown>): string[] {
  return Object.values(document).filter((v): v is string => typeof v === 'string' && /^[a-z]+:\/\//i.test(v));
}

test('RFC 8414 §3 / OIDC Discovery §4.3: every URL in discovery derives from ISSUER, whatever Host, X-Forwarded-Host or absolute-form target a request sends', async () => {
  const server = await startServer(db, { KEYWARD_PROXY_HOPS: '1' });
  try {
    const attempts: { target: string; headers: Record<string, string> }[] = [
      { target: '/.well-known/openid-configuration', headers: { host: 'evil.example' } },
      { target: '/.well-known/openid-configuration', headers: { 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' } },
      { target: 'http://evil.example/.well-known/openid-configuration', headers: {} },
      { target: '/.well-known/oauth-authorization-server', headers: { host: 'evil.example:8443' } },
    ];
    for (const { target, headers } of attempts) {
      const res = await rawGet(server.url, target, headers);
      assert.equal(res.status, 200, `${target} ${JSON.stringify(headers)}`);
      const document = JSON.parse(res.body) as Record<string, unknown>;
      assert.equal(document.issuer, server.url);
      const urls = urlsIn(document);
      assert.ok(urls.length >= 5, 'token, authorization, jwks, userinfo, … endpoints');
      for (const url of urls) assert.ok(url.startsWith(`${server.url}/`) || url === server.url, `${url} (sent ${JSON.stringify(headers)} ${target})`);
    }
  } finally {
    await server.stop();
  }
});

test('discovery and the JWKS carry an explicit Cache-Control', async () => {
  const server = await startServer(db);
  try {
    for (const path of ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server', '/jwks']) {
      const res = await fetch(`${server.url}${path}`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('cache-control') ?? '', /^public, max-age=\d+$/, path);
    }
  } finally {
    await server.stop();
  }
});

test('RFC 6265 §4.1.2.5 / RFC 6797: with an https issuer, cookies are Secure and responses carry HSTS, without X-Forwarded-Proto', async () => {
  const server = await startServer(db, { ISSUER: 'https://id.example.test' });
  try {
    const clientId = await createPublicClient(server.keyward, callback);
    const discovery = await fetch(`${server.url}/.well-known/openid-configuration`);
    assert.match(discovery.headers.get('strict-transport-security') ?? '', /^max-age=\d{7,}/);
    assert.equal(((await discovery.json()) as { token_endpoint: string }).token_endpoint, 'https://id.example.test/token');
    assert.match((await fetch(`${server.url}/healthz`)).headers.get('strict-transport-security') ?? '', /max-age=/);

    // Plain http to the socket, no X-Forwarded-Proto: as behind a TLS terminator that sends none.
    const auth = new URLSearchParams({
      client_id: clientId, redirect_uri: callback.redirectUri, response_type: 'code', scope: 'openid',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256',
    });
    const res = await fetch(`${server.url}/auth?${auth.toString()}`, { redirect: 'manual' });
    assert.equal(res.status, 303, await res.clone().text());
    const cookies = res.headers.getSetCookie();
    assert.ok(cookies.length > 0, 'the interaction sets cookies');
    for (const cookie of cookies) assert.match(cookie, /;\s*secure/i, cookie);
  } finally {
    await server.stop();
  }
});

test('with an http issuer no HSTS is sent (it would pin a plain-http development host)', async () => {
  const server = await startServer(db);
  try {
    assert.equal((await fetch(`${server.url}/.well-known/openid-configuration`)).headers.get('strict-transport-security'), null);
  } finally {
    await server.stop();
  }
});
