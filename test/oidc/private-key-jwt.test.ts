import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import * as oidc from 'openid-client';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';
import { ORDERS, postForm, relyingParty, seedOrders, verifyAccessToken } from './service-fixtures.ts';

let db: TestDatabase;
let server: TestServer;
let jwksServer: Server;
let jwksFetches = 0;
let inline: { id: string; key: CryptoKey; kid: string };
let remote: { id: string; key: CryptoKey; kid: string };

async function keyPair(): Promise<{ key: CryptoKey; kid: string; jwk: Record<string, unknown> }> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const kid = randomUUID();
  return { key: privateKey, kid, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } };
}

before(async () => {
  db = await createTestDatabase();
  // This instance lets oidc-provider fetch from private networks (the JWKS server of these tests
  // is on loopback); the SSRF test starts one with the default guard.
  server = await startServer(db, { KEYWARD_ALLOW_PRIVATE_JWKS_URI: 'true' });
  await seedOrders(server.keyward);
  const a = await keyPair();
  const created = await server.keyward.clients.create({
    client_name: 'pkjwt inline', grant_types: ['client_credentials'], token_endpoint_auth_method: 'private_key_jwt',
    jwks: { keys: [a.jwk] }, roles: ['orders-reader'], default_resource: ORDERS,
  });
  inline = { id: created.client.client_id, key: a.key, kid: a.kid };

  const b = await keyPair();
  jwksServer = createServer((_req, res) => {
    jwksFetches += 1;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: [b.jwk] }));
  });
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  const { port } = jwksServer.address() as AddressInfo;
  const viaUri = await server.keyward.clients.create({
    client_name: 'pkjwt jwks_uri', grant_types: ['client_credentials'], token_endpoint_auth_method: 'private_key_jwt',
    jwks_uri: `http://127.0.0.1:${port}/jwks.json`, roles: ['orders-reader'], default_resource: ORDERS,
  });
  remote = { id: viaUri.client.client_id, key: b.key, kid: b.kid };
});
after(async () => {
  jwksServer?.close();
  await server?.stop();
  await db?.drop();
});

/** An RFC 7523 client assertion. */
async function assertion(client: { id: string; key: CryptoKey; kid: string }, overrides: { jti?: string; exp?: number; key?: CryptoKey; aud?: string | string[] } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ jti: overrides.jti ?? randomUUID() })
    .setProtectedHeader({ alg: 'ES256', kid: client.kid })
    .setIssuer(client.id).setSubject(client.id).setAudience(overrides.aud ?? `${server.url}/token`)
    .setIssuedAt(now).setExpirationTime(overrides.exp ?? now + 60)
    .sign(overrides.key ?? client.key);
}

function grantWith(clientAssertion: string, extra: Record<string, string> = {}): ReturnType<typeof postForm> {
  return postForm(server.url, '/token', {
    grant_type: 'client_credentials', scope: 'orders:read',
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: clientAssertion, ...extra,
  });
}

test('RFC 7523 §2.2: private_key_jwt with keys registered inline (jwks) authenticates a client-credentials grant', async () => {
  const rp = await relyingParty(server.url, inline.id, oidc.PrivateKeyJwt({ key: inline.key, kid: inline.kid }), { token_endpoint_auth_method: 'private_key_jwt' });
  const tokens = await oidc.clientCredentialsGrant(rp, { scope: 'orders:read' });
  const { payload } = await verifyAccessToken(server.url, tokens.access_token, ORDERS);
  assert.equal(payload.client_id, inline.id);
  assert.equal(payload.scope, 'orders:read');
});

test('SSRF guard: by default a jwks_uri on a loopback or private address is never fetched (401 invalid_client)',
  { skip: process.env.DATABASE_URL ? false : 'a second instance on the same store needs PostgreSQL (PGlite serves one process)' }, async () => {
    const guarded = await startServer(db);
    try {
      const res = await postForm(guarded.url, '/token', {
        grant_type: 'client_credentials', scope: 'orders:read',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: await assertion(remote, { aud: `${guarded.url}/token` }),
      });
      assert.equal(res.status, 401, res.text);
      assert.equal(res.json?.error, 'invalid_client');
      assert.equal(jwksFetches, 0);
    } finally {
      await guarded.stop();
    }
  });

test('RFC 7523 §2.2: private_key_jwt with keys fetched from the client jwks_uri (a loopback one, with KEYWARD_ALLOW_PRIVATE_JWKS_URI)', async () => {
  const rp = await relyingParty(server.url, remote.id, oidc.PrivateKeyJwt({ key: remote.key, kid: remote.kid }), { token_endpoint_auth_method: 'private_key_jwt' });
  const tokens = await oidc.clientCredentialsGrant(rp, { scope: 'orders:read' });
  const { payload } = await verifyAccessToken(server.url, tokens.access_token, ORDERS);
  assert.equal(payload.client_id, remote.id);
  assert.equal(jwksFetches, 1);
});

test('RFC 7523 §3: a replayed client assertion (same jti) is refused with 401 invalid_client', async () => {
  const once = await assertion(inline);
  const first = await grantWith(once);
  assert.equal(first.status, 200, first.text);
  const replay = await grantWith(once);
  assert.equal(replay.status, 401, replay.text);
  assert.equal(replay.json?.error, 'invalid_client');
  assert.ok(replay.headers.get('www-authenticate'));
});

test('RFC 7523 §3: the same assertion sent concurrently is accepted exactly once', async () => {
  const once = await assertion(inline);
  const results = await Promise.all(Array.from({ length: 8 }, () => grantWith(once)));
  assert.deepEqual(results.map((r) => r.status).sort(), [200, 401, 401, 401, 401, 401, 401, 401]);
});

test('RFC 7523 §3: an assertion signed with a key the client did not register is 401 invalid_client', async () => {
  const { privateKey } = await generateKeyPair('ES256');
  const res = await grantWith(await assertion(inline, { key: privateKey }));
  assert.equal(res.status, 401, res.text);
  assert.equal(res.json?.error, 'invalid_client');
});

test('RFC 7523 §3: an expired assertion is 401 invalid_client', async () => {
  const res = await grantWith(await assertion(inline, { exp: Math.floor(Date.now() / 1000) - 120 }));
  assert.equal(res.status, 401, res.text);
  assert.equal(res.json?.error, 'invalid_client');
});

test('RFC 6749 §2.3: a private_key_jwt client cannot fall back to a client secret', async () => {
  const res = await postForm(server.url, '/token', { grant_type: 'client_credentials', client_id: inline.id, client_secret: 'keyward:hashed-secret' });
  assert.equal(res.status, 401, res.text);
  assert.equal(res.json?.error, 'invalid_client');
});

test('RFC 7523 §3: an assertion whose aud array also names another server is 401 invalid_client; this server alone is accepted', async () => {
  const shared = await grantWith(await assertion(inline, { aud: [`${server.url}/token`, 'https://other-as.example'] }));
  assert.equal(shared.status, 401, shared.text);
  assert.equal(shared.json?.error, 'invalid_client');
  for (const aud of [server.url, `${server.url}/token`, [server.url]]) {
    const alone = await grantWith(await assertion(inline, { aud }));
    assert.equal(alone.status, 200, `${JSON.stringify(aud)}: ${alone.text}`);
  }
});

test('RFC 7523 §3: an assertion valid for a year is 401 invalid_client; one expiring within 5 minutes is accepted', async () => {
  const now = Math.floor(Date.now() / 1000);
  const longLived = await grantWith(await assertion(inline, { exp: now + 365 * 86_400 }));
  assert.equal(longLived.status, 401, longLived.text);
  assert.equal(longLived.json?.error, 'invalid_client');
  assert.equal((await grantWith(await assertion(inline, { exp: now + 301 }))).status, 401);
  assert.equal((await grantWith(await assertion(inline, { exp: now + 290 }))).status, 200);
});
