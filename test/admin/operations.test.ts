import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { purgeAuditEvents } from '../../src/audit/retention.ts';
import { adminRouteTable } from '../../src/admin/router.ts';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';
import { adminClient, assertNoLeaks, assertProblem, call, failingFields, type AdminClient, type Call } from './support.ts';

let db: TestDatabase;
let server: TestServer;
let admin: AdminClient;

before(async () => {
  db = await createTestDatabase();
  server = await startServer(db, { KEYWARD_AUDIT_RETENTION: '30d' });
  admin = await adminClient(server);
});
after(async () => {
  await server?.stop();
  await db?.drop();
});

test('GET /keys lists the current and next key of each algorithm with state, publication and timestamps, never a private part', async () => {
  const res = await call(server, admin.token, 'GET', '/keys');
  assert.equal(res.status, 200, res.text);
  const items = res.body.items as Record<string, unknown>[];
  assert.deepEqual(items.map((k) => `${String(k.alg)}:${String(k.state)}:${String(k.role)}`).sort(),
    ['ES256:active:current', 'ES256:staged:next', 'RS256:active:current', 'RS256:staged:next']);
  for (const key of items) {
    assert.equal(key.use, 'sig');
    assert.equal(typeof key.created_at, 'string');
    assert.equal(key.published_at, key.created_at);
    // Created with the first keys: a JWKS never lacked it, so it can sign at once.
    if (key.role === 'next') assert.equal(key.rotatable_at, key.published_at);
    for (const secret of ['d', 'p', 'q', 'privateJwk', 'encrypted_jwk', 'encryptedJwk']) assert.equal(key[secret], undefined);
  }
});

test('POST /keys/rotate activates the next key at once; a second rotation is 409 problem+json with possible_at until the JWKS max-age has passed; bad input is 400', async () => {
  const before = (await call(server, admin.token, 'GET', '/keys')).body.items as { kid: string; alg: string; role?: string }[];
  const next = before.find((k) => k.alg === 'ES256' && k.role === 'next')!;
  const res = await call(server, admin.token, 'POST', '/keys/rotate', { alg: 'ES256' });
  assert.equal(res.status, 200, res.text);
  const es = (res.body.items as { kid: string; alg: string; state: string; published_at: string; rotatable_at?: string }[]).filter((k) => k.alg === 'ES256');
  assert.deepEqual(es.map((k) => k.state).sort(), ['active', 'retiring', 'staged']);
  assert.equal(es.find((k) => k.state === 'active')!.kid, next.kid);
  const newNext = es.find((k) => k.state === 'staged')!;
  assert.equal(Date.parse(newNext.rotatable_at!), Date.parse(newNext.published_at) + 3600_000);

  const again = await call(server, admin.token, 'POST', '/keys/rotate', { alg: 'ES256' });
  assertProblem(again, 409, 'possible from');
  assert.equal(again.body.possible_at, newNext.rotatable_at);
  assert.equal(Date.parse(again.headers.get('retry-after') ?? ''), Math.floor(Date.parse(newNext.rotatable_at!) / 1000) * 1000);

  assertProblem(await call(server, admin.token, 'POST', '/keys/rotate', { alg: 'HS256' }), 400);
  assertProblem(await call(server, admin.token, 'POST', '/keys/rotate', { alg: 'EdDSA' }), 400, 'EdDSA');
  assertProblem(await call(server, admin.token, 'POST', '/keys/rotate', { emergency: 'yes' }), 400);
  await server.keyward.audit.flush();
  const audit = await server.keyward.store.prisma.auditEvent.findFirst({ where: { type: 'admin.change', subject: 'signing-keys' } });
  assert.deepEqual(audit?.details, { action: 'rotateKeys', fields: ['alg'], alg: 'ES256', emergency: false });
  assert.equal(audit?.actor, admin.clientId);
});

test('GET /audit filters by type, actor and since, newest first, and a cursor walk sees each event once', async () => {
  for (let i = 0; i < 6; i += 1) await call(server, admin.token, 'POST', '/roles', { name: `audit-${i}` });
  await server.keyward.audit.flush();
  const changes = await call(server, admin.token, 'GET', `/audit?type=admin.change&actor=${admin.clientId}`);
  assert.equal(changes.status, 200, changes.text);
  const items = changes.body.items as { id: string; type: string; actor: string; at: string; subject: string }[];
  assert.ok(items.length >= 7);
  assert.ok(items.every((e) => e.type === 'admin.change' && e.actor === admin.clientId));
  const ids = items.map((e) => Number(e.id));
  assert.deepEqual(ids, [...ids].sort((a, b) => b - a), 'newest first');
  assert.equal(items[0]!.subject, 'audit-5');

  const walked: string[] = [];
  let cursor: string | null = null;
  do {
    const page: Call = await call(server, admin.token, 'GET', `/audit?type=admin.change&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
    assert.equal(page.status, 200, page.text);
    walked.push(...page.body.items.map((e: { id: string }) => e.id));
    cursor = page.body.next_cursor;
  } while (cursor);
  assert.equal(walked.length, new Set(walked).size);
  assert.equal(walked.length, await server.keyward.store.prisma.auditEvent.count({ where: { type: 'admin.change' } }));

  const future = new Date(Date.now() + 60_000).toISOString();
  assert.deepEqual((await call(server, admin.token, 'GET', `/audit?since=${future}`)).body.items, []);
  const issued = await call(server, admin.token, 'GET', '/audit?type=token.issued&limit=1');
  assert.equal(issued.body.items[0].type, 'token.issued');
  for (const bad of ['since=yesterday', 'type=DROP%20TABLE', 'limit=abc', 'cursor=%00', 'actor=']) {
    const res = await call(server, admin.token, 'GET', `/audit?${bad}`);
    assertProblem(res, 400);
    assert.equal(failingFields(res).length, 1, bad);
  }
});

test('KEYWARD_AUDIT_RETENTION: events older than the retention are purged, newer ones kept', async () => {
  const prisma = server.keyward.store.prisma;
  const now = new Date();
  await prisma.auditEvent.createMany({
    data: [
      { type: 'admin.change', outcome: 'success', subject: 'ancient', at: new Date(now.getTime() - 31 * 86_400_000) },
      { type: 'admin.change', outcome: 'success', subject: 'recent', at: new Date(now.getTime() - 29 * 86_400_000) },
    ],
  });
  const purged = await purgeAuditEvents(prisma, now, server.keyward.config.auditRetentionMs);
  assert.equal(purged, 1);
  assert.equal(await prisma.auditEvent.count({ where: { subject: 'ancient' } }), 0);
  assert.equal(await prisma.auditEvent.count({ where: { subject: 'recent' } }), 1);
});

test('bodies: over 64 KiB is 413, not JSON is 415, malformed JSON is 400, a JSON array is 400', async () => {
  const huge = JSON.stringify({ name: 'big', description: 'x'.repeat(70_000) });
  assertProblem(await call(server, admin.token, 'POST', '/roles', huge), 413);
  assertProblem(await call(server, admin.token, 'POST', '/roles', 'name=x', { 'content-type': 'application/x-www-form-urlencoded' }), 415);
  const malformed = await call(server, admin.token, 'POST', '/roles', '{"name": ');
  assertProblem(malformed, 400, 'JSON');
  assertProblem(await call(server, admin.token, 'POST', '/roles', '[1,2]'), 400);
  assertProblem(await call(server, admin.token, 'POST', '/roles', 'null'), 400);
  const proto = await call(server, admin.token, 'POST', '/roles', '{"name":"p","__proto__":{"admin":true}}');
  assertProblem(proto, 400);
});

test('input PostgreSQL cannot store (NUL characters) or that only costs (deep nesting) is a 400, not a store error', async () => {
  assertProblem(await call(server, admin.token, 'POST', '/roles', { name: 'nul', description: 'a\u0000b' }), 400, 'NUL');
  assertProblem(await call(server, admin.token, 'GET', '/audit?actor=%00'), 400, 'NUL');
  const deep = `{"name":"deep","description":${'['.repeat(5000)}${']'.repeat(5000)}}`;
  assertProblem(await call(server, admin.token, 'POST', '/roles', deep), 400, 'nested');
  const jwks = { keys: [{ kty: 'EC', crv: 'P-256', x: 'x', y: 'y', extra: { nested: { deeper: [1] } } }] };
  assertProblem(await call(server, admin.token, 'POST', '/clients', { client_name: 'j', grant_types: ['client_credentials'], token_endpoint_auth_method: 'private_key_jwt', jwks }), 400);
  assert.equal(server.logs.errors().length, 0, 'nothing reached the error log');
});

test('issue 10 F11: an oversized chunked body is 413, an audit cursor beyond int8 and a since before year 1 are 400, never a 500', async () => {
  // Chunked: no Content-Length announces the size, so the limit must hold while reading.
  const chunk = new TextEncoder().encode(`{"name":"big","description":"${'x'.repeat(16 * 1024)}`);
  let sent = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent++ < 8) controller.enqueue(chunk); else controller.close();
    },
  });
  const res = await fetch(`${server.url}/admin/v1/roles`, {
    method: 'POST', body: stream, duplex: 'half',
    headers: { authorization: `Bearer ${admin.token}`, 'content-type': 'application/json' },
  } as RequestInit);
  assert.equal(res.status, 413, `${await res.text()} ${server.logs.errors().join('\n')}`);

  const beyondInt8 = Buffer.from(JSON.stringify({ l: 'audit', k: '9999999999999999999' })).toString('base64url');
  assertProblem(await call(server, admin.token, 'GET', `/audit?cursor=${beyondInt8}`), 400, 'cursor');
  for (const since of ['0000-01-01T00:00:00Z', '-000001-01-01T00:00:00Z', '+275760-09-13T00:00:00Z']) {
    assertProblem(await call(server, admin.token, 'GET', `/audit?since=${encodeURIComponent(since)}`), 400);
  }
  assert.equal(server.logs.errors().length, 0, 'nothing reached the error log');
});

test('unknown paths under /admin/v1 are problem+json 404; a wrong method is 405 with Allow', async () => {
  assertProblem(await call(server, admin.token, 'GET', '/nothing/here'), 404);
  const wrong = await call(server, admin.token, 'PUT', '/clients');
  assertProblem(wrong, 405);
  assert.equal(wrong.headers.get('allow'), 'POST, GET');
});

test('OpenAPI 3.1 at /admin/v1/openapi.json describes every route, generated from the same zod schemas', async () => {
  const res = await call(server, undefined, 'GET', '/openapi.json');
  assert.equal(res.status, 200);
  const doc = res.body as { openapi: string; paths: Record<string, Record<string, any>>; components: { schemas: Record<string, unknown> } };
  assert.equal(doc.openapi, '3.1.0');
  const { keyward } = server;
  const routes = adminRouteTable({ ...keyward, issuer: server.url, logger: server.logs.logger, now: () => new Date() });
  assert.equal(Object.values(doc.paths).reduce((n, ops) => n + Object.keys(ops).length, 0), routes.length);
  for (const route of routes) {
    const op = doc.paths[route.path]?.[route.method];
    assert.ok(op, `${route.method} ${route.path}`);
    assert.ok(op.responses[route.response.status]);
    assert.ok(op.responses[401] && op.responses[403]);
    if (route.params) assert.ok(op.responses[404], route.operationId);
  }
  const create = doc.paths['/clients']!.post;
  const body = create.requestBody.content['application/json'].schema;
  assert.equal(body.additionalProperties, false);
  assert.deepEqual(body.required.sort(), ['client_name', 'grant_types']);
  assert.equal(body.properties.redirect_uris.maxItems, 20);
  assert.equal(create.responses[201].content['application/json'].schema.$ref, '#/components/schemas/ClientCreated');
  assert.ok(doc.components.schemas.Problem);
  const list = doc.paths['/audit']!.get.parameters.map((p: { name: string }) => p.name).sort();
  assert.deepEqual(list, ['actor', 'cursor', 'limit', 'since', 'type']);
  // Every $ref resolves.
  for (const ref of JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)) assert.ok(doc.components.schemas[ref[1]!], ref[1]);
});

test('no secret or hash appears in any response or log line', async () => {
  await assertNoLeaks(server);
});
