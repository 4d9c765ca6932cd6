import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { calculateJwkThumbprint, decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { ADMIN_ROLE } from '../../src/identity/admin-roles.ts';
import { dpopKey } from '../support/dpop.ts';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';
import { auditEvents } from './service-fixtures.ts';
import { authorize, REDIRECT_URI, seedUserFlow } from './user-flow.ts';

/**
 * RFC 9449 (DPoP) with openid-client as the client: bound access tokens (cnf.jkt) for a
 * confidential and a public client, refresh tokens of public clients bound to the key, server
 * nonces shared by all instances (§8), proof replay refused through the store (§11.1), and the
 * admin API refusing a DPoP-bound token presented without its proof.
 */
const postgres = !!process.env.DATABASE_URL;
const API = 'https://orders.keyward.test';

let db: TestDatabase;
let server: TestServer;
let confidential: { id: string; secret: string };
let admin: { id: string; secret: string };

async function rp(issuer: string, clientId: string, secret?: string): Promise<oidc.Configuration> {
  return oidc.discovery(new URL(issuer), clientId, secret ? { client_secret: secret } : undefined,
    secret ? oidc.ClientSecretBasic(secret) : oidc.None(), { execute: [oidc.allowInsecureRequests] });
}

async function postForm(url: string, form: Record<string, string>, headers: Record<string, string> = {}) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(form) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: JSON.parse(text) as Record<string, unknown> };
}

const basic = (c: { id: string; secret: string }) => ({ authorization: `Basic ${Buffer.from(`${c.id}:${c.secret}`).toString('base64')}` });

before(async () => {
  db = await createTestDatabase();
  server = await startServer(db);
  await server.keyward.resources.create({ identifier: API, name: 'Orders', scopes: ['orders:read'] });
  const created = await server.keyward.clients.create({
    client_name: 'dpop service', grant_types: ['client_credentials'], dpop_bound_access_tokens: true, default_resource: API,
  });
  confidential = { id: created.client.client_id, secret: created.client_secret! };
  const console = await server.keyward.clients.create({
    client_name: 'dpop admin console', grant_types: ['client_credentials'], dpop_bound_access_tokens: true,
    admin_console: true, first_party: true, roles: [ADMIN_ROLE],
  });
  admin = { id: console.client.client_id, secret: console.client_secret! };
});

after(async () => {
  await server?.stop();
  await db?.drop();
});

describe('RFC 9449 §5 DPoP access token request', () => {
  test('§5, §6.1: a confidential client with openid-client gets a DPoP token bound to its key (cnf.jkt)', async () => {
    const config = await rp(server.url, confidential.id, confidential.secret);
    const keyPair = await oidc.randomDPoPKeyPair('ES256');
    const tokens = await oidc.clientCredentialsGrant(config, {}, { DPoP: oidc.getDPoPHandle(config, keyPair) });
    assert.equal(tokens.token_type, 'dpop');
    const claims = decodeJwt(tokens.access_token);
    assert.deepEqual(claims.cnf, { jkt: await calculateJwkThumbprint(await crypto.subtle.exportKey('jwk', keyPair.publicKey) as never) });

    const introspected = await postForm(`${server.url}/token/introspection`, { token: tokens.access_token }, basic(confidential));
    assert.equal(introspected.json.active, true);
    assert.equal(introspected.json.token_type, 'DPoP');
    assert.deepEqual(introspected.json.cnf, claims.cnf);
    const issued = await auditEvents(server.keyward, 'token.issued');
    assert.ok(issued.some((e) => e.actor === confidential.id && e.outcome === 'success' && e.details.bound === 'dpop'), 'audited as DPoP-bound');
  });

  test('§5.2 dpop_bound_access_tokens: a token request without a proof is refused', async () => {
    const res = await postForm(`${server.url}/token`, { grant_type: 'client_credentials' }, basic(confidential));
    assert.equal(res.status, 400, res.text);
    assert.equal(res.json.error, 'invalid_grant');
    const key = await dpopKey();
    const proved = await postForm(`${server.url}/token`, { grant_type: 'client_credentials' }, { ...basic(confidential), dpop: await key.proof('POST', `${server.url}/token`) });
    assert.equal(proved.status, 200, proved.text);
  });

  test('§11.1: a proof is accepted once; its replay on the same instance is refused', async () => {
    const key = await dpopKey();
    const proof = await key.proof('POST', `${server.url}/token`);
    const stored = () => server.keyward.store.prisma.oidcArtifact.count({ where: { model: 'ReplayDetection' } });
    const before = await stored();
    const first = await postForm(`${server.url}/token`, { grant_type: 'client_credentials' }, { ...basic(confidential), dpop: proof });
    assert.equal(first.status, 200, first.text);
    // The proof's jti is held in the store (oidc-provider's ReplayDetection model), not in this process.
    assert.equal(await stored(), before + 1);
    const again = await postForm(`${server.url}/token`, { grant_type: 'client_credentials' }, { ...basic(confidential), dpop: proof });
    assert.equal(again.status, 400, again.text);
    assert.equal(again.json.error, 'invalid_grant');
    // oidc-provider names the reason only in its logs ("DPoP proof JWT Replay detected"): a fresh proof by the same key passes.
    const fresh = await postForm(`${server.url}/token`, { grant_type: 'client_credentials' }, { ...basic(confidential), dpop: await key.proof('POST', `${server.url}/token`) });
    assert.equal(fresh.status, 200, fresh.text);
  });

  test('§5, §5.0: a public authorization-code client: access and refresh token bound; the refresh token needs the same key', async () => {
    const flow = await seedUserFlow(server.keyward, { default_resource: API });
    const config = await rp(server.url, flow.clientId);
    const keyPair = await oidc.randomDPoPKeyPair('ES256');
    const DPoP = oidc.getDPoPHandle(config, keyPair);
    const code = await authorize(server.url, flow, { dpop_jkt: await calculateJwkThumbprint(await crypto.subtle.exportKey('jwk', keyPair.publicKey) as never) });
    const tokens = await oidc.authorizationCodeGrant(config, new URL(`${REDIRECT_URI}?code=${code.code}&iss=${encodeURIComponent(server.url)}`),
      { pkceCodeVerifier: code.verifier, idTokenExpected: true }, undefined, { DPoP });
    assert.equal(tokens.token_type, 'dpop');
    assert.ok(tokens.refresh_token);
    const jkt = (decodeJwt(tokens.access_token).cnf as { jkt: string }).jkt;

    // A thief with the refresh token but not the key: no proof, or a proof by another key.
    const bare = await postForm(`${server.url}/token`, { grant_type: 'refresh_token', client_id: flow.clientId, refresh_token: tokens.refresh_token });
    assert.equal(bare.status, 400, bare.text);
    assert.equal(bare.json.error, 'invalid_grant');
    const other = await dpopKey();
    const wrongKey = await postForm(`${server.url}/token`, { grant_type: 'refresh_token', client_id: flow.clientId, refresh_token: tokens.refresh_token },
      { dpop: await other.proof('POST', `${server.url}/token`) });
    assert.equal(wrongKey.status, 400, wrongKey.text);
    assert.equal(wrongKey.json.error, 'invalid_grant');

    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP });
    assert.equal((decodeJwt(refreshed.access_token).cnf as { jkt: string }).jkt, jkt);
  });
});

describe('RFC 9449 §7.1 the admin API honours DPoP binding', () => {
  test('a DPoP-bound admin token works with its proof; as Bearer, with a replayed proof or another key\'s proof it is refused', async () => {
    const key = await dpopKey();
    const issued = await postForm(`${server.url}/token`, { grant_type: 'client_credentials', resource: `${server.url}/admin` },
      { ...basic(admin), dpop: await key.proof('POST', `${server.url}/token`) });
    assert.equal(issued.status, 200, issued.text);
    const token = issued.json.access_token as string;
    const url = `${server.url}/admin/v1/clients`;
    const call = (headers: Record<string, string>) => fetch(url, { headers });

    const proof = await key.proof('GET', url, { accessToken: token });
    assert.equal((await call({ authorization: `DPoP ${token}`, dpop: proof })).status, 200);
    const replayed = await call({ authorization: `DPoP ${token}`, dpop: proof });
    assert.equal(replayed.status, 401);
    assert.match(replayed.headers.get('www-authenticate') ?? '', /replayed/);
    const stolen = await call({ authorization: `Bearer ${token}` });
    assert.equal(stolen.status, 401);
    assert.match(stolen.headers.get('www-authenticate') ?? '', /^DPoP .*DPoP-bound/);
    const thief = await dpopKey();
    const foreign = await call({ authorization: `DPoP ${token}`, dpop: await thief.proof('GET', url, { accessToken: token }) });
    assert.equal(foreign.status, 401);
  });
});

describe('RFC 9449 §8 server nonces and §11.1 replay across instances', () => {
  let nonceDb: TestDatabase;
  let first: TestServer;
  let second: TestServer | undefined;
  let client: { id: string; secret: string };

  before(async () => {
    nonceDb = await createTestDatabase();
    first = await startServer(nonceDb, { KEYWARD_DPOP_REQUIRE_NONCE: 'true' });
    // Same store and issuer: two instances behind one load balancer (PGlite serves one process).
    if (postgres) second = await startServer(nonceDb, { KEYWARD_DPOP_REQUIRE_NONCE: 'true', ISSUER: first.url });
    await first.keyward.resources.create({ identifier: API, name: 'Orders', scopes: ['orders:read'] });
    const created = await first.keyward.clients.create({ client_name: 'nonce', grant_types: ['client_credentials'], default_resource: API });
    client = { id: created.client.client_id, secret: created.client_secret! };
  });

  after(async () => {
    await second?.stop();
    await first?.stop();
    await nonceDb?.drop();
  });

  test('§8: a proof without a nonce is answered use_dpop_nonce with a DPoP-Nonce; openid-client retries with it', async () => {
    const key = await dpopKey();
    const res = await postForm(`${first.url}/token`, { grant_type: 'client_credentials' }, { ...basic(client), dpop: await key.proof('POST', `${first.url}/token`) });
    assert.equal(res.status, 400, res.text);
    assert.equal(res.json.error, 'use_dpop_nonce');
    const nonce = res.headers.get('dpop-nonce');
    assert.ok(nonce);
    const withNonce = await postForm(`${first.url}/token`, { grant_type: 'client_credentials' },
      { ...basic(client), dpop: await key.proof('POST', `${first.url}/token`, { nonce }) });
    assert.equal(withNonce.status, 200, withNonce.text);

    const config = await rp(first.url, client.id, client.secret);
    const tokens = await oidc.clientCredentialsGrant(config, {}, { DPoP: oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair('ES256')) });
    assert.equal(tokens.token_type, 'dpop');
  });

  test('§8: a nonce issued by one instance is accepted by another (the nonce secret is shared through the store)',
    { skip: postgres ? false : 'a second instance on the same store needs PostgreSQL (PGlite serves one process)' }, async () => {
      const key = await dpopKey();
      const challenge = await postForm(`${first.url}/token`, { grant_type: 'client_credentials' }, { ...basic(client), dpop: await key.proof('POST', `${first.url}/token`) });
      const nonce = challenge.headers.get('dpop-nonce')!;
      const port = new URL(second!.url).port;
      const res = await postForm(`http://127.0.0.1:${port}/token`, { grant_type: 'client_credentials' },
        { ...basic(client), dpop: await key.proof('POST', `${first.url}/token`, { nonce }) });
      assert.equal(res.status, 200, res.text);
    });

  test('§11.1: a proof accepted by one instance is refused as a replay by the other',
    { skip: postgres ? false : 'a second instance on the same store needs PostgreSQL (PGlite serves one process)' }, async () => {
      const key = await dpopKey();
      const challenge = await postForm(`${first.url}/token`, { grant_type: 'client_credentials' }, { ...basic(client), dpop: await key.proof('POST', `${first.url}/token`) });
      const proof = await key.proof('POST', `${first.url}/token`, { nonce: challenge.headers.get('dpop-nonce')! });
      const accepted = await postForm(`${first.url}/token`, { grant_type: 'client_credentials' }, { ...basic(client), dpop: proof });
      assert.equal(accepted.status, 200, accepted.text);
      const port = new URL(second!.url).port;
      const replayed = await postForm(`http://127.0.0.1:${port}/token`, { grant_type: 'client_credentials' }, { ...basic(client), dpop: proof });
      assert.equal(replayed.status, 400, replayed.text);
      assert.equal(replayed.json.error, 'invalid_grant');
      const fresh = await postForm(`http://127.0.0.1:${port}/token`, { grant_type: 'client_credentials' },
        { ...basic(client), dpop: await key.proof('POST', `${first.url}/token`, { nonce: challenge.headers.get('dpop-nonce')! }) });
      assert.equal(fresh.status, 200, fresh.text);
    });
});
