import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  authorize, authParams, browse, claims, clientAuth, codeGrant, CookieJar, get, pkce, postForm, RACE_SKIP, REDIRECT_URI, tokens, useOp,
  type Client, type User,
} from './support.ts';

/** OpenID Foundation Basic OP plan and RFC 9700 §4.1, §4.8 at the authorization endpoint. */
let app: Client;
let confidential: Client;
let thirdParty: Client;
let user: User;

const op = useOp({ seed: async ({ admin }) => {
  app = await admin.app();
  confidential = await admin.app({ token_endpoint_auth_method: 'client_secret_basic' });
  thirdParty = await admin.app({ first_party: false, client_name: 'Third party' });
  user = await admin.user();
} });

const authUrl = (client: Client, params: Record<string, string | undefined> = {}) => `${op().url}/auth?${authParams(client, pkce().challenge, params)}`;

/** The redirect to the client the /auth request answered with directly (no login involved), if any. */
async function firstHop(url: string, jar?: CookieJar): Promise<{ status: number; location: string | null }> {
  const res = await fetch(url, { redirect: 'manual', headers: jar ? { cookie: jar.header() } : {} });
  await res.arrayBuffer();
  return { status: res.status, location: res.headers.get('location') };
}

const MANIPULATIONS = [
  `${REDIRECT_URI}/`, `${REDIRECT_URI}x`, `${REDIRECT_URI}/..`, `${REDIRECT_URI}/../evil`, `${REDIRECT_URI}?x=1`, `${REDIRECT_URI}#f`,
  REDIRECT_URI.replace('/cb', '/CB'), REDIRECT_URI.replace('http:', 'https:'), REDIRECT_URI.replace(':9/', ':10/'),
  REDIRECT_URI.replace('127.0.0.1', 'localhost'), REDIRECT_URI.replace('127.0.0.1', '127.0.0.2'), REDIRECT_URI.replace('://', '://evil.example@'),
  REDIRECT_URI.replace('://', '://127.0.0.1:9@evil.example/'), 'https://evil.example/cb', `${REDIRECT_URI}%2f..`, REDIRECT_URI.replace('/cb', '//cb'),
  REDIRECT_URI.replace('/cb', '/%63b'), 'javascript:alert(1)//', `${REDIRECT_URI} `, REDIRECT_URI.toUpperCase(),
];

test('RFC 9700 §4.1.3, RFC 6749 §3.1.2.4: a redirect_uri differing in any way from the registered one is refused without redirecting', async () => {
  for (const uri of MANIPULATIONS) {
    const hop = await firstHop(authUrl(app, { redirect_uri: uri }));
    assert.ok(hop.status >= 400 && hop.status < 500, `${uri}: ${hop.status} → ${hop.location}`);
    assert.equal(hop.location, null, `${uri} redirected to ${hop.location}`);
  }
});

test('RFC 6749 §4.1.2.1: an unknown client_id or a missing redirect_uri is refused without redirecting', async () => {
  for (const params of [{ client_id: 'no-such-client' }, { redirect_uri: undefined }]) {
    const hop = await firstHop(authUrl(app, params));
    assert.ok(hop.status >= 400 && hop.status < 500, `${JSON.stringify(params)}: ${hop.status}`);
    assert.equal(hop.location, null);
  }
});

async function errorRedirect(client: Client, params: Record<string, string | undefined>): Promise<URLSearchParams> {
  const hop = await firstHop(authUrl(client, params));
  assert.ok(hop.location?.startsWith(`${REDIRECT_URI}?`), `${JSON.stringify(params)}: ${hop.status} ${hop.location}`);
  return new URL(hop.location!).searchParams;
}

test('RFC 7636 §4.4.1, RFC 9700 §2.1.1: an authorization request without code_challenge is refused (public and confidential clients)', async () => {
  for (const client of [app, confidential]) {
    const back = await errorRedirect(client, { code_challenge: undefined, code_challenge_method: undefined });
    assert.equal(back.get('error'), 'invalid_request');
  }
});

test('RFC 9700 §2.1.1: code_challenge_method=plain is refused', async () => {
  const back = await errorRedirect(app, { code_challenge_method: 'plain', code_challenge: pkce().verifier });
  assert.equal(back.get('error'), 'invalid_request');
});

test('RFC 7636 §4.6: a wrong code_verifier is invalid_grant', async () => {
  const code = await authorize(op().url, app, user);
  const res = await postForm(op().discovery.token_endpoint, codeGrant(app, code, { code_verifier: pkce().verifier }));
  assert.equal(res.status, 400);
  assert.equal(res.json?.error, 'invalid_grant');
});

test('RFC 9700 §4.8.2: PKCE downgrade — a code issued for a challenge cannot be redeemed without a code_verifier', async () => {
  for (const client of [app, confidential]) {
    const code = await authorize(op().url, client, user);
    const body = codeGrant(client, code);
    delete body.code_verifier;
    const res = await postForm(op().discovery.token_endpoint, body, clientAuth(client));
    assert.equal(res.status, 400, res.text);
    assert.ok(res.json?.error === 'invalid_grant' || res.json?.error === 'invalid_request', res.text);
  }
});

test('RFC 9700 §2.1.2: response types that put tokens in the front channel are refused and no token leaves', async () => {
  for (const responseType of ['token', 'id_token', 'code token', 'code id_token', 'id_token token', 'none']) {
    const hop = await firstHop(authUrl(app, { response_type: responseType }));
    assert.ok(hop.status < 500);
    assert.ok(!/access_token|id_token=/.test(hop.location ?? ''), `${responseType}: ${hop.location}`);
    if (hop.location) assert.match(hop.location, /error=(unsupported_response_type|invalid_request)/);
  }
});

test('RFC 9207 §2: the authorization response carries iss equal to the issuer, and the state unchanged', async () => {
  const code = await authorize(op().url, app, user, { state: 'st-123' });
  assert.equal(code.redirect.searchParams.get('iss'), op().url);
  assert.equal(code.redirect.searchParams.get('state'), 'st-123');
});

test('OIDC Core §3.1.2.6: an error response also carries iss and state', async () => {
  const back = await errorRedirect(app, { code_challenge_method: 'plain', state: 'st-err' });
  assert.equal(back.get('iss'), op().url);
  assert.equal(back.get('state'), 'st-err');
});

test('OIDC Core §3.1.2.1: prompt=none without a session answers login_required to the client', async () => {
  const back = await errorRedirect(app, { prompt: 'none' });
  assert.equal(back.get('error'), 'login_required');
});

test('OIDC Core §3.1.2.1: with a session, prompt=none gives a code without any page; prompt=login shows the login page again', async () => {
  const first = await authorize(op().url, app, user);
  const silent = await browse(op().url, authUrl(app, { prompt: 'none' }), { jar: first.jar });
  assert.deepEqual(silent.pages, []);
  assert.ok(silent.redirect?.searchParams.get('code'), silent.redirect?.toString());
  const again = await browse(op().url, authUrl(app, { prompt: 'login' }), { jar: first.jar, stopAtPage: true });
  assert.deepEqual(again.pages, ['login']);
});

test('OIDC Core §3.1.2.1: max_age=0 forces a new login; the ID token carries auth_time', async () => {
  const first = await authorize(op().url, app, user);
  const forced = await browse(op().url, authUrl(app, { max_age: '0', prompt: undefined }), { jar: first.jar, stopAtPage: true });
  assert.deepEqual(forced.pages, ['login']);
  const set = await tokens(op(), app, user, { max_age: '3600' });
  const idToken = claims(set.id_token as string);
  assert.equal(typeof idToken.auth_time, 'number');
  assert.ok(Math.abs((idToken.auth_time as number) - Date.now() / 1000) < 120);
});

test('OIDC Core §3.1.2.1: a large max_age with a fresh session skips the login page', async () => {
  const first = await authorize(op().url, app, user);
  const out = await browse(op().url, authUrl(app, { max_age: '3600', prompt: undefined }), { jar: first.jar });
  assert.deepEqual(out.pages, []);
  assert.ok(out.redirect?.searchParams.get('code'));
});

test('OIDC Core §3.1.2.4: a third-party client shows a consent page; deny answers access_denied', async () => {
  const out = await browse(op().url, authUrl(thirdParty), { user, decision: 'deny' });
  assert.deepEqual(out.pages, ['login', 'consent']);
  assert.equal(out.redirect?.searchParams.get('error'), 'access_denied');
  assert.equal(out.redirect?.searchParams.get('code'), null);
});

test('OIDC Core §3.1.2.4: a first-party client shows no consent page', async () => {
  const out = await browse(op().url, authUrl(app), { user });
  assert.deepEqual(out.pages, ['login']);
});

test('OIDC Core §3.1.2.1: prompt=none for a third-party client without consent answers consent_required', async () => {
  const { jar } = await authorize(op().url, app, user);
  const out = await browse(op().url, authUrl(thirdParty, { prompt: 'none', scope: 'openid email' }), { jar });
  assert.ok(['consent_required', 'interaction_required'].includes(out.redirect?.searchParams.get('error') ?? ''), out.redirect?.toString());
});

test('RFC 6749 §10.12: the login form refuses a post without its CSRF token', async () => {
  const out = await browse(op().url, authUrl(app), { stopAtPage: true });
  const action = `${out.page!.url.replace(/\/$/, '')}/login`;
  const post = (body: Record<string, string>, origin: string) => fetch(action, {
    method: 'POST', redirect: 'manual',
    headers: { cookie: out.jar.header(), 'content-type': 'application/x-www-form-urlencoded', origin }, body: new URLSearchParams(body),
  });
  const noCsrf = await post({ username: user.username, password: user.password }, op().url);
  assert.equal(noCsrf.status, 403);
  const forged = await post({ csrf: 'x'.repeat(43), username: user.username, password: user.password }, op().url);
  assert.equal(forged.status, 403);
});

test('RFC 9700 §4.16 (clickjacking): login pages send frame-ancestors \'none\' and X-Frame-Options DENY', async () => {
  const out = await browse(op().url, authUrl(app), { stopAtPage: true });
  const res = await get(out.page!.url, { cookie: out.jar.header() });
  assert.match(res.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
  assert.equal(res.headers.get('x-frame-options'), 'DENY');
  assert.equal(res.headers.get('cache-control'), 'no-store');
});

test('issue 10 F11: the form_post response page carries anti-framing headers', async () => {
  const { jar } = await authorize(op().url, app, user);
  const res = await get(authUrl(app, { response_mode: 'form_post', prompt: 'none' }), { cookie: jar.header() });
  assert.equal(res.status, 200, res.text.slice(0, 200));
  assert.match(res.text, /<form/);
  assert.match(res.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
});

test('issue 10 F11: signing in as another user while a session exists ends with a code for the new user', async () => {
  const { jar } = await authorize(op().url, app, user);
  const other = await op().admin.user();
  const code = await authorize(op().url, app, other, { prompt: 'login' }, jar);
  const res = await postForm(op().discovery.token_endpoint, codeGrant(app, code));
  assert.equal(res.status, 200, res.text);
  assert.equal(claims(res.json!.id_token as string).sub, other.id);
});

test('issue 10 F11: the "end the previous session" page of an account switch carries anti-framing headers', async () => {
  const { jar } = await authorize(op().url, app, user);
  const other = await op().admin.user();
  const out = await browse(op().url, authUrl(app, { prompt: 'login' }), { user: other, jar });
  assert.ok(out.autoSubmitted.length > 0, 'no auto-submitted page on an account switch');
  for (const page of out.autoSubmitted) assert.match(page.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/, page.url);
});

test('RFC 9126 §2.2: a pushed authorization request starts a flow whose code is redeemable', async () => {
  const { verifier, challenge } = pkce();
  const pushed = await postForm(op().discovery.pushed_authorization_request_endpoint!, Object.fromEntries(authParams(confidential, challenge)), clientAuth(confidential));
  assert.equal(pushed.status, 201, pushed.text);
  const out = await browse(op().url, `${op().url}/auth?${new URLSearchParams({ client_id: confidential.clientId, request_uri: pushed.json!.request_uri as string })}`, { user });
  const code = out.redirect?.searchParams.get('code');
  assert.ok(code);
  const res = await postForm(op().discovery.token_endpoint, codeGrant(confidential, { code, verifier, redirect: out.redirect!, jar: out.jar }), clientAuth(confidential));
  assert.equal(res.status, 200, res.text);
});

async function pushOne(): Promise<string> {
  const pushed = await postForm(op().discovery.pushed_authorization_request_endpoint!, Object.fromEntries(authParams(confidential, pkce().challenge)), clientAuth(confidential));
  assert.equal(pushed.status, 201, pushed.text);
  return `${op().url}/auth?${new URLSearchParams({ client_id: confidential.clientId, request_uri: pushed.json!.request_uri as string })}`;
}

const refusedRequestUri = (hop: { status: number; location: string | null }) =>
  hop.status === 400 || /[?&]error=invalid_request_uri/.test(hop.location ?? '');

test('issue 10 F11 (RFC 9126 §4): a pushed request_uri is one-time — a second use is refused', async () => {
  const url = await pushOne();
  const first = await firstHop(url);
  assert.ok(first.location && !first.location.startsWith(REDIRECT_URI), `${first.status} ${first.location}`);
  const again = await firstHop(url);
  assert.ok(refusedRequestUri(again), `${again.status} ${again.location}`);
});

test('issue 10 F11 (RFC 9126 §4): a pushed request_uri used by parallel requests starts exactly one authorization', { skip: RACE_SKIP }, async () => {
  const url = await pushOne();
  const hops = await Promise.all(Array.from({ length: 6 }, () => firstHop(url)));
  const started = hops.filter((h) => !refusedRequestUri(h));
  assert.equal(started.length, 1, hops.map((h) => `${h.status} ${h.location}`).join('\n'));
});
