import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';

/** Every response body seen in this file, to prove no secret ever comes back. */
const responses: string[] = [];

async function tokenRequest(server: TestServer, clientId: string, secret: string, resource?: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${server.url}/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', ...(resource ? { resource } : {}) }),
  });
  const text = await res.text();
  responses.push(text);
  return { status: res.status, body: JSON.parse(text) as Record<string, unknown> };
}

/** Verifies an admin access token as a resource server would: JWKS from discovery. */
async function verifyAdminToken(server: TestServer, token: string) {
  const discoveryText = await (await fetch(`${server.url}/.well-known/openid-configuration`)).text();
  responses.push(discoveryText);
  const discovery = JSON.parse(discoveryText) as { issuer: string; jwks_uri: string };
  const jwks = createRemoteJWKSet(new URL(discovery.jwks_uri));
  return jwtVerify(token, jwks, { issuer: discovery.issuer, audience: `${server.url}/admin`, typ: 'at+jwt' });
}

function adminClientCount(server: TestServer): Promise<number> {
  return server.keyward.store.prisma.clientRole.count({ where: { roleName: 'admin' } });
}

/** Makes the store look like one from before admin consoles existed (issue 10 F1). */
async function forgetAdminConsoles(server: TestServer): Promise<void> {
  const prisma = server.keyward.store.prisma;
  for (const row of await prisma.client.findMany()) {
    const { admin_console: _dropped, ...metadata } = row.metadata as Record<string, unknown>;
    await prisma.client.update({ where: { clientId: row.clientId }, data: { metadata: metadata as object } });
  }
}

async function adminApiStatus(server: TestServer, token: string): Promise<number> {
  const res = await fetch(`${server.url}/admin/v1/clients`, { headers: { authorization: `Bearer ${token}` } });
  responses.push(await res.text());
  return res.status;
}

describe('bootstrap admin from KEYWARD_BOOTSTRAP_ADMIN_CLIENT_ID/SECRET', () => {
  const clientId = 'ops-admin';
  const secret = randomBytes(32).toString('base64url');
  const env = { KEYWARD_BOOTSTRAP_ADMIN_CLIENT_ID: clientId, KEYWARD_BOOTSTRAP_ADMIN_CLIENT_SECRET: secret };
  const logs: string[] = [];
  let db: TestDatabase;
  let server: TestServer;
  let port: string;

  before(async () => {
    db = await createTestDatabase();
    server = await startServer(db, env);
    port = new URL(server.url).port;
  });
  after(async () => {
    logs.push(server?.logs.text ?? '');
    await server?.stop();
    await db?.drop();
  });

  /** Restarts on the same port, so the issuer (and the admin audience) stays the same. */
  async function restart(withEnv: Record<string, string>): Promise<void> {
    logs.push(server.logs.text);
    await server.stop();
    server = await startServer(db, { ...withEnv, PORT: port });
  }

  test('the first start creates the client with that id; nothing secret is generated', async () => {
    assert.deepEqual(server.keyward.bootstrap, { clientId, created: true });
    assert.equal(await adminClientCount(server), 1);
    const view = await server.keyward.clients.get(clientId);
    assert.deepEqual(view.roles, ['admin']);
    assert.equal(view.admin_console, true);
    assert.equal(view.first_party, true);
  });

  test('client credentials with resource=${ISSUER}/admin give an RFC 9068 JWT with roles ["admin"]', async () => {
    const { status, body } = await tokenRequest(server, clientId, secret, `${server.url}/admin`);
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.token_type, 'Bearer');
    const { payload, protectedHeader } = await verifyAdminToken(server, body.access_token as string);
    assert.equal(protectedHeader.typ, 'at+jwt');
    assert.equal(payload.aud, `${server.url}/admin`);
    assert.equal(payload.sub, clientId);
    assert.equal(payload.client_id, clientId);
    assert.deepEqual(payload.roles, ['admin']);
  });

  test('without a resource parameter the admin audience is the default resource', async () => {
    const { status, body } = await tokenRequest(server, clientId, secret);
    assert.equal(status, 200, JSON.stringify(body));
    const { payload } = await verifyAdminToken(server, body.access_token as string);
    assert.equal(payload.aud, `${server.url}/admin`);
    assert.deepEqual(payload.roles, ['admin']);
  });

  test('a wrong secret is refused', async () => {
    const { status, body } = await tokenRequest(server, clientId, `${secret}x`, `${server.url}/admin`);
    assert.equal(status, 401);
    assert.equal(body.error, 'invalid_client');
  });

  test('a second start is idempotent: same client, no second admin client, the secret still works', async () => {
    await restart(env);
    assert.deepEqual(server.keyward.bootstrap, { clientId, created: false });
    assert.equal(await adminClientCount(server), 1);
    assert.equal(await server.keyward.store.prisma.client.count(), 1);
    assert.equal((await tokenRequest(server, clientId, secret, `${server.url}/admin`)).status, 200);
  });

  test('issue 10 F1: a store from before admin consoles gets the environment\'s client designated on start', async () => {
    await forgetAdminConsoles(server);
    await restart(env);
    assert.equal((await server.keyward.clients.get(clientId)).admin_console, true);
    const { body } = await tokenRequest(server, clientId, secret, `${server.url}/admin`);
    assert.equal(await adminApiStatus(server, body.access_token as string), 200);
  });

  test('a changed secret in the environment replaces the old one', async () => {
    const rotated = randomBytes(32).toString('base64url');
    await restart({ ...env, KEYWARD_BOOTSTRAP_ADMIN_CLIENT_SECRET: rotated });
    assert.equal(await adminClientCount(server), 1);
    assert.equal((await tokenRequest(server, clientId, rotated, `${server.url}/admin`)).status, 200);
    assert.equal((await tokenRequest(server, clientId, secret, `${server.url}/admin`)).status, 401);
    logs.push(server.logs.text);
    for (const text of [...logs, ...responses]) {
      assert.ok(!text.includes(secret), 'the first env secret never appears in a log line or response');
      assert.ok(!text.includes(rotated), 'the rotated env secret never appears in a log line or response');
    }
    assert.ok(logs.join('').length > 0, 'logs were captured');
  });
});

describe('bootstrap admin without environment credentials', () => {
  let db: TestDatabase;
  let server: TestServer;

  before(async () => {
    db = await createTestDatabase();
    server = await startServer(db);
  });
  after(async () => {
    await server?.stop();
    await db?.drop();
  });

  test('the first start generates id and secret (to be shown once) and they work', async () => {
    const bootstrap = server.keyward.bootstrap;
    assert.ok(bootstrap?.created);
    assert.ok(bootstrap.generatedSecret && bootstrap.generatedSecret.length >= 43, 'a secret of at least 256 bits');
    assert.equal(await adminClientCount(server), 1);
    const { status, body } = await tokenRequest(server, bootstrap.clientId, bootstrap.generatedSecret, `${server.url}/admin`);
    assert.equal(status, 200, JSON.stringify(body));
    const { payload } = await verifyAdminToken(server, body.access_token as string);
    assert.deepEqual(payload.roles, ['admin']);
    assert.ok(!server.logs.text.includes(bootstrap.generatedSecret), 'the generated secret is not logged');
    for (const text of responses) assert.ok(!text.includes(bootstrap.generatedSecret));
  });

  test('a second start generates nothing and creates no second admin client', async () => {
    const first = server.keyward.bootstrap!;
    assert.equal((await server.keyward.clients.get(first.clientId)).admin_console, true);
    const port = new URL(server.url).port;
    await server.stop();
    server = await startServer(db, { PORT: port });
    assert.equal(server.keyward.bootstrap, undefined);
    assert.equal(await adminClientCount(server), 1);
    assert.equal((await tokenRequest(server, first.clientId, first.generatedSecret!, `${server.url}/admin`)).status, 200);
  });

  test('issue 10 F1: a store from before admin consoles gets its bootstrap client designated on start, and only it', async () => {
    const bootstrapId = (await server.keyward.store.prisma.clientRole.findFirstOrThrow({ where: { roleName: 'admin' } })).clientId;
    const { client: other } = await server.keyward.clients.create({ client_name: 'admin by role', grant_types: ['client_credentials'], roles: ['admin'] });
    await forgetAdminConsoles(server);
    const port = new URL(server.url).port;
    await server.stop();
    server = await startServer(db, { PORT: port });
    assert.equal(server.keyward.bootstrap, undefined, 'no new admin client');
    assert.equal((await server.keyward.clients.get(bootstrapId)).admin_console, true);
    assert.equal((await server.keyward.clients.get(other.client_id)).admin_console, undefined);
  });
});
