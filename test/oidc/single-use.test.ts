import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';
import { ORDERS, postForm, seedOrders, verifyAccessToken } from './service-fixtures.ts';
import { authorize, codeGrant, push, REDIRECT_URI, refreshGrant, seedUserFlow, type UserFlow } from './user-flow.ts';

/**
 * Single use under concurrency: requests fired together (one Promise.all over fetch), so
 * they interleave between oidc-provider's read of the artifact and its consumption.
 */
let db: TestDatabase;
let server: TestServer;
let flow: UserFlow;
const PARALLEL = 6;

before(async () => {
  db = await createTestDatabase();
  server = await startServer(db);
  flow = await seedUserFlow(server.keyward);
});
after(async () => {
  await server?.stop();
  await db?.drop();
});

const token = (body: Record<string, string>) => postForm(server.url, '/token', body);

test('RFC 6749 §4.1.2: a code redeemed by parallel requests gives exactly one token set, and the grant is revoked', async () => {
  for (let trial = 0; trial < 3; trial++) {
    const code = await authorize(server.url, flow);
    const answers = await Promise.all(Array.from({ length: PARALLEL }, () => token(codeGrant(flow, code))));
    const won = answers.filter((a) => a.status === 200);
    assert.equal(won.length, 1, `trial ${trial}: ${answers.map((a) => a.status).join(',')}`);
    for (const lost of answers.filter((a) => a.status !== 200)) {
      assert.equal(lost.status, 400);
      assert.equal(lost.json?.error, 'invalid_grant');
    }
    // As for a sequential replay (RFC 6749 §4.1.2 "SHOULD revoke"): the winner's tokens die too.
    const refresh = await token(refreshGrant(flow, won[0]!.json!.refresh_token as string));
    assert.equal(refresh.status, 400, refresh.text);
    assert.equal(refresh.json?.error, 'invalid_grant');
  }
});

test('RFC 6749 §4.1.2: a code replayed after its redemption is refused and revokes the grant', async () => {
  const code = await authorize(server.url, flow);
  const first = await token(codeGrant(flow, code));
  assert.equal(first.status, 200, first.text);
  const replay = await token(codeGrant(flow, code));
  assert.equal(replay.json?.error, 'invalid_grant');
  assert.equal((await token(refreshGrant(flow, first.json!.refresh_token as string))).json?.error, 'invalid_grant');
});

test('RFC 9700 §4.14.2: parallel refreshes of one refresh token give one new token set, and the grant is revoked', async () => {
  for (let trial = 0; trial < 3; trial++) {
    const code = await authorize(server.url, flow);
    const issued = await token(codeGrant(flow, code));
    assert.equal(issued.status, 200, issued.text);
    const refreshToken = issued.json!.refresh_token as string;
    const answers = await Promise.all(Array.from({ length: PARALLEL }, () => token(refreshGrant(flow, refreshToken))));
    const won = answers.filter((a) => a.status === 200);
    assert.equal(won.length, 1, `trial ${trial}: ${answers.map((a) => `${a.status} ${String(a.json?.error_description)}`).join(', ')}`);
    for (const lost of answers.filter((a) => a.status !== 200)) assert.equal(lost.json?.error, 'invalid_grant');
    // Reuse detected: the chain the winner started is dead as well.
    const next = await token(refreshGrant(flow, won[0]!.json!.refresh_token as string));
    assert.equal(next.status, 400, next.text);
    assert.equal(next.json?.error, 'invalid_grant');
  }
});

test('RFC 9700 §4.14.2: a rotated refresh token used sequentially still works once, then reuse revokes the chain', async () => {
  const code = await authorize(server.url, flow);
  const issued = await token(codeGrant(flow, code));
  const first = issued.json!.refresh_token as string;
  const rotated = await token(refreshGrant(flow, first));
  assert.equal(rotated.status, 200, rotated.text);
  assert.notEqual(rotated.json!.refresh_token, first);
  assert.equal((await token(refreshGrant(flow, first))).json?.error, 'invalid_grant');
  assert.equal((await token(refreshGrant(flow, rotated.json!.refresh_token as string))).json?.error, 'invalid_grant');
});

test('RFC 8707 §2.2: a refresh refused with invalid_target does not rotate, and the refresh token still works', async () => {
  const code = await authorize(server.url, flow);
  const issued = await token(codeGrant(flow, code));
  const refreshToken = issued.json!.refresh_token as string;
  for (const resource of ['https://not-granted.example', 'https://not-granted.example/other']) {
    const refused = await token(refreshGrant(flow, refreshToken, { resource }));
    assert.equal(refused.status, 400, refused.text);
    assert.equal(refused.json?.error, 'invalid_target');
  }
  const next = await token(refreshGrant(flow, refreshToken));
  assert.equal(next.status, 200, next.text);
});

test('RFC 8707 §2.2: a refresh for the resource the token was granted for rotates and yields that API\'s token', async () => {
  await seedOrders(server.keyward);
  // User-flow API scopes are bounded by the user's roles (issue 10 F7).
  await server.keyward.users.setRoles(flow.user.id, ['orders-reader']);
  const code = await authorize(server.url, flow, { resource: ORDERS, scope: 'openid offline_access orders:read' });
  const issued = await token(codeGrant(flow, code, { resource: ORDERS }));
  assert.equal(issued.status, 200, issued.text);
  for (const extra of [{ resource: ORDERS }, {}] as Record<string, string>[]) {
    const refreshToken = issued.json!.refresh_token as string;
    const next = await token(refreshGrant(flow, refreshToken, extra));
    assert.equal(next.status, 200, next.text);
    assert.notEqual(next.json!.refresh_token, refreshToken);
    const { payload } = await verifyAccessToken(server.url, next.json!.access_token as string, ORDERS);
    assert.equal(payload.scope, 'orders:read');
    issued.json!.refresh_token = next.json!.refresh_token;
  }
});

test('RFC 9126 §4: a pushed request_uri starts one authorization; a second use, even before that one ends, is refused', async () => {
  const query = new URLSearchParams({
    client_id: flow.clientId, response_type: 'code', redirect_uri: REDIRECT_URI, scope: 'openid', state: 's',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256',
  });
  const requestUri = await push(server.url, flow, query);
  const use = () => fetch(`${server.url}/auth?${new URLSearchParams({ client_id: flow.clientId, request_uri: requestUri })}`, { redirect: 'manual' });
  const first = await use();
  assert.match(first.headers.get('location') ?? '', /\/interaction\//);
  const again = await use();
  const location = again.headers.get('location') ?? '';
  assert.doesNotMatch(location, /\/interaction\//);
  assert.ok(again.status === 400 || /[?&]error=invalid_request_uri/.test(location), `${again.status} ${location}`);
});

test('RFC 9126 §2.2: a flow started from a pushed request completes, and its code is redeemable once', async () => {
  const code = await authorize(server.url, flow, {}, { pushed: true });
  assert.ok(code.requestUri);
  assert.equal((await token(codeGrant(flow, code))).status, 200);
  assert.equal((await token(codeGrant(flow, code))).json?.error, 'invalid_grant');
});

test('RFC 9126 §4: a pushed request_uri used by parallel requests starts exactly one authorization', async () => {
  const query = new URLSearchParams({
    client_id: flow.clientId, response_type: 'code', redirect_uri: REDIRECT_URI, scope: 'openid', state: 's',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256',
  });
  const requestUri = await push(server.url, flow, query);
  const answers = await Promise.all(Array.from({ length: PARALLEL }, () => fetch(`${server.url}/auth?${new URLSearchParams({ client_id: flow.clientId, request_uri: requestUri })}`, { redirect: 'manual' })));
  const started = answers.filter((a) => (a.headers.get('location') ?? '').includes('/interaction/'));
  assert.equal(started.length, 1, answers.map((a) => `${a.status} ${a.headers.get('location')}`).join('\n'));
});
