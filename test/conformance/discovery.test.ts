import assert from 'node:assert/strict';
import { test } from 'node:test';
import { get, rawGet, useOp } from './support.ts';

/** OpenID Foundation Config OP plan: the discovery document and the key set, from outside. */
const op = useOp();

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
const urlsOf = (doc: Record<string, unknown>) => Object.entries(doc).filter((e): e is [string, string] => typeof e[1] === 'string' && /^[a-z]+:\/\//i.test(e[1]));

test('OIDC Discovery §4.3: the issuer equals the URL the document was fetched from, and every endpoint lies under it', () => {
  const { discovery, url } = op();
  assert.equal(discovery.issuer, url);
  for (const [name, value] of urlsOf(discovery).filter(([name]) => name !== 'issuer')) {
    assert.ok(value.startsWith(`${url}/`), `${name} = ${value} is not under the issuer`);
  }
});

test('OIDC Discovery §3: the required metadata is present for a code-flow OP', () => {
  const { discovery } = op();
  for (const name of ['issuer', 'authorization_endpoint', 'token_endpoint', 'jwks_uri', 'response_types_supported', 'subject_types_supported',
    'id_token_signing_alg_values_supported', 'userinfo_endpoint', 'end_session_endpoint', 'introspection_endpoint', 'revocation_endpoint']) {
    assert.ok(discovery[name], `${name} missing`);
  }
  assert.ok((discovery.id_token_signing_alg_values_supported as string[]).includes('RS256'), 'OIDC Core §15.1: RS256 must be supported');
  assert.ok((discovery.scopes_supported as string[]).includes('openid'));
});

test('RFC 9700 §2.1.1: only the code flow, PKCE S256 only, no implicit or password grant', () => {
  const { discovery } = op();
  assert.deepEqual(discovery.response_types_supported, ['code']);
  assert.deepEqual(discovery.code_challenge_methods_supported, ['S256']);
  const grants = discovery.grant_types_supported as string[];
  assert.ok(!grants.includes('implicit') && !grants.includes('password'), grants.join(' '));
});

test('RFC 8725 §3.1: no "none" and no HS* algorithm is offered for anything Keyward signs or verifies', () => {
  const { discovery } = op();
  for (const [name, value] of Object.entries(discovery)) {
    if (!name.endsWith('_alg_values_supported')) continue;
    for (const alg of value as string[]) assert.ok(alg !== 'none' && !alg.startsWith('HS'), `${name} offers ${alg}`);
  }
});

test('RFC 9207 §3: the authorization_response_iss_parameter_supported flag is true', () => {
  assert.equal(op().discovery.authorization_response_iss_parameter_supported, true);
});

test('RFC 7517 §4: the JWKS holds public keys only (no d, p, q, dp, dq, qi, oth or k member)', async () => {
  const { keys } = (await get(op().discovery.jwks_uri)).json as { keys: Record<string, unknown>[] };
  assert.ok(keys.length > 0);
  for (const key of keys) {
    for (const member of PRIVATE_MEMBERS) assert.ok(!(member in key), `key ${String(key.kid)} carries private member ${member}`);
    assert.notEqual(key.kty, 'oct', 'a symmetric key is published');
  }
});

test('RFC 7517 §4.5: every JWKS key has a kid, and kids are unique', async () => {
  const { keys } = (await get(op().discovery.jwks_uri)).json as { keys: Record<string, unknown>[] };
  const kids = keys.map((k) => k.kid);
  assert.ok(kids.every((kid) => typeof kid === 'string' && kid.length > 0));
  assert.equal(new Set(kids).size, kids.length, `duplicate kid in ${kids.join(',')}`);
});

test('RFC 7517 §4.2–4.4: every JWKS key says use "sig" and an asymmetric alg matching its kty; RSA keys are ≥ 2048 bits', async () => {
  const { keys } = (await get(op().discovery.jwks_uri)).json as { keys: Record<string, unknown>[] };
  const ktyOf: Record<string, string> = { RS256: 'RSA', PS256: 'RSA', ES256: 'EC', EdDSA: 'OKP' };
  for (const key of keys) {
    assert.equal(key.use, 'sig');
    assert.ok(typeof key.alg === 'string' && ktyOf[key.alg], `alg ${String(key.alg)}`);
    assert.equal(key.kty, ktyOf[key.alg]);
    if (key.kty === 'RSA') assert.ok(Buffer.from(key.n as string, 'base64url').length * 8 >= 2048);
  }
});

test('RFC 9111 §5.2: the JWKS carries an explicit Cache-Control max-age', async () => {
  const res = await get(op().discovery.jwks_uri);
  assert.match(res.headers.get('cache-control') ?? '', /max-age=\d+/);
});

test('issue 10 F6: discovery carries an explicit Cache-Control', async () => {
  const res = await get(`${op().url}/.well-known/openid-configuration`);
  assert.ok(res.headers.get('cache-control'), 'no Cache-Control on discovery');
});

test('issue 10 F6: every URL in discovery derives from ISSUER whatever Host or X-Forwarded-Host a request sends (or the request is refused)', async () => {
  const { url } = op();
  for (const headers of <Record<string, string>[]>[{ host: 'evil.example' }, { 'x-forwarded-host': 'evil.example' }, { host: 'evil.example', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' }]) {
    // A raw request: fetch() does not let a caller choose the Host header.
    const res = await rawGet(`${url}/.well-known/openid-configuration`, headers);
    if (res.status === 421 || res.status === 400) continue;
    assert.equal(res.status, 200);
    for (const [name, value] of urlsOf(JSON.parse(res.body) as Record<string, unknown>)) {
      assert.ok(value.startsWith(`${url}/`) || value === url, `${JSON.stringify(headers)}: ${name} = ${value}`);
    }
  }
});

test('CORS (OIDC Discovery §4, RFC 7517): discovery and the JWKS are readable from any browser origin', async () => {
  const { url, discovery } = op();
  for (const target of [`${url}/.well-known/openid-configuration`, discovery.jwks_uri]) {
    const res = await get(target, { origin: 'https://spa.example' });
    const allowed = res.headers.get('access-control-allow-origin');
    assert.ok(allowed === '*' || allowed === 'https://spa.example', `${target}: ${allowed}`);
  }
});

test('RFC 8414 §3: an unknown well-known document or endpoint is a 404, not a 5xx', async () => {
  const { url } = op();
  for (const path of ['/.well-known/nope', '/token/../admin', '/auth/%ff', '/jwks/x']) {
    const res = await get(`${url}${path}`);
    assert.ok(res.status < 500, `${path}: ${res.status}`);
  }
});
