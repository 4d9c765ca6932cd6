import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  basic, claims, clientAuth, get, ORDERS, pkce, postForm, REDIRECT_URI, refreshGrant, tokens, useOp, type Client, type User,
} from './support.ts';

/**
 * Property-based fuzzing of the token, authorization, introspection and revocation endpoints
 * (seeded, bounded): never a 5xx, never a redirect to an unregistered URI, never a token for
 * a client other than the one that authenticated.
 */
const SEED = 20_261_010;
const RUNS = 60;
let app: Client;
let service: Client;
let stranger: Client;
let user: User;
let appTokens: Record<string, unknown>;
const op = useOp({ seed: async ({ admin }) => {
  await admin.resource(ORDERS, ['orders:read', 'orders:write']);
  await admin.role('orders-reader', ['orders:read']);
  app = await admin.app();
  service = await admin.service(['orders-reader']);
  stranger = await admin.service([]);
  user = await admin.user(['orders-reader']);
} });

const junk = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 40 }), fc.constant(''), fc.constant('%00'), fc.constant('a'.repeat(5000)));
const optional = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });

function form(entries: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(entries).filter((e): e is [string, string] => e[1] !== undefined));
}

test('fuzz RFC 6749 §5.2: the token endpoint never answers 5xx and never issues a token to a client other than the authenticated one', async () => {
  appTokens ??= await tokens(op(), app, user, { scope: 'openid offline_access' });
  const clientIds = () => fc.constantFrom(app.clientId, service.clientId, stranger.clientId, 'unknown-client');
  await fc.assert(fc.asyncProperty(
    fc.record({
      grant_type: optional(fc.oneof(fc.constantFrom('authorization_code', 'refresh_token', 'client_credentials', 'password', 'urn:ietf:params:oauth:grant-type:device_code'), junk)),
      client_id: optional(clientIds()),
      code: optional(fc.oneof(junk, fc.constant(appTokens.refresh_token as string))),
      refresh_token: optional(fc.oneof(junk, fc.constant(appTokens.refresh_token as string), fc.constant(appTokens.access_token as string))),
      redirect_uri: optional(fc.oneof(fc.constant(REDIRECT_URI), fc.webUrl(), junk)),
      code_verifier: optional(fc.oneof(fc.constant(pkce().verifier), junk)),
      scope: optional(fc.oneof(fc.constantFrom('openid', 'orders:read', 'orders:read orders:write', 'admin'), junk)),
      resource: optional(fc.oneof(fc.constantFrom(ORDERS, `${op().url}/admin`), fc.webUrl(), junk)),
    }),
    fc.constantFrom('none', 'service', 'stranger', 'wrong', 'garbage'),
    async (fields, auth) => {
      const headers = auth === 'service' ? clientAuth(service) : auth === 'stranger' ? clientAuth(stranger)
        : auth === 'wrong' ? { authorization: basic(service.clientId, 'wrong-secret') } : auth === 'garbage' ? { authorization: 'Basic %%%' } : {};
      const res = await postForm(op().discovery.token_endpoint, form(fields), headers);
      assert.ok(res.status < 500, `${res.status} ${res.text}`);
      if (res.status !== 200) return;
      const holder = auth === 'service' ? service.clientId : auth === 'stranger' ? stranger.clientId : fields.client_id;
      const at = res.json!.access_token as string;
      if (at.split('.').length === 3) assert.equal(claims(at).client_id, holder);
      assert.notEqual(holder, 'unknown-client');
    },
  ), { seed: SEED, numRuns: RUNS });
});

test('fuzz RFC 9700 §4.1: the authorization endpoint never answers 5xx and never redirects anywhere but the registered redirect URI or itself', async () => {
  await fc.assert(fc.asyncProperty(
    fc.record({
      client_id: optional(fc.oneof(fc.constantFrom(app.clientId, service.clientId, 'unknown'), junk)),
      response_type: optional(fc.oneof(fc.constantFrom('code', 'token', 'id_token', 'code id_token', 'none'), junk)),
      redirect_uri: optional(fc.oneof(fc.constant(REDIRECT_URI), fc.constantFrom(`${REDIRECT_URI}/`, `${REDIRECT_URI}?a=b`, 'https://evil.example/cb'), fc.webUrl(), junk)),
      scope: optional(fc.oneof(fc.constantFrom('openid', 'openid offline_access', 'orders:read'), junk)),
      state: optional(junk),
      prompt: optional(fc.oneof(fc.constantFrom('none', 'login', 'consent', 'select_account'), junk)),
      max_age: optional(fc.oneof(fc.constantFrom('0', '-1', '99999999999999999999'), junk)),
      code_challenge: optional(fc.oneof(fc.constant(pkce().challenge), junk)),
      code_challenge_method: optional(fc.oneof(fc.constantFrom('S256', 'plain'), junk)),
      response_mode: optional(fc.oneof(fc.constantFrom('query', 'fragment', 'form_post', 'jwt'), junk)),
      resource: optional(fc.oneof(fc.constant(ORDERS), fc.webUrl(), junk)),
      request_uri: optional(junk),
    }),
    async (fields) => {
      const res = await get(`${op().discovery.authorization_endpoint}?${new URLSearchParams(form(fields))}`);
      assert.ok(res.status < 500, `${res.status} ${res.text.slice(0, 200)}`);
      const location = res.headers.get('location');
      if (!location) return;
      const target = new URL(location, op().url);
      const toClient = target.origin + target.pathname === REDIRECT_URI;
      assert.ok(target.origin === op().url || toClient, `redirected to ${location}`);
      if (toClient) {
        assert.equal(fields.redirect_uri, REDIRECT_URI);
        assert.equal(fields.client_id, app.clientId);
      }
    },
  ), { seed: SEED, numRuns: RUNS });
});

test('fuzz RFC 7662 §2.2: introspection never answers 5xx and shows a stranger nothing of another client\'s tokens', async () => {
  appTokens ??= await tokens(op(), app, user, { scope: 'openid offline_access' });
  const cc = await postForm(op().discovery.token_endpoint, { grant_type: 'client_credentials', resource: ORDERS }, clientAuth(service));
  const others = [appTokens.access_token, appTokens.refresh_token, appTokens.id_token, cc.json!.access_token] as string[];
  await fc.assert(fc.asyncProperty(
    fc.oneof(fc.constantFrom(...others), junk, fc.constantFrom(...others).chain((t) => fc.nat(t.length - 1).map((i) => `${t.slice(0, i)}${t[i] === 'A' ? 'B' : 'A'}${t.slice(i + 1)}`))),
    optional(fc.oneof(fc.constantFrom('access_token', 'refresh_token'), junk)),
    async (t, hint) => {
      const res = await postForm(op().discovery.introspection_endpoint, form({ token: t, token_type_hint: hint }), clientAuth(stranger));
      assert.ok(res.status < 500, `${res.status} ${res.text}`);
      if (res.status === 200) assert.deepEqual(res.json, { active: false });
    },
  ), { seed: SEED, numRuns: RUNS });
});

test('fuzz RFC 7009 §2: revocation never answers 5xx, and a stranger revoking another client\'s tokens revokes nothing', async () => {
  const own = await tokens(op(), app, user, { scope: 'openid offline_access' });
  const victims = [own.access_token, own.refresh_token] as string[];
  await fc.assert(fc.asyncProperty(
    fc.oneof(fc.constantFrom(...victims), junk),
    optional(fc.oneof(fc.constantFrom('access_token', 'refresh_token'), junk)),
    fc.constantFrom('stranger', 'wrong', 'none'),
    async (t, hint, auth) => {
      const headers = auth === 'stranger' ? clientAuth(stranger) : auth === 'wrong' ? { authorization: basic(stranger.clientId, 'nope') } : {};
      const res = await postForm(op().discovery.revocation_endpoint, form({ token: t, token_type_hint: hint }), headers);
      assert.ok(res.status < 500, `${res.status} ${res.text}`);
    },
  ), { seed: SEED, numRuns: RUNS });
  const still = await postForm(op().discovery.token_endpoint, refreshGrant(app, own.refresh_token as string));
  assert.equal(still.status, 200, still.text);
  assert.equal((await get(op().discovery.userinfo_endpoint, { authorization: `Bearer ${own.access_token as string}` })).status, 200);
});
