import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import * as oidc from 'openid-client';
import type { Browser, Page } from 'playwright-core';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';
import { authRequest, createPublicClient, createUser, launchBrowser, rp, startCallback, submitLogin, type Callback, type TestUser } from './support.ts';

/**
 * Issue 10, findings 7 and 10: what a user's token may say is bounded by the user's roles
 * (scopes) and, for a third-party client, by the user's consent (the `roles` claim).
 */
let db: TestDatabase;
let server: TestServer;
let browser: Browser;
let callback: Callback;
let firstParty: oidc.Configuration;
let thirdParty: oidc.Configuration;
const API = 'https://orders.internal';

before(async () => {
  db = await createTestDatabase();
  server = await startServer(db);
  browser = await launchBrowser();
  callback = await startCallback();
  await server.keyward.resources.create({ identifier: API, name: 'Orders API', scopes: ['orders:read', 'orders:write'] });
  await server.keyward.roles.ensure({ name: 'orders-reader', permissions: ['orders:read'] });
  firstParty = await rp(server.url, await createPublicClient(server.keyward, callback, { name: 'Orders Console', firstParty: true }));
  thirdParty = await rp(server.url, await createPublicClient(server.keyward, callback, { name: 'Acme Reports', firstParty: false }));
});
after(async () => {
  await browser?.close();
  await callback?.close();
  await server?.stop();
  await db?.drop();
});

interface Flow {
  tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers;
  /** The consent page's scope list, when one was shown. */
  consentText?: string;
}

/** Signs `user` in through `config` (allowing consent when asked) and redeems the code for `resource`. */
async function signIn(config: oidc.Configuration, user: TestUser, scope: string, resource = API): Promise<Flow> {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const request = await authRequest(config, callback, { scope, resource });
    await page.goto(request.url.href);
    await submitLogin(page, user.username, user.password);
    const consentText = await allowIfAsked(page);
    assert.ok(page.url().startsWith(callback.redirectUri), page.url());
    const tokens = await oidc.authorizationCodeGrant(config, new URL(page.url()), {
      pkceCodeVerifier: request.verifier, expectedState: request.state, expectedNonce: request.nonce,
    }, { resource });
    return { tokens, ...(consentText === undefined ? {} : { consentText }) };
  } finally {
    await context.close();
  }
}

async function allowIfAsked(page: Page): Promise<string | undefined> {
  if (!new URL(page.url()).pathname.startsWith('/interaction/')) return undefined;
  const text = await page.locator('.scopes').innerText();
  await Promise.all([page.waitForURL((url) => url.href.startsWith(callback.redirectUri)), page.getByRole('button', { name: 'Allow' }).click()]);
  return text;
}

async function apiClaims(token: string): Promise<JWTPayload> {
  const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(`${server.url}/jwks`)), { issuer: server.url, audience: API, typ: 'at+jwt' });
  return payload;
}

const scopesOf = (payload: JWTPayload): string[] => (typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : []).sort();

test('RFC 6749 §3.3 (finding 7): a first-party client gets only the API scopes the user\'s roles permit, without a consent page', async () => {
  const user = await createUser(server.keyward, { roles: ['orders-reader'] });
  const { tokens, consentText } = await signIn(firstParty, user, 'openid offline_access orders:read orders:write');
  assert.equal(consentText, undefined, 'first-party: no consent page');
  const claims = await apiClaims(tokens.access_token);
  assert.deepEqual(scopesOf(claims), ['orders:read'], 'orders:write is not permitted by orders-reader');
  assert.ok(!String(tokens.scope).split(' ').includes('orders:write'), `token response scope: ${tokens.scope}`);

  // A user whose roles permit nothing on the API gets no API scope at all.
  const nobody = await createUser(server.keyward, { roles: ['staff'] });
  const none = await signIn(firstParty, nobody, 'openid offline_access orders:read orders:write');
  assert.deepEqual(scopesOf(await apiClaims(none.tokens.access_token)), []);
});

test('RFC 6749 §6 (finding 7): a refreshed token follows the user\'s current role permissions', async () => {
  await server.keyward.roles.ensure({ name: 'orders-clerk', permissions: ['orders:read', 'orders:write'] });
  const user = await createUser(server.keyward, { roles: ['orders-clerk'] });
  const { tokens } = await signIn(firstParty, user, 'openid offline_access orders:read orders:write');
  assert.deepEqual(scopesOf(await apiClaims(tokens.access_token)), ['orders:read', 'orders:write']);

  await server.keyward.roles.update('orders-clerk', { permissions: ['orders:read'] });
  const refreshed = await oidc.refreshTokenGrant(firstParty, tokens.refresh_token!, { resource: API });
  assert.deepEqual(scopesOf(await apiClaims(refreshed.access_token)), ['orders:read'], 'the withdrawn permission is gone after refresh');
});

test('OIDC Core §3.1.2.4 (finding 7): the consent page offers only the API scopes the user\'s roles permit', async () => {
  const user = await createUser(server.keyward, { roles: ['orders-reader'] });
  const { tokens, consentText } = await signIn(thirdParty, user, 'openid offline_access orders:read orders:write');
  assert.ok(consentText, 'a third-party client asks for consent');
  assert.match(consentText, /Use Orders API with permission “orders:read”/);
  assert.doesNotMatch(consentText, /orders:write/);
  assert.deepEqual(scopesOf(await apiClaims(tokens.access_token)), ['orders:read']);
});

test('finding 10: a third-party client granted no `roles` scope gets no `roles` in the access token, nor after refresh', async () => {
  const user = await createUser(server.keyward, { roles: ['orders-reader'] });
  const { tokens } = await signIn(thirdParty, user, 'openid offline_access orders:read');
  const claims = await apiClaims(tokens.access_token);
  assert.equal(claims.sub, user.id);
  assert.equal('roles' in claims, false, `roles leaked: ${JSON.stringify(claims.roles)}`);
  assert.equal(tokens.claims()?.roles, undefined, 'nor in the ID token');

  const refreshed = await oidc.refreshTokenGrant(thirdParty, tokens.refresh_token!, { resource: API });
  assert.equal('roles' in await apiClaims(refreshed.access_token), false);
});

test('finding 10: a third-party client gets `roles` once the user consented to the `roles` scope; narrowing the refresh scope drops them', async () => {
  const user = await createUser(server.keyward, { roles: ['orders-reader'] });
  const { tokens, consentText } = await signIn(thirdParty, user, 'openid offline_access roles orders:read');
  assert.match(consentText ?? '', /See the roles assigned to you/);
  assert.deepEqual((await apiClaims(tokens.access_token)).roles, ['orders-reader']);
  assert.deepEqual(tokens.claims()?.roles, ['orders-reader']);

  const narrowed = await oidc.refreshTokenGrant(thirdParty, tokens.refresh_token!, { resource: API, scope: 'openid offline_access orders:read' });
  assert.equal('roles' in await apiClaims(narrowed.access_token), false);
});

test('finding 10: a first-party client keeps the user\'s roles in the access token without the `roles` scope', async () => {
  const user = await createUser(server.keyward, { roles: ['orders-reader'] });
  const { tokens } = await signIn(firstParty, user, 'openid offline_access orders:read');
  assert.deepEqual((await apiClaims(tokens.access_token)).roles, ['orders-reader']);
  const refreshed = await oidc.refreshTokenGrant(firstParty, tokens.refresh_token!, { resource: API });
  assert.deepEqual((await apiClaims(refreshed.access_token)).roles, ['orders-reader']);
});
