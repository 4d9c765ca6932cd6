import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as oidc from 'openid-client';
import { ADMIN_READ_ROLE } from '../../src/identity/admin-roles.ts';
import { adminClient, call } from '../admin/support.ts';
import { createPublicClient, createUser, rp, startCallback, type Callback } from '../e2e/support.ts';
import { codeRequest, Device } from '../support/device.ts';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';

/**
 * Token values never reach the audit trail or the logs (RFC 6750 §5.3: bearer tokens must not
 * be disclosed). An opaque access token's jti is its value, so the trail keeps a keyed digest.
 */
let db: TestDatabase;
let server: TestServer;
let callback: Callback;

before(async () => {
  db = await createTestDatabase();
  server = await startServer(db);
  callback = await startCallback();
});
after(async () => {
  await callback?.close();
  await server?.stop();
  await db?.drop();
});

test('RFC 6750 §5.3: an opaque (userinfo) access token is not in the audit trail, /admin/v1/audit or the logs, and is still traceable by its keyed digest', async () => {
  const config = await rp(server.url, await createPublicClient(server.keyward, callback));
  const user = await createUser(server.keyward);
  const request = await codeRequest(config, callback);
  const landed = await new Device(callback).signIn(request.url, user);
  assert.ok(landed.url.startsWith(callback.redirectUri), `ended at ${landed.url}`);
  const tokens = await oidc.authorizationCodeGrant(config, new URL(landed.url), { pkceCodeVerifier: request.verifier, idTokenExpected: true });
  const accessToken = tokens.access_token;
  assert.equal(accessToken.split('.').length, 1, 'an opaque token (no resource asked)');
  assert.equal((await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${accessToken}` } })).status, 200);

  await server.keyward.audit.flush();
  const rows = await server.keyward.store.prisma.auditEvent.findMany();
  assert.ok(rows.length > 0);
  assert.doesNotMatch(JSON.stringify(rows.map((r) => r.details)), new RegExp(accessToken), 'the token value is stored in the audit trail');
  const issued = rows.filter((r) => r.type === 'token.issued' && r.subject === user.id);
  assert.equal(issued.length, 1);
  const details = issued[0]!.details as Record<string, unknown>;
  assert.equal(details.jti, undefined);
  assert.match(String(details.token_hmac), /^[A-Za-z0-9_-]{43}$/);

  const reader = await adminClient(server, [ADMIN_READ_ROLE]);
  const trail = await call(server, reader.token, 'GET', '/audit?type=token.issued');
  assert.equal(trail.status, 200);
  assert.doesNotMatch(trail.text, new RegExp(accessToken), 'a read-only admin reads the token from /admin/v1/audit');
  assert.doesNotMatch(server.logs.text, new RegExp(accessToken));
});

test('a JWT access token is audited by its jti, which is not the token', async () => {
  const admin = await adminClient(server);
  const { jti } = JSON.parse(Buffer.from(admin.token.split('.')[1]!, 'base64url').toString()) as { jti: string };
  await server.keyward.audit.flush();
  const rows = await server.keyward.store.prisma.auditEvent.findMany({ where: { type: 'token.issued', actor: admin.clientId } });
  assert.equal((rows[0]!.details as Record<string, unknown>).jti, jti);
  assert.doesNotMatch(JSON.stringify(rows.map((r) => r.details)), new RegExp(admin.token.split('.')[2]!));
});
