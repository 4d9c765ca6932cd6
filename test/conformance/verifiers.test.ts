import assert from 'node:assert/strict';
import { createPublicKey, createHmac } from 'node:crypto';
import { test } from 'node:test';
import { generateKeyPair, SignJWT, type JWK } from 'jose';
import * as oauth from 'oauth4webapi';
import { startServer } from '../support/harness.ts';
import {
  ADMIN_CLIENT_ID, ADMIN_CLIENT_SECRET, basic, claims, clientAuth, get, header, onPglite, ORDERS, postForm, tokens, useOp,
  type Client, type User,
} from './support.ts';

/**
 * Forged and misdirected tokens at every verifier: userinfo (opaque tokens), introspection and
 * the admin API (JWTs), plus an independent RFC 9068 verifier (oauth4webapi) as an API would run it.
 */
let offsetMs = 0;
let app: Client;
let service: Client;
let api: Client;
let user: User;
let real: { api: string; admin: string; opaque: string; idToken: string };

const op = useOp({
  now: () => new Date(Date.now() + offsetMs),
  seed: async (o) => {
    await o.admin.resource(ORDERS, ['orders:read']);
    await o.admin.role('orders-reader', ['orders:read']);
    app = await o.admin.app();
    service = await o.admin.service(['orders-reader']);
    api = await o.admin.service([], { resource_server: ORDERS });
    user = await o.admin.user(['orders-reader']);
    const cc = await postForm(o.discovery.token_endpoint, { grant_type: 'client_credentials', resource: ORDERS, scope: 'orders:read' }, clientAuth(service));
    const set = await tokens(o, app, user, { scope: 'openid' });
    real = { api: cc.json!.access_token as string, admin: await o.admin.token(), opaque: set.access_token as string, idToken: set.id_token as string };
  },
});

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const withHeader = (jwt: string, changes: Record<string, unknown>) => [b64({ ...header(jwt), ...changes }), ...jwt.split('.').slice(1)].join('.');

async function attackerSigned(payload: Record<string, unknown>, kid: string): Promise<string> {
  const { privateKey } = await generateKeyPair('ES256');
  return new SignJWT(payload).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid }).sign(privateKey);
}

/** The forgeries of a real JWT access token `jwt`, by name. */
async function forgeries(jwt: string): Promise<Map<string, string>> {
  const payload = claims(jwt);
  const { keys } = (await get(op().discovery.jwks_uri)).json as { keys: JWK[] };
  const rsa = keys.find((k) => k.kty === 'RSA')!;
  const ec = keys.find((k) => k.kty === 'EC')!;
  const pem = createPublicKey({ key: rsa as import('node:crypto').JsonWebKey, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
  const hsHeader = b64({ alg: 'HS256', typ: 'at+jwt', kid: rsa.kid });
  const hsBody = `${hsHeader}.${b64(payload)}`;
  const [h, p, s] = jwt.split('.');
  return new Map([
    ['alg none', `${b64({ alg: 'none', typ: 'at+jwt', kid: header(jwt).kid })}.${p}.`],
    ['HS256 keyed with the published RSA public key', `${hsBody}.${createHmac('sha256', pem).update(hsBody).digest('base64url')}`],
    ['a kid the JWKS does not hold', await attackerSigned(payload, 'no-such-kid')],
    ['a published kid, signed by another key', await attackerSigned(payload, ec.kid!)],
    ['an untouched signature over a payload widened to role admin', `${h}.${b64({ ...payload, roles: ['admin'], scope: 'orders:read orders:write' })}.${s}`],
    ['typ JWT instead of at+jwt (header changed, signature kept)', withHeader(jwt, { typ: 'JWT' })],
    ['a signature stripped', `${h}.${p}.`],
  ]);
}

const userinfo = (token: string) => get(op().discovery.userinfo_endpoint, { authorization: `Bearer ${token}` });
const introspect = (token: string) => postForm(op().discovery.introspection_endpoint, { token }, clientAuth(api));
const adminCall = (token: string) => op().admin.call('GET', '/clients', undefined, token);

test('RFC 6750 §3.1: userinfo answers 401 invalid_token to every forged token, and to a JWT for another audience', async () => {
  for (const [name, forged] of [...await forgeries(real.api), ['an API access token (aud is not userinfo)', real.api], ['an ID token', real.idToken]] as [string, string][]) {
    const res = await userinfo(forged);
    assert.equal(res.status, 401, `${name}: ${res.status} ${res.text}`);
    assert.match(res.headers.get('www-authenticate') ?? '', /error="invalid_token"/, name);
  }
  assert.equal((await userinfo(real.opaque)).status, 200, 'the real token');
});

test('RFC 7662 §2.2: introspection by the API\'s own client answers active:false for every forged token', async () => {
  for (const [name, forged] of await forgeries(real.api)) {
    const res = await introspect(forged);
    assert.equal(res.status, 200, name);
    assert.deepEqual(res.json, { active: false }, name);
  }
  assert.equal((await introspect(real.api)).json?.active, true, 'the real token');
});

test('RFC 7662 §2.2: an API\'s client sees tokens for another audience (the admin API) and ID tokens as inactive', async () => {
  for (const [name, token] of [['admin token', real.admin], ['ID token', real.idToken]]) {
    assert.deepEqual((await introspect(token!)).json, { active: false }, name);
  }
});

test('RFC 6750 §3.1: the admin API answers 401 to every forged token, to an API token, an ID token and an opaque token', async () => {
  for (const [name, forged] of [...await forgeries(real.admin), ['an orders API token', real.api], ['an ID token', real.idToken], ['an opaque token', real.opaque]] as [string, string][]) {
    const res = await adminCall(forged);
    assert.equal(res.status, 401, `${name}: ${res.status} ${res.text}`);
    assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/, name);
  }
  assert.equal((await adminCall(real.admin)).status, 200, 'the real token');
});

test('RFC 9068 §4: an independent verifier (oauth4webapi validateJwtAccessToken) accepts the real token and refuses every forgery', async () => {
  const as = await oauth.processDiscoveryResponse(new URL(op().url), await oauth.discoveryRequest(new URL(op().url), { algorithm: 'oidc', [oauth.allowInsecureRequests]: true }));
  const request = (token: string) => new Request('https://orders.conformance.test/orders', { headers: { authorization: `Bearer ${token}` } });
  const options = { [oauth.allowInsecureRequests]: true, signingAlgorithms: ['ES256', 'RS256'] };
  const ok = await oauth.validateJwtAccessToken(as, request(real.api), ORDERS, options);
  assert.equal(ok.aud, ORDERS);
  assert.equal(ok.client_id, service.clientId);
  for (const [name, forged] of await forgeries(real.api)) {
    await assert.rejects(oauth.validateJwtAccessToken(as, request(forged), ORDERS, options), `${name} was accepted`);
  }
  await assert.rejects(oauth.validateJwtAccessToken(as, request(real.admin), ORDERS, options), 'a token for another audience was accepted');
});

test('RFC 9068 §4: a token from another issuer signed with a shared key is refused by introspection and the admin API',
  { skip: onPglite ? 'a second issuer on the same store needs PostgreSQL (PGlite is single-process)' : false }, async () => {
    const other = await startServer(op().db, {
      ISSUER: 'http://127.0.0.1:1', KEYWARD_BOOTSTRAP_ADMIN_CLIENT_ID: ADMIN_CLIENT_ID, KEYWARD_BOOTSTRAP_ADMIN_CLIENT_SECRET: ADMIN_CLIENT_SECRET,
    });
    try {
      const mint = async (resource: string) => {
        const res = await postForm(`${other.url}/token`, { grant_type: 'client_credentials', resource }, { authorization: basic(ADMIN_CLIENT_ID, ADMIN_CLIENT_SECRET) });
        assert.equal(res.status, 200, res.text);
        return res.json!.access_token as string;
      };
      const cc = await postForm(`${other.url}/token`, { grant_type: 'client_credentials', resource: ORDERS, scope: 'orders:read' }, clientAuth(service));
      assert.equal(claims(cc.json!.access_token as string).iss, 'http://127.0.0.1:1');
      assert.deepEqual((await introspect(cc.json!.access_token as string)).json, { active: false });
      // The other issuer's admin API registers this issuer's admin audience as an ordinary API.
      const otherAdmin = await mint('http://127.0.0.1:1/admin');
      const registered = await fetch(`${other.url}/admin/v1/resources`, {
        method: 'POST', headers: { authorization: `Bearer ${otherAdmin}`, 'content-type': 'application/json' },
        body: JSON.stringify({ identifier: `${op().url}/admin`, scopes: [] }),
      });
      assert.ok(registered.status === 201 || registered.status === 409, String(registered.status));
      const foreignAdmin = await mint(`${op().url}/admin`);
      assert.equal(claims(foreignAdmin).aud, `${op().url}/admin`);
      assert.equal((await adminCall(foreignAdmin)).status, 401);
    } finally {
      await other.stop();
    }
  });

test('RFC 7519 §4.1.4: an expired token is refused by introspection and the admin API', async () => {
  offsetMs = 400_000;
  try {
    assert.deepEqual((await introspect(real.api)).json, { active: false });
    assert.equal((await adminCall(real.admin)).status, 401);
  } finally {
    offsetMs = 0;
    op().admin.forget();
  }
});

test('RFC 7009 §2.1: a revoked JWT access token is refused by introspection; revocation answers 200 to a forged token', async () => {
  const cc = await postForm(op().discovery.token_endpoint, { grant_type: 'client_credentials', resource: ORDERS, scope: 'orders:read' }, clientAuth(service));
  const jwt = cc.json!.access_token as string;
  const revoked = await postForm(op().discovery.revocation_endpoint, { token: jwt }, clientAuth(service));
  assert.equal(revoked.status, 200, revoked.text);
  assert.deepEqual((await introspect(jwt)).json, { active: false });
  for (const forged of (await forgeries(jwt)).values()) {
    assert.equal((await postForm(op().discovery.revocation_endpoint, { token: forged }, clientAuth(service))).status, 200);
  }
});
