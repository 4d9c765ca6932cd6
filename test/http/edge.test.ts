import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';
import { auditEvents, basic, ORDERS, postForm, seedOrders } from '../oidc/service-fixtures.ts';
import { adminClient, call } from '../admin/support.ts';

let db: TestDatabase;
let server: TestServer;
let service: { id: string; secret: string };

before(async () => {
  db = await createTestDatabase();
  server = await startServer(db);
  await seedOrders(server.keyward);
  const { client, client_secret } = await server.keyward.clients.create({ client_name: 'edge', grant_types: ['client_credentials'], roles: ['orders-reader'] });
  service = { id: client.client_id, secret: client_secret! };
});
after(async () => {
  await server?.stop();
  await db?.drop();
});

/** A POST with exactly these body bytes (fetch would re-encode a string). */
async function postBytes(path: string, body: Buffer, headers: Record<string, string> = {}): Promise<{ status: number; type: string; text: string }> {
  const res = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new Uint8Array(body) });
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
}

async function get(path: string, headers: Record<string, string> = {}): Promise<{ status: number; type: string; text: string; headers: Headers }> {
  const res = await fetch(`${server.url}${path}`, { headers, redirect: 'manual' });
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text(), headers: res.headers };
}

function assertOAuth400(res: { status: number; type: string; text: string }, what: string): void {
  assert.equal(res.status, 400, `${what}: ${res.text}`);
  assert.match(res.type, /^application\/json/, what);
  assert.equal((JSON.parse(res.text) as { error: string }).error, 'invalid_request', what);
}

function assertPage400(res: { status: number; type: string; text: string }, what: string): void {
  assert.equal(res.status, 400, `${what}: ${res.text.slice(0, 200)}`);
  assert.match(res.type, /^text\/html/, what);
  assert.match(res.text, /invalid_request/, what);
}

test('issue 11 §5: NUL or invalid UTF-8 in client_id is 400 invalid_request at /token, /token/introspection and /token/revocation', async () => {
  for (const path of ['/token', '/token/introspection', '/token/revocation']) {
    assertOAuth400(await postBytes(path, Buffer.from('grant_type=client_credentials&token=x&client_id=ab%00cd&client_secret=s')), `${path} NUL in the body`);
    assertOAuth400(await postBytes(path, Buffer.from('grant_type=client_credentials&token=x&client_id=ab%FFcd&client_secret=s')), `${path} %FF in the body`);
    assertOAuth400(await postBytes(path, Buffer.concat([Buffer.from('token=x&client_id=ab'), Buffer.from([0xc3, 0x28])])), `${path} raw invalid UTF-8`);
    assertOAuth400(await postBytes(path, Buffer.from('token=x'), { authorization: `Basic ${Buffer.from('ab\0cd:secret').toString('base64')}` }), `${path} NUL in Basic`);
    assertOAuth400(await postBytes(path, Buffer.from('token=x'), { authorization: `Basic ${Buffer.from('ab%00cd:secret').toString('base64')}` }), `${path} %00 in Basic`);
    assertOAuth400(await postBytes(`${path}?client_id=%00`, Buffer.from('token=x')), `${path} NUL in the query`);
  }
});

test('issue 11 §5: the reported request (grant_type=client_credentials%00) is refused, and the audit trail keeps being written', async () => {
  const refused = await postBytes('/token', Buffer.from('grant_type=client_credentials%00&resource=https%3A%2F%2Forders.internal'), { authorization: basic(service.id, service.secret) });
  assertOAuth400(refused, 'NUL grant_type');
  const ok = await postForm(server.url, '/token', { grant_type: 'client_credentials', resource: ORDERS }, { authorization: basic(service.id, service.secret) });
  assert.equal(ok.status, 200, ok.text);
  const issued = (await auditEvents(server.keyward, 'token.issued')).filter((e) => e.outcome === 'success' && e.actor === service.id);
  assert.ok(issued.length >= 1, 'a later token issuance is audited');
  assert.equal(server.keyward.audit.stats().buffered, 0);
});

test('issue 11 §5: /auth, /session/end and /interaction answer their own 400 error page for NUL or invalid UTF-8', async () => {
  assertPage400(await get('/auth?client_id=%00&response_type=code'), '/auth NUL');
  assertPage400(await get('/auth?client_id=%C3%28&response_type=code'), '/auth invalid UTF-8');
  assertPage400(await get('/auth?response_type=code', { cookie: '_session=%00' }), '/auth NUL in a cookie');
  assertPage400(await get('/session/end?client_id=%00'), '/session/end NUL');
  assertPage400(await get('/interaction/ab%00cd'), '/interaction NUL uid');
  const form = await postBytes('/interaction/abc/login', Buffer.from('username=al%00ice&password=x&csrf=y'));
  assert.equal(form.status, 400, form.text.slice(0, 200));
  assert.match(form.type, /^text\/html/);
});

test('issue 11 §5: the admin API answers problem+json 400 naming the parameter', async () => {
  const res = await get('/admin/v1/clients?limit=%FF');
  assert.equal(res.status, 400);
  assert.match(res.type, /^application\/problem\+json/);
  assert.deepEqual((JSON.parse(res.text) as { errors: { field: string }[] }).errors.map((e) => e.field), ['limit']);
  const body = await fetch(`${server.url}/admin/v1/roles`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]) });
  assert.ok(body.status === 400 || body.status === 401, `invalid UTF-8 JSON: ${body.status}`);
});

test('issue 11 §6: a 55,000-character grant_type is audited as `other`, not stored', async () => {
  const res = await postForm(server.url, '/token', { grant_type: 'g'.repeat(55_000) }, { authorization: basic(service.id, service.secret) });
  assert.equal(res.status, 400, res.text.slice(0, 200));
  const failures = (await auditEvents(server.keyward, 'token.issued')).filter((e) => e.outcome === 'failure' && e.actor === service.id);
  assert.equal(failures.at(-1)?.details.grant_type, 'other');
  assert.ok(!server.logs.text.includes('g'.repeat(1_000)), 'nor logged');
});

test('issue 11 §6: failed client authentications from one address are audited once per minute with a count, not a row each', async () => {
  const before = (await auditEvents(server.keyward, 'token.issued')).length;
  for (let i = 0; i < 100; i += 1) {
    const res = await postForm(server.url, '/token', { grant_type: 'client_credentials', client_id: randomBytes(12).toString('base64url'), client_secret: 'wrong' });
    assert.equal(res.status, 401);
  }
  for (let i = 0; i < 20; i += 1) {
    const res = await postForm(server.url, '/token', { grant_type: 'client_credentials' }, { authorization: basic(service.id, 'wrong-secret') });
    assert.equal(res.status, 401);
  }
  const rows = (await auditEvents(server.keyward, 'token.issued')).slice(before);
  assert.equal(rows.length, 2, 'one row for the unknown ids, one for the known client');
  assert.deepEqual(rows.map((r) => r.details.error), ['invalid_client', 'invalid_client']);
  assert.equal(rows.find((r) => r.actor === service.id)?.outcome, 'failure');
});

test('issue 11 §8: X-Request-Id is echoed (or generated) and carried by every log line of the request', async () => {
  const mine = await fetch(`${server.url}/token`, { method: 'POST', headers: { 'x-request-id': 'trace-abc.123', authorization: basic(service.id, service.secret), 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials&resource=https%3A%2F%2Forders.internal' });
  assert.equal(mine.status, 200);
  assert.equal(mine.headers.get('x-request-id'), 'trace-abc.123');
  const lines = server.logs.lines.filter((l) => l.includes('trace-abc.123')).map((l) => JSON.parse(l) as { http?: { request?: { id?: string } }; event?: { action?: string } });
  assert.ok(lines.some((l) => l.event?.action === 'token.issued'), 'the audit line of the request carries its id');
  assert.ok(lines.every((l) => l.http?.request?.id === 'trace-abc.123'));
  // Keyward's own routes (the admin API here) name the request on their audit lines too.
  const admin = await adminClient(server);
  const created = await call(server, admin.token, 'POST', '/roles', { name: 'request-id-probe' }, { 'x-request-id': 'trace-admin.7' });
  assert.equal(created.status, 201);
  const adminLine = server.logs.lines.map((l) => JSON.parse(l) as { http?: { request?: { id?: string } }; event?: { action?: string } })
    .find((l) => l.event?.action === 'admin.change' && l.http?.request?.id === 'trace-admin.7');
  assert.ok(adminLine, 'the admin.change audit line carries the request id');
  const generated = await get('/healthz', { 'x-request-id': 'bad id with spaces\u00e9' });
  assert.match(generated.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
  assert.match((await get('/healthz')).headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
});

test('issue 11 §8: /metrics exposes token outcomes, client-auth failures, audit buffer and drops, cache hits and misses, refusals', async () => {
  await postForm(server.url, '/token', { grant_type: 'client_credentials', resource: ORDERS }, { authorization: basic(service.id, service.secret) });
  await postForm(server.url, '/token', { grant_type: 'client_credentials', resource: ORDERS }, { authorization: basic(service.id, 'nope') });
  const text = (await get('/metrics')).text;
  for (const expected of [
    /keyward_token_requests_total\{grant_type="client_credentials",outcome="success",error=""\} \d+/,
    /keyward_token_requests_total\{grant_type="client_credentials",outcome="failure",error="invalid_client"\} \d+/,
    /keyward_client_auth_failures_total\{route="\/token"\} \d+/,
    /keyward_refused_input_total\{kind="oauth"\} \d+/,
    /keyward_audit_buffer_events \d+/,
    /keyward_audit_dropped_events_total\{reason="overflow"\} 0/,
    /keyward_cache_lookups_total\{cache="clients",result="hit"\} [1-9]\d*/,
    /keyward_cache_lookups_total\{cache="clients",result="miss"\} [1-9]\d*/,
    /keyward_cache_entries\{cache="clients"\} \d+/,
    /keyward_cache_lookups_total\{cache="resources",result="hit"\} \d+/,
    /keyward_cache_lookups_total\{cache="user_roles",result="miss"\} \d+/,
    /# TYPE keyward_login_failures_total counter/,
    /# TYPE keyward_login_throttled_total counter/,
    /# TYPE keyward_rate_limited_total counter/,
  ]) assert.match(text, expected);
});
