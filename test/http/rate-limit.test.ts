import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';
import { postForm } from '../oidc/service-fixtures.ts';

let db: TestDatabase;
let limited: TestServer;

before(async () => {
  db = await createTestDatabase();
  limited = await startServer(db, { KEYWARD_RATE_LIMIT_TOKEN: '3/1m', KEYWARD_RATE_LIMIT_LOGIN: '2/1m' });
});
after(async () => {
  await limited?.stop();
  await db?.drop();
});

test('issue 11 §6: the token endpoint answers 429 with Retry-After and an OAuth error body beyond the per-IP rate', async () => {
  const statuses: number[] = [];
  let last: Awaited<ReturnType<typeof postForm>> | undefined;
  for (let i = 0; i < 5; i += 1) {
    last = await postForm(limited.url, '/token', { grant_type: 'client_credentials', client_id: 'nobody', client_secret: 'x' });
    statuses.push(last.status);
  }
  assert.deepEqual(statuses, [401, 401, 401, 429, 429]);
  const retryAfter = Number(last!.headers.get('retry-after'));
  assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
  assert.equal(last!.json?.error, 'temporarily_unavailable');
  assert.equal(last!.headers.get('cache-control'), 'no-store');
  // Other endpoints are not limited by the token endpoint's budget.
  assert.equal((await fetch(`${limited.url}/.well-known/openid-configuration`)).status, 200);
  const metrics = await (await fetch(`${limited.url}/metrics`)).text();
  assert.match(metrics, /keyward_rate_limited_total\{endpoint="token"\} 2/);
});

test('issue 11 §6: the login form answers a 429 page with Retry-After beyond the per-IP rate', async () => {
  const statuses: number[] = [];
  let res: Response | undefined;
  for (let i = 0; i < 3; i += 1) {
    res = await fetch(`${limited.url}/interaction/some-uid/login`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'username=a&password=b&csrf=c', redirect: 'manual',
    });
    statuses.push(res.status);
  }
  assert.notEqual(statuses[0], 429);
  assert.equal(statuses[2], 429);
  assert.match(res!.headers.get('content-type') ?? '', /^text\/html/);
  assert.ok(Number(res!.headers.get('retry-after')) >= 1);
});

test('issue 11 §6: KEYWARD_RATE_LIMIT=off (a gateway limits) turns the limit off', async () => {
  const db2 = await createTestDatabase();
  const open = await startServer(db2, { KEYWARD_RATE_LIMIT: 'off', KEYWARD_RATE_LIMIT_TOKEN: '1/1m' });
  try {
    for (let i = 0; i < 5; i += 1) {
      assert.equal((await postForm(open.url, '/token', { grant_type: 'client_credentials', client_id: 'nobody', client_secret: 'x' })).status, 401);
    }
  } finally {
    await open.stop();
    await db2.drop();
  }
});
