import assert from 'node:assert/strict';
import { test } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import {
  authorize, basic, claims, clientAuth, codeGrant, ORDERS, postForm, RACE_SKIP, REDIRECT_URI, refreshGrant, RP_ORIGIN, useOp,
  type Client, type Reply, type User,
} from './support.ts';

/** RFC 6749 §4–6, RFC 9700 §4.13–4.14 and RFC 7523 at the token endpoint, from outside. */
let app: Client;
let confidential: Client;
let twoUris: Client;
let service: Client;
let jwtClient: Client;
let jwtKey: CryptoKey;
let user: User;
const SECOND_URI = 'http://127.0.0.1:9/other';

const op = useOp({ seed: async ({ admin }) => {
  await admin.resource(ORDERS, ['orders:read', 'orders:write']);
  await admin.role('orders-reader', ['orders:read']);
  app = await admin.app();
  confidential = await admin.app({ token_endpoint_auth_method: 'client_secret_basic' });
  twoUris = await admin.app({ redirect_uris: [REDIRECT_URI, SECOND_URI] });
  service = await admin.service(['orders-reader']);
  const pair = await generateKeyPair('ES256');
  jwtKey = pair.privateKey;
  jwtClient = await admin.service(['orders-reader'], {
    token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [{ ...await exportJWK(pair.publicKey), kid: 'k1', alg: 'ES256', use: 'sig' }] },
  });
  user = await admin.user(['orders-reader']);
} });

const token = (body: Record<string, string>, headers: Record<string, string> = {}) => postForm(op().discovery.token_endpoint, body, headers);
const codeTokens = async (client: Client = app, params: Record<string, string> = {}) => {
  const res = await token(codeGrant(client, await authorize(op().url, client, user, params)), clientAuth(client));
  assert.equal(res.status, 200, res.text);
  return res.json!;
};
function assertError(res: Reply, status: number, error: string): void {
  assert.equal(res.status, status, res.text);
  assert.equal(res.json?.error, error, res.text);
}

test('RFC 6749 §5.1: token responses carry Cache-Control: no-store (success and error)', async () => {
  const ok = await token({ grant_type: 'client_credentials', resource: ORDERS }, clientAuth(service));
  assert.equal(ok.status, 200, ok.text);
  const failed = await token({ grant_type: 'client_credentials', resource: ORDERS }, { authorization: basic(service.clientId, 'wrong') });
  for (const res of [ok, failed]) assert.match(res.headers.get('cache-control') ?? '', /no-store/);
});

test('RFC 6749 §4.1.2: a code replayed after its redemption is invalid_grant and revokes the refresh token it issued', async () => {
  const code = await authorize(op().url, app, user);
  const first = await token(codeGrant(app, code));
  assert.equal(first.status, 200, first.text);
  assertError(await token(codeGrant(app, code)), 400, 'invalid_grant');
  assertError(await token(refreshGrant(app, first.json!.refresh_token as string)), 400, 'invalid_grant');
});

test('RFC 6749 §4.1.2 (issue 10 F2): a code redeemed by parallel requests gives exactly one token set, and the grant is revoked', { skip: RACE_SKIP }, async () => {
  for (let trial = 0; trial < 3; trial++) {
    const code = await authorize(op().url, app, user);
    const answers = await Promise.all(Array.from({ length: 6 }, () => token(codeGrant(app, code))));
    const won = answers.filter((a) => a.status === 200);
    assert.equal(won.length, 1, `trial ${trial}: ${answers.map((a) => a.status).join(',')}`);
    for (const lost of answers.filter((a) => a.status !== 200)) assertError(lost, 400, 'invalid_grant');
    assertError(await token(refreshGrant(app, won[0]!.json!.refresh_token as string)), 400, 'invalid_grant');
  }
});

test('RFC 6749 §4.1.3: a code is bound to its client — another client redeeming it gets invalid_grant', async () => {
  const code = await authorize(op().url, app, user);
  assertError(await token(codeGrant(twoUris, code)), 400, 'invalid_grant');
  // ...and the attempt burnt nothing the rightful client needs to know about: it is refused or fine, never a 5xx.
  assert.ok((await token(codeGrant(app, code))).status < 500);
});

test('RFC 6749 §4.1.3: a code is bound to its redirect_uri — another registered URI of the same client gets invalid_grant', async () => {
  const code = await authorize(op().url, twoUris, user);
  assertError(await token(codeGrant(twoUris, code, { redirect_uri: SECOND_URI })), 400, 'invalid_grant');
});

test('RFC 6749 §5.2: a grant type the client is not registered for is unauthorized_client', async () => {
  assertError(await token({ grant_type: 'client_credentials', resource: ORDERS }, clientAuth(confidential)), 400, 'unauthorized_client');
  assertError(await token({ grant_type: 'client_credentials', client_id: app.clientId, resource: ORDERS }), 400, 'unauthorized_client');
});

test('RFC 6749 §4.1.2.1: a client without authorization_code cannot start a browser flow', async () => {
  const res = await fetch(`${op().url}/auth?${new URLSearchParams({ client_id: service.clientId, response_type: 'code', scope: 'openid', redirect_uri: REDIRECT_URI })}`, { redirect: 'manual' });
  await res.arrayBuffer();
  assert.ok(res.status >= 400 && res.status < 500, String(res.status));
  assert.equal(res.headers.get('location'), null);
});

test('RFC 9700 §2.4: the password and implicit grants do not exist (unsupported_grant_type)', async () => {
  for (const grant of ['password', 'implicit', 'urn:example:nope']) {
    assertError(await token({ grant_type: grant, username: user.username, password: user.password }, clientAuth(confidential)), 400, 'unsupported_grant_type');
  }
});

test('RFC 6749 §5.2: a wrong secret with Basic is 401 invalid_client with WWW-Authenticate: Basic', async () => {
  const res = await token({ grant_type: 'client_credentials', resource: ORDERS }, { authorization: basic(service.clientId, `${service.secret!}x`) });
  assertError(res, 401, 'invalid_client');
  assert.match(res.headers.get('www-authenticate') ?? '', /^Basic/i);
});

// Keyward accepts client_secret_post from a client registered for client_secret_basic (README:
// both secret methods "work"); that is deliberate and not asserted against here.
test('RFC 6749 §5.2: an unknown client, a missing secret, or two authentication methods at once are refused', async () => {
  const cases: [Record<string, string>, Record<string, string>][] = [
    [{ grant_type: 'client_credentials' }, { authorization: basic('no-such-client', 'x'.repeat(43)) }],
    [{ grant_type: 'client_credentials', client_id: service.clientId }, {}],
    [{ grant_type: 'client_credentials', client_id: service.clientId, client_secret: service.secret! }, clientAuth(service)],
  ];
  for (const [body, headers] of cases) {
    const res = await token({ ...body, resource: ORDERS }, headers);
    assert.ok((res.status === 401 && res.json?.error === 'invalid_client') || (res.status === 400 && res.json?.error === 'invalid_request'), `${JSON.stringify(body)}: ${res.status} ${res.text}`);
  }
});

test('RFC 6749 §6 / RFC 9700 §4.14.2: a refresh rotates the refresh token; reusing the old one fails and revokes the new chain', async () => {
  const first = (await codeTokens()).refresh_token as string;
  const rotated = await token(refreshGrant(app, first));
  assert.equal(rotated.status, 200, rotated.text);
  assert.notEqual(rotated.json!.refresh_token, first);
  assertError(await token(refreshGrant(app, first)), 400, 'invalid_grant');
  assertError(await token(refreshGrant(app, rotated.json!.refresh_token as string)), 400, 'invalid_grant');
});

test('RFC 9700 §4.14.2 (issue 10 F2): parallel refreshes of one refresh token give one new token set, and the grant is revoked', { skip: RACE_SKIP }, async () => {
  for (let trial = 0; trial < 3; trial++) {
    const refreshToken = (await codeTokens()).refresh_token as string;
    const answers = await Promise.all(Array.from({ length: 6 }, () => token(refreshGrant(app, refreshToken))));
    const won = answers.filter((a) => a.status === 200);
    assert.equal(won.length, 1, `trial ${trial}: ${answers.map((a) => a.status).join(',')}`);
    for (const lost of answers.filter((a) => a.status !== 200)) assertError(lost, 400, 'invalid_grant');
    assertError(await token(refreshGrant(app, won[0]!.json!.refresh_token as string)), 400, 'invalid_grant');
  }
});

test('RFC 6749 §6: a refresh token is bound to its client', async () => {
  const refreshToken = (await codeTokens()).refresh_token as string;
  assertError(await token(refreshGrant(twoUris, refreshToken)), 400, 'invalid_grant');
});

test('RFC 6749 §6: a refresh cannot widen the scope originally granted (invalid_scope)', async () => {
  const refreshToken = (await codeTokens(app, { scope: 'openid offline_access' })).refresh_token as string;
  const res = await token(refreshGrant(app, refreshToken, { scope: 'openid offline_access email' }));
  assertError(res, 400, 'invalid_scope');
});

test('RFC 6749 §3.3: client credentials never get a scope their roles do not permit', async () => {
  const res = await token({ grant_type: 'client_credentials', resource: ORDERS, scope: 'orders:read orders:write' }, clientAuth(service));
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json!.scope, 'orders:read');
  assert.equal(claims(res.json!.access_token as string).scope, 'orders:read');
  assertError(await token({ grant_type: 'client_credentials', resource: ORDERS, scope: 'orders:write' }, clientAuth(service)), 400, 'invalid_scope');
});

test('RFC 8707 §2: an unknown resource is invalid_target', async () => {
  assertError(await token({ grant_type: 'client_credentials', resource: 'https://unknown.example' }, clientAuth(service)), 400, 'invalid_target');
});

test('issue 10 F11 (RFC 8707 §2.2): a refresh refused with invalid_target does not burn the refresh token', async () => {
  const refreshToken = (await codeTokens(app, { resource: ORDERS, scope: 'openid offline_access orders:read' })).refresh_token as string;
  assertError(await token(refreshGrant(app, refreshToken, { resource: 'https://unknown.example' })), 400, 'invalid_target');
  const again = await token(refreshGrant(app, refreshToken, { resource: ORDERS }));
  assert.equal(again.status, 200, again.text);
});

test('CORS (RFC 6749 §3.2): the token endpoint answers a public client\'s registered origin, and no other', async () => {
  const preflight = await fetch(op().discovery.token_endpoint, {
    method: 'OPTIONS', headers: { origin: RP_ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
  });
  await preflight.arrayBuffer();
  assert.ok(preflight.status < 300, String(preflight.status));
  const code = await authorize(op().url, app, user);
  const allowed = await token(codeGrant(app, code), { origin: RP_ORIGIN });
  assert.equal(allowed.status, 200, allowed.text);
  assert.equal(allowed.headers.get('access-control-allow-origin'), RP_ORIGIN);
  const code2 = await authorize(op().url, app, user);
  const foreign = await token(codeGrant(app, code2), { origin: 'https://evil.example' });
  assert.notEqual(foreign.headers.get('access-control-allow-origin'), 'https://evil.example');
  assert.notEqual(foreign.headers.get('access-control-allow-origin'), '*');
});

test('CORS: a confidential client\'s token endpoint is not readable from a browser origin', async () => {
  const res = await token({ grant_type: 'client_credentials', resource: ORDERS }, { ...clientAuth(service), origin: 'https://evil.example' });
  assert.notEqual(res.headers.get('access-control-allow-origin'), 'https://evil.example');
  assert.notEqual(res.headers.get('access-control-allow-origin'), '*');
});

async function assertion(claimsSet: Record<string, unknown>, expiresIn: string | number): Promise<string> {
  return new SignJWT(claimsSet).setProtectedHeader({ alg: 'ES256', kid: 'k1' })
    .setIssuer(jwtClient.clientId).setSubject(jwtClient.clientId).setJti(crypto.randomUUID()).setIssuedAt().setExpirationTime(expiresIn)
    .sign(jwtKey);
}
const withAssertion = (jwt: string) => token({
  grant_type: 'client_credentials', resource: ORDERS, client_id: jwtClient.clientId,
  client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: jwt,
});

test('RFC 7523 §3: a private_key_jwt assertion for this issuer is accepted once; its replay is invalid_client', async () => {
  const jwt = await assertion({ aud: op().url }, '2m');
  assert.equal((await withAssertion(jwt)).status, 200);
  assertError(await withAssertion(jwt), 401, 'invalid_client');
});

test('issue 10 F11 (RFC 7523 §3): an assertion whose aud array also names another server is invalid_client', async () => {
  assertError(await withAssertion(await assertion({ aud: [op().url, 'https://other.example'] }, '2m')), 401, 'invalid_client');
});

test('issue 10 F11 (RFC 7523 §3): an assertion valid for a year is invalid_client', async () => {
  assertError(await withAssertion(await assertion({ aud: op().url }, '365d')), 401, 'invalid_client');
});

test('RFC 7523 §3: an assertion signed by another key, for another audience, or expired is invalid_client', async () => {
  const stranger = (await generateKeyPair('ES256')).privateKey;
  const foreign = await new SignJWT({ aud: op().url }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer(jwtClient.clientId)
    .setSubject(jwtClient.clientId).setJti(crypto.randomUUID()).setIssuedAt().setExpirationTime('2m').sign(stranger);
  assertError(await withAssertion(foreign), 401, 'invalid_client');
  assertError(await withAssertion(await assertion({ aud: 'https://other.example' }, '2m')), 401, 'invalid_client');
  assertError(await withAssertion(await assertion({ aud: op().url }, Math.floor(Date.now() / 1000) - 60)), 401, 'invalid_client');
});
