import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as oidc from 'openid-client';
import { purgeRevokedTokens } from '../../src/store/revoked-tokens.ts';
import { TestClock } from '../support/clock.ts';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';
import { auditEvents, basic, ORDERS, postForm, relyingParty, seedOrders } from './service-fixtures.ts';

type Client = { id: string; secret: string };
let db: TestDatabase;
let server: TestServer;
/** A second instance on the same store: revocation must be visible to every instance. */
let peer: TestServer;
// Running: the tokens it stamps are also checked by jose against the real time.
const clock = TestClock.running();
let owner: Client;
let api: Client;
let stranger: Client;

before(async () => {
  db = await createTestDatabase();
  server = await startServer(db, {}, { now: clock.now });
  // Same issuer, as behind a load balancer; its own port.
  peer = await startServer(db, { ISSUER: server.url }, { now: clock.now, store: server.keyward.store });
  await seedOrders(server.keyward, { ttl: 300 });
  owner = await client({ roles: ['orders-reader'] });
  api = await client({ resource_server: ORDERS });
  stranger = await client({});
});
after(async () => {
  await peer?.stop();
  await server?.stop();
  await db?.drop();
});

async function client(input: { roles?: string[]; resource_server?: string }): Promise<Client> {
  const { client: created, client_secret } = await server.keyward.clients.create({
    client_name: 'revocation test', grant_types: ['client_credentials'], roles: input.roles ?? [],
    ...(input.resource_server ? { resource_server: input.resource_server } : {}),
  });
  return { id: created.client_id, secret: client_secret! };
}

async function issue(): Promise<{ token: string; jti: string; exp: number }> {
  const res = await postForm(server.url, '/token', { grant_type: 'client_credentials', resource: ORDERS }, { authorization: basic(owner.id, owner.secret) });
  assert.equal(res.status, 200, res.text);
  const token = res.json!.access_token as string;
  const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { jti: string; exp: number };
  return { token, jti: claims.jti, exp: claims.exp };
}

async function rp(url: string, as: Client): Promise<oidc.Configuration> {
  return relyingParty(url, as.id, oidc.ClientSecretBasic(as.secret));
}

async function active(url: string, token: string): Promise<boolean> {
  const res = await postForm(url, '/token/introspection', { token }, { authorization: basic(owner.id, owner.secret) });
  assert.equal(res.status, 200, res.text);
  return res.json!.active as boolean;
}

test('RFC 7009 §2.1: a client revokes its own JWT access token; it then introspects as inactive on every instance', async () => {
  const { token } = await issue();
  assert.equal(await active(peer.url, token), true);
  await oidc.tokenRevocation(await rp(server.url, owner), token);
  assert.equal(await active(server.url, token), false);
  assert.equal(await active(peer.url, token), false, 'the revocation list is shared through the store');
});

test('RFC 7009 §2.1: the API\'s own client may revoke a token addressed to its API', async () => {
  const { token } = await issue();
  await oidc.tokenRevocation(await rp(server.url, api), token);
  assert.equal(await active(server.url, token), false);
});

test('RFC 7009 §2.1: another client\'s revocation answers 200 but revokes nothing', async () => {
  const { token } = await issue();
  const res = await postForm(server.url, '/token/revocation', { token, token_type_hint: 'access_token' }, { authorization: basic(stranger.id, stranger.secret) });
  assert.equal(res.status, 200);
  assert.equal(await active(server.url, token), true);
});

test('RFC 7009 §2.2: revoking an invalid, forged or already revoked token answers 200', async () => {
  const auth = { authorization: basic(owner.id, owner.secret) };
  assert.equal((await postForm(server.url, '/token/revocation', { token: 'no-such-token' }, auth)).status, 200);
  const { token } = await issue();
  const [h, p] = token.split('.');
  assert.equal((await postForm(server.url, '/token/revocation', { token: `${h}.${p}.AAAA` }, auth)).status, 200);
  assert.equal(await active(server.url, token), true, 'a forged copy revokes nothing');
  assert.equal((await postForm(server.url, '/token/revocation', { token }, auth)).status, 200);
  assert.equal((await postForm(server.url, '/token/revocation', { token }, auth)).status, 200);
  assert.equal(await active(server.url, token), false);
});

test('RFC 7009 §2.1: revocation requires client authentication (401 invalid_client with WWW-Authenticate)', async () => {
  const { token } = await issue();
  const res = await postForm(server.url, '/token/revocation', { token }, { authorization: basic(owner.id, 'wrong') });
  assert.equal(res.status, 401);
  assert.equal(res.json?.error, 'invalid_client');
  assert.match(res.headers.get('www-authenticate') ?? '', /^Basic /);
  assert.equal(await active(server.url, token), true);
});

test('revocation list: an entry is kept until the token expires, then purged', async () => {
  const { token, jti, exp } = await issue();
  await oidc.tokenRevocation(await rp(server.url, owner), token);
  const { prisma } = server.keyward.store;
  const row = await prisma.revokedToken.findUnique({ where: { jti } });
  assert.equal(row?.expiresAt.getTime(), exp * 1000);
  await purgeRevokedTokens(prisma, new Date(exp * 1000 - 1000));
  assert.ok(await prisma.revokedToken.findUnique({ where: { jti } }), 'not purged before expiry');
  await purgeRevokedTokens(prisma, new Date(exp * 1000 + 1000));
  assert.equal(await prisma.revokedToken.findUnique({ where: { jti } }), null);
});

test('audit: a revocation is recorded as token.revoked with the requester and the jti', async () => {
  const { token, jti } = await issue();
  await oidc.tokenRevocation(await rp(server.url, api), token);
  const events = (await auditEvents(server.keyward, 'token.revoked')).filter((e) => e.details.jti === jti);
  assert.equal(events.length, 1);
  assert.equal(events[0]!.actor, api.id);
  assert.equal(events[0]!.subject, owner.id);
  assert.equal(events[0]!.outcome, 'success');
});
