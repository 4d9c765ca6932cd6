import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as oauth from 'oauth4webapi';
import * as oidc from 'openid-client';
import {
  authParams, browse, claims, CookieJar, get, pkce, POST_LOGOUT_URI, REDIRECT_URI, tokens, useOp, type Client, type User,
} from './support.ts';

/**
 * OpenID Foundation Basic OP and RP-initiated-logout plans, driven by two independent
 * certified relying-party libraries: openid-client and oauth4webapi. Both validate the ID
 * token (signature, iss, aud, nonce, exp), the state and RFC 9207's iss for us.
 */
let app: Client;
let confidential: Client;
let user: User;
const op = useOp({ seed: async ({ admin }) => {
  app = await admin.app();
  confidential = await admin.app({ token_endpoint_auth_method: 'client_secret_basic' });
  user = await admin.user();
} });

const insecure = { execute: [oidc.allowInsecureRequests] };

test('OIDC Core §3.1 (openid-client): a public client completes the code flow with PKCE; ID token, userinfo and refresh validate', async () => {
  const config = await oidc.discovery(new URL(op().url), app.clientId, undefined, oidc.None(), insecure);
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI, scope: 'openid email profile offline_access', prompt: 'consent', state, nonce,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  const out = await browse(op().url, url.toString(), { user });
  const set = await oidc.authorizationCodeGrant(config, out.redirect!, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true });
  assert.equal(set.claims()!.sub, user.id);
  const info = await oidc.fetchUserInfo(config, set.access_token, user.id);
  assert.equal(info.preferred_username, user.username);
  const refreshed = await oidc.refreshTokenGrant(config, set.refresh_token!);
  assert.equal(refreshed.claims()!.sub, user.id);
});

test('OIDC Core §3.1 (oauth4webapi): a confidential client completes the code flow with client_secret_basic and validates the ID token', async () => {
  const issuer = new URL(op().url);
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oidc', [oauth.allowInsecureRequests]: true }));
  const client: oauth.Client = { client_id: confidential.clientId };
  const { verifier, challenge } = pkce();
  const nonce = oauth.generateRandomNonce();
  const state = oauth.generateRandomState();
  const out = await browse(op().url, `${op().url}/auth?${authParams(confidential, challenge, { nonce, state })}`, { user });
  const params = oauth.validateAuthResponse(as, client, out.redirect!, state);
  const res = await oauth.authorizationCodeGrantRequest(as, client, oauth.ClientSecretBasic(confidential.secret!), params, REDIRECT_URI, verifier,
    { [oauth.allowInsecureRequests]: true });
  const result = await oauth.processAuthorizationCodeResponse(as, client, res, { expectedNonce: nonce, requireIdToken: true });
  assert.equal(oauth.getValidatedIdTokenClaims(result)!.sub, user.id);
});

test('RFC 9207 §2.4 (oauth4webapi): an authorization response whose iss is not the issuer is rejected by the client', async () => {
  const issuer = new URL(op().url);
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oidc', [oauth.allowInsecureRequests]: true }));
  const forged = new URL(`${REDIRECT_URI}?code=x&state=s&iss=${encodeURIComponent('https://evil.example')}`);
  assert.throws(() => oauth.validateAuthResponse(as, { client_id: app.clientId }, forged, 's'));
});

test('OIDC Core §2: the ID token is RS256-signed, names the client as aud and carries the nonce; the access token is not a JWT for userinfo', async () => {
  const set = await tokens(op(), app, user, { scope: 'openid', nonce: 'n-0S6_WzA2Mj' });
  const idToken = claims(set.id_token as string);
  assert.equal(idToken.aud, app.clientId);
  assert.equal(idToken.nonce, 'n-0S6_WzA2Mj');
  assert.equal(idToken.iss, op().url);
  assert.ok((idToken.exp as number) > Date.now() / 1000);
});

async function session(): Promise<{ jar: CookieJar; idToken: string }> {
  const { verifier, challenge } = pkce();
  const out = await browse(op().url, `${op().url}/auth?${authParams(app, challenge, { scope: 'openid' })}`, { user });
  const res = await fetch(op().discovery.token_endpoint, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', client_id: app.clientId, code: out.redirect!.searchParams.get('code')!, code_verifier: verifier, redirect_uri: REDIRECT_URI }),
  });
  return { jar: out.jar, idToken: ((await res.json()) as { id_token: string }).id_token };
}

test('OIDC RP-Initiated Logout §3: logout with id_token_hint and a registered post_logout_redirect_uri ends the session and returns with state', async () => {
  const { jar, idToken } = await session();
  const config = await oidc.discovery(new URL(op().url), app.clientId, undefined, oidc.None(), insecure);
  const url = oidc.buildEndSessionUrl(config, { id_token_hint: idToken, post_logout_redirect_uri: POST_LOGOUT_URI, state: 'bye-1' });
  const page = await get(url.toString(), { cookie: jar.header() });
  assert.equal(page.status, 200, page.text.slice(0, 200));
  // The user confirms: the "Sign out" button submits oidc-provider's form with logout=yes.
  const action = /<form[^>]*action="([^"]+)"/.exec(page.text)![1]!.replace(/&amp;/g, '&');
  const fields = new URLSearchParams([...page.text.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
  fields.set('logout', 'yes');
  const confirmed = await fetch(new URL(action, op().url), {
    method: 'POST', redirect: 'manual', body: fields, headers: { cookie: jar.header(), 'content-type': 'application/x-www-form-urlencoded', origin: op().url },
  });
  jar.take(confirmed);
  await confirmed.arrayBuffer();
  const out = await browse(op().url, new URL(confirmed.headers.get('location') ?? op().url, op().url).toString(), { jar });
  assert.equal(out.redirect?.origin + out.redirect!.pathname, POST_LOGOUT_URI, out.page?.html.slice(0, 300));
  assert.equal(out.redirect!.searchParams.get('state'), 'bye-1');
  // OIDC Core §3.1.2.6: the session is gone.
  const silent = await browse(op().url, `${op().url}/auth?${authParams(app, pkce().challenge, { prompt: 'none' })}`, { jar });
  assert.equal(silent.redirect?.searchParams.get('error'), 'login_required');
});

test('OIDC RP-Initiated Logout §3: an unregistered post_logout_redirect_uri is never redirected to', async () => {
  const { jar, idToken } = await session();
  for (const uri of ['https://evil.example/bye', `${POST_LOGOUT_URI}/x`, `${POST_LOGOUT_URI}?a=1`, REDIRECT_URI]) {
    const res = await get(`${op().discovery.end_session_endpoint}?${new URLSearchParams({ id_token_hint: idToken, post_logout_redirect_uri: uri })}`, { cookie: jar.header() });
    assert.ok(!(res.headers.get('location') ?? '').startsWith(uri), `${uri}: ${res.headers.get('location')}`);
    assert.ok(!res.text.includes(uri.replace(/&/g, '&amp;')) || res.status >= 400, `${uri} appears in the page`);
  }
});

test('OIDC RP-Initiated Logout §2: the logout confirmation page carries anti-framing headers and a CSRF field', async () => {
  const { jar } = await session();
  const res = await get(op().discovery.end_session_endpoint, { cookie: jar.header() });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
  assert.match(res.text, /name="xsrf"/);
});
