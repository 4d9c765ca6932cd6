import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createTestDatabase, startServer, type TestDatabase } from '../support/harness.ts';

const ADMIN = { KEYWARD_BOOTSTRAP_ADMIN_CLIENT_ID: 'proxy-admin', KEYWARD_BOOTSTRAP_ADMIN_CLIENT_SECRET: 'proxy-admin-secret-0123456789abcdefghij' };
let db: TestDatabase;

before(async () => {
  db = await createTestDatabase();
});
after(async () => {
  await db?.drop();
});

/** The client IP the audit trail recorded for a token request sent with X-Forwarded-For. */
async function recordedIp(env: Record<string, string>, forwardedFor: string): Promise<string | null> {
  const server = await startServer(db, { ...ADMIN, ...env });
  try {
    const res = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${ADMIN.KEYWARD_BOOTSTRAP_ADMIN_CLIENT_ID}:${ADMIN.KEYWARD_BOOTSTRAP_ADMIN_CLIENT_SECRET}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
        'x-forwarded-for': forwardedFor,
      },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: `${server.url}/admin` }),
    });
    assert.equal(res.status, 200);
    const { jti } = JSON.parse(Buffer.from((await res.json() as { access_token: string }).access_token.split('.')[1]!, 'base64url').toString()) as { jti: string };
    await server.keyward.audit.flush();
    const rows = await server.keyward.store.prisma.auditEvent.findMany({ where: { type: 'token.issued' } });
    const row = rows.find((r) => (r.details as { jti?: string }).jti === jti);
    assert.ok(row, 'the token issue was audited');
    return row.ip;
  } finally {
    await server.stop();
  }
}

test('without trusted proxies a client cannot choose its own IP through X-Forwarded-For', async () => {
  const ip = await recordedIp({}, '203.0.113.9');
  assert.notEqual(ip, '203.0.113.9');
  assert.match(ip ?? '', /127\.0\.0\.1$/);
});

test('with KEYWARD_PROXY_HOPS=1 the address appended by the proxy is the client IP, not one the client prepended', async () => {
  assert.equal(await recordedIp({ KEYWARD_PROXY_HOPS: '1' }, '198.51.100.1, 203.0.113.9'), '203.0.113.9');
});
