import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as oidc from 'openid-client';
import { TestClock } from '../support/clock.ts';
import { leakedForms, secretForms } from '../support/secrets.ts';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';
import { auditEvents, basic, ORDERS, postForm, relyingParty, seedOrders, verifyAccessToken } from './service-fixtures.ts';

const BILLING = 'https://billing.internal';
let db: TestDatabase;
let server: TestServer;
// Running: the tokens it stamps are also checked by jose against the real time.
const clock = TestClock.running();
let reader: { id: string; secret: string };

before(async () => {
  db = await createTestDatabase();
  server = await startServer(db, {}, { now: clock.now });
  await seedOrders(server.keyward, { ttl: 300 });
  await server.keyward.resources.ensure({ identifier: BILLING, scopes: ['billing:read'], access_token_ttl: 60, signing_alg: 'RS256' });
  await server.keyward.roles.ensure({ name: 'billing-reader', permissions: ['billing:read'] });
  reader = await service({ roles: ['orders-reader'] });
});
after(async () => {
  await server?.stop();
  await db?.drop();
});

async function service(input: { roles?: string[]; method?: 'client_secret_basic' | 'client_secret_post'; default_resource?: string; scope?: string; grant_types?: ('client_credentials' | 'authorization_code')[]; disabled?: boolean } = {}): Promise<{ id: string; secret: string }> {
  const { client, client_secret } = await server.keyward.clients.create({
    client_name: 'service',
    grant_types: input.grant_types ?? ['client_credentials'],
    token_endpoint_auth_method: input.method ?? 'client_secret_basic',
    roles: input.roles ?? [],
    ...(input.grant_types?.includes('authorization_code') ? { redirect_uris: ['https://app.example/cb'] } : {}),
    ...(input.default_resource ? { default_resource: input.default_resource } : {}),
    ...(input.scope ? { scope: input.scope } : {}),
    ...(input.disabled ? { disabled: true } : {}),
  });
  return { id: client.client_id, secret: client_secret! };
}

async function grant(client: { id: string; secret: string }, params: Record<string, string>): Promise<ReturnType<typeof postForm>> {
  return postForm(server.url, '/token', { grant_type: 'client_credentials', ...params }, { authorization: basic(client.id, client.secret) });
}

function assertOAuthError(res: Awaited<ReturnType<typeof postForm>>, status: number, error: string): void {
  assert.equal(res.status, status, res.text);
  assert.equal(res.json?.error, error, res.text);
}

test('RFC 6749 §4.4 + RFC 9068 §2: client_secret_basic yields an at+jwt carrying iss sub aud exp iat jti client_id scope and the client roles', async () => {
  const rp = await relyingParty(server.url, reader.id, oidc.ClientSecretBasic(reader.secret));
  const tokens = await oidc.clientCredentialsGrant(rp, { scope: 'orders:read', resource: ORDERS });
  assert.equal(tokens.token_type.toLowerCase(), 'bearer');
  assert.equal(tokens.scope, 'orders:read');
  const { payload, header } = await verifyAccessToken(server.url, tokens.access_token, ORDERS);
  assert.equal(header.typ, 'at+jwt');
  assert.equal(header.alg, 'ES256');
  for (const claim of ['iss', 'sub', 'aud', 'exp', 'iat', 'jti', 'client_id', 'scope', 'roles']) assert.ok(claim in payload, claim);
  assert.equal(payload.sub, reader.id);
  assert.equal(payload.client_id, reader.id);
  assert.equal(payload.aud, ORDERS);
  assert.equal(payload.scope, 'orders:read');
  assert.deepEqual(payload.roles, ['orders-reader']);
  assert.equal(payload.exp! - payload.iat!, 300, 'lifetime is the resource server access_token_ttl');
  assert.equal(tokens.expires_in, 300);
});

test('RFC 6749 §2.3.1: client_secret_post authenticates at the token endpoint', async () => {
  const poster = await service({ roles: ['orders-reader'], method: 'client_secret_post' });
  const rp = await relyingParty(server.url, poster.id, oidc.ClientSecretPost(poster.secret));
  const tokens = await oidc.clientCredentialsGrant(rp, { scope: 'orders:read', resource: ORDERS });
  const { payload } = await verifyAccessToken(server.url, tokens.access_token, ORDERS);
  assert.equal(payload.client_id, poster.id);
});

test('RFC 8707 §2: a client with a default resource may omit `resource`', async () => {
  const defaulted = await service({ roles: ['orders-reader'], default_resource: ORDERS });
  const rp = await relyingParty(server.url, defaulted.id, oidc.ClientSecretBasic(defaulted.secret));
  const tokens = await oidc.clientCredentialsGrant(rp, { scope: 'orders:read' });
  const { payload } = await verifyAccessToken(server.url, tokens.access_token, ORDERS);
  assert.equal(payload.aud, ORDERS);
});

test('RFC 8707 §2: an unknown resource is 400 invalid_target', async () => {
  assertOAuthError(await grant(reader, { resource: 'https://unknown.internal', scope: 'orders:read' }), 400, 'invalid_target');
});

test('RFC 8707 §2: no resource and no default resource is 400 invalid_target', async () => {
  assertOAuthError(await grant(reader, { scope: 'orders:read' }), 400, 'invalid_target');
});

test('RFC 8707 §2: a resource that is not an absolute URI is 400 invalid_target', async () => {
  assertOAuthError(await grant(reader, { resource: 'orders', scope: 'orders:read' }), 400, 'invalid_target');
});

test('scope rule: a requested scope the roles do not permit is dropped', async () => {
  const res = await grant(reader, { resource: ORDERS, scope: 'orders:read orders:write' });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json?.scope, 'orders:read');
  const { payload } = await verifyAccessToken(server.url, res.json.access_token as string, ORDERS);
  assert.equal(payload.scope, 'orders:read');
});

test('scope rule: a permitted scope the resource does not accept, and an OIDC scope, are dropped', async () => {
  const res = await grant(reader, { resource: ORDERS, scope: 'openid invoices:read orders:read' });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json?.scope, 'orders:read');
});

test('scope rule: the union of the permissions of all the client roles is granted', async () => {
  const both = await service({ roles: ['orders-reader', 'orders-writer'] });
  const res = await grant(both, { resource: ORDERS, scope: 'orders:read orders:write orders:admin' });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json?.scope, 'orders:read orders:write');
  const { payload } = await verifyAccessToken(server.url, res.json.access_token as string, ORDERS);
  assert.deepEqual(payload.roles, ['orders-reader', 'orders-writer']);
});

test('RFC 6749 §5.2: when no requested scope survives the rule the answer is 400 invalid_scope', async () => {
  assertOAuthError(await grant(reader, { resource: ORDERS, scope: 'orders:admin' }), 400, 'invalid_scope');
  assertOAuthError(await grant(reader, { resource: ORDERS, scope: 'openid' }), 400, 'invalid_scope');
});

test('scope rule: without a scope parameter the token has no scope but still carries the roles', async () => {
  const res = await grant(reader, { resource: ORDERS });
  assert.equal(res.status, 200, res.text);
  const { payload } = await verifyAccessToken(server.url, res.json!.access_token as string, ORDERS);
  assert.equal(payload.scope, undefined);
  assert.deepEqual(payload.roles, ['orders-reader']);
});

test('scope rule: a client whose scope metadata names API scopes still authenticates and follows the rule', async () => {
  const scoped = await service({ roles: ['orders-reader'], scope: 'openid orders:read orders:write' });
  const res = await grant(scoped, { resource: ORDERS, scope: 'orders:read orders:write' });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json?.scope, 'orders:read');
});

test('RFC 9068 §2.1: lifetime and signing algorithm come from the resource server', async () => {
  const biller = await service({ roles: ['billing-reader'] });
  const res = await grant(biller, { resource: BILLING, scope: 'billing:read' });
  assert.equal(res.status, 200, res.text);
  const { payload, header } = await verifyAccessToken(server.url, res.json!.access_token as string, BILLING);
  assert.equal(header.alg, 'RS256');
  assert.equal(payload.exp! - payload.iat!, 60);
});

test('RFC 6749 §5.2: a client not registered for client_credentials gets 400 unauthorized_client', async () => {
  const web = await service({ grant_types: ['authorization_code'] });
  assertOAuthError(await grant(web, { resource: ORDERS }), 400, 'unauthorized_client');
});

test('RFC 6749 §5.2: a wrong secret in the Authorization header is 401 invalid_client with a Basic challenge', async () => {
  const res = await grant({ id: reader.id, secret: 'not-the-secret' }, { resource: ORDERS });
  assertOAuthError(res, 401, 'invalid_client');
  assert.match(res.headers.get('www-authenticate') ?? '', /^Basic realm="[^"]+", error="invalid_client"/);
});

test('RFC 6749 §5.2 + RFC 9110 §15.5.2: a wrong client_secret_post secret is 401 invalid_client with WWW-Authenticate', async () => {
  const poster = await service({ method: 'client_secret_post' });
  const res = await postForm(server.url, '/token', { grant_type: 'client_credentials', resource: ORDERS, client_id: poster.id, client_secret: 'wrong' });
  assertOAuthError(res, 401, 'invalid_client');
  assert.match(res.headers.get('www-authenticate') ?? '', /error="invalid_client"/);
});

test('RFC 6749 §5.2: an unknown client is 401 invalid_client', async () => {
  assertOAuthError(await grant({ id: 'no-such-client', secret: 'x'.repeat(43) }, { resource: ORDERS }), 401, 'invalid_client');
});

test('per-client policy: a disabled client is refused with 401 invalid_client', async () => {
  const disabled = await service({ roles: ['orders-reader'], disabled: true });
  assertOAuthError(await grant(disabled, { resource: ORDERS }), 401, 'invalid_client');
});

test('secret rotation: old and new secret both work during the overlap; the old one fails once expired', async () => {
  const rotating = await service({ roles: ['orders-reader'] });
  const { client_secret: fresh } = await server.keyward.clients.rotateSecret(rotating.id, 3600);
  assert.equal((await grant(rotating, { resource: ORDERS })).status, 200);
  assert.equal((await grant({ id: rotating.id, secret: fresh }, { resource: ORDERS })).status, 200);
  clock.advance(3_601_000);
  try {
    assertOAuthError(await grant(rotating, { resource: ORDERS }), 401, 'invalid_client');
    assert.equal((await grant({ id: rotating.id, secret: fresh }, { resource: ORDERS })).status, 200);
  } finally {
    clock.advance(-3_601_000);
  }
});

test('hot path: client, role and resource are served from cache and change when the feed says so', async () => {
  const { keyward } = server;
  const cached = await service({ roles: ['orders-reader'] });
  assert.equal((await grant(cached, { resource: ORDERS })).status, 200);

  // Changed behind the services' back: the cached record still answers (no query per request).
  await keyward.store.prisma.client.update({ where: { clientId: cached.id }, data: { disabled: true } });
  assert.equal((await grant(cached, { resource: ORDERS })).status, 200);
  await keyward.changes.publish({ kind: 'client', id: cached.id });
  assertOAuthError(await grant(cached, { resource: ORDERS }), 401, 'invalid_client');

  await keyward.store.prisma.role.update({ where: { name: 'orders-reader' }, data: { permissions: ['orders:read', 'orders:write'] } });
  assert.equal((await grant(reader, { resource: ORDERS, scope: 'orders:write orders:read' })).json?.scope, 'orders:read');
  await keyward.changes.publish({ kind: 'role', id: 'orders-reader' });
  assert.equal((await grant(reader, { resource: ORDERS, scope: 'orders:read orders:write' })).json?.scope, 'orders:read orders:write');
  await keyward.store.prisma.role.update({ where: { name: 'orders-reader' }, data: { permissions: ['orders:read', 'invoices:read'] } });
  await keyward.changes.publish({ kind: 'role', id: 'orders-reader' });

  await keyward.store.prisma.resourceServer.update({ where: { identifier: ORDERS }, data: { accessTokenTtl: 120 } });
  assert.equal((await grant(reader, { resource: ORDERS })).json?.expires_in, 300);
  await keyward.changes.publish({ kind: 'resource', id: ORDERS });
  assert.equal((await grant(reader, { resource: ORDERS })).json?.expires_in, 120);
  await keyward.store.prisma.resourceServer.update({ where: { identifier: ORDERS }, data: { accessTokenTtl: 300 } });
  await keyward.changes.publish({ kind: 'resource', id: ORDERS });
});

test('audit: token issuance is recorded (buffered) with the jti, audience and scope; failures with their error code', async () => {
  const audited = await service({ roles: ['orders-reader'] });
  const ok = await grant(audited, { resource: ORDERS, scope: 'orders:read' });
  const { payload } = await verifyAccessToken(server.url, ok.json!.access_token as string, ORDERS);
  await grant(audited, { resource: ORDERS, scope: 'orders:admin' });
  const events = (await auditEvents(server.keyward, 'token.issued')).filter((e) => e.actor === audited.id);
  assert.deepEqual(events.map((e) => [e.outcome, e.details.error ?? e.details.jti]), [['success', payload.jti], ['failure', 'invalid_scope']]);
  assert.equal(events[0]!.details.aud, ORDERS);
  assert.equal(events[0]!.details.scope, 'orders:read');
  assert.equal(events[0]!.subject, audited.id);
});

test('no client secret ever reaches a log line or a token response, in any form it travels or is stored in', async () => {
  const poster = await service({ roles: ['orders-reader'], method: 'client_secret_post' });
  const responses = [
    await grant(reader, { resource: ORDERS }),
    await postForm(server.url, '/token', { grant_type: 'client_credentials', resource: ORDERS, client_id: poster.id, client_secret: poster.secret }),
  ];
  assert.deepEqual(responses.map((r) => r.status), [200, 200]);
  // Failures take other paths (client authentication errors are logged and audited).
  const wrong = 'W'.repeat(43);
  responses.push(await grant({ id: reader.id, secret: wrong }, { resource: ORDERS }));
  responses.push(await postForm(server.url, '/token', { grant_type: 'client_credentials', resource: ORDERS, client_id: poster.id, client_secret: wrong }));
  assert.deepEqual(responses.slice(2).map((r) => r.status), [401, 401]);
  await server.keyward.audit.flush();

  const stored = async (clientId: string) => (await server.keyward.store.prisma.clientSecret.findMany({ where: { clientId }, select: { hash: true } })).map((r) => r.hash);
  const cases = [
    { clientId: reader.id, forms: secretForms(reader.id, reader.secret, await stored(reader.id)) },
    { clientId: poster.id, forms: secretForms(poster.id, poster.secret, await stored(poster.id)) },
    { clientId: reader.id, forms: secretForms(reader.id, wrong) },
    { clientId: poster.id, forms: secretForms(poster.id, wrong) },
  ];
  const transcript = responses.map((r) => `${[...r.headers].map(([k, v]) => `${k}: ${v}`).join('\n')}\n${r.text}`).join('\n');
  const audit = JSON.stringify(await server.keyward.store.prisma.auditEvent.findMany({ select: { actor: true, subject: true, details: true } }));
  for (const { clientId, forms } of cases) {
    assert.deepEqual(leakedForms(server.logs.text, forms), [], `a secret of ${clientId} reached a log line`);
    assert.deepEqual(leakedForms(transcript, forms), [], `a secret of ${clientId} reached a token response`);
    assert.deepEqual(leakedForms(audit, forms), [], `a secret of ${clientId} reached the audit trail`);
  }
});
