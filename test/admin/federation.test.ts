import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';
import { TestIssuer, githubActionsClaims, kubernetesClaims } from '../oidc/federation-issuer.ts';
import { adminClient, assertProblem, call, failingFields, type AdminClient } from './support.ts';

let db: TestDatabase;
let server: TestServer;
let admin: AdminClient;
let issuer: TestIssuer;
let clientId: string;

before(async () => {
  db = await createTestDatabase();
  issuer = await TestIssuer.start(['/k8s', '/gha']);
  server = await startServer(db);
  admin = await adminClient(server);
  await server.keyward.resources.create({ identifier: 'https://invoices.test', scopes: ['invoices:write'] });
  const created = await call(server, admin.token, 'POST', '/clients', {
    client_name: 'invoicer', grant_types: ['client_credentials'], token_endpoint_auth_method: 'federated_jwt', default_resource: 'https://invoices.test',
  });
  assert.equal(created.status, 201, created.text);
  assert.equal(created.body.client_secret, undefined, 'a federated_jwt client has no secret');
  clientId = created.body.client_id;
});
after(async () => {
  await server?.stop();
  await issuer?.close();
  await db?.drop();
});

const path = () => `/clients/${clientId}/federated-credentials`;

test('POST/GET/DELETE /clients/{client_id}/federated-credentials: create, list in order, delete; each change audited', async () => {
  const k8s = await call(server, admin.token, 'POST', path(), { name: 'prod cluster', issuer: issuer.url('/k8s'), subject: 'system:serviceaccount:payments:invoicer' });
  assert.equal(k8s.status, 201, k8s.text);
  assert.match(k8s.body.id, /^[0-9a-f-]{36}$/);
  assert.equal(k8s.body.client_id, clientId);
  const gha = await call(server, admin.token, 'POST', path(), {
    name: 'deploy', issuer: issuer.url('/gha'), subject_pattern: 'repo:acme/*:ref:refs/heads/main', audience: 'https://keyward.acme.example',
    claims: { repository_id: '734501' },
  });
  assert.equal(gha.status, 201, gha.text);
  const listed = await call(server, admin.token, 'GET', path());
  assert.deepEqual(listed.body.items.map((c: { name: string }) => c.name), ['prod cluster', 'deploy']);
  assert.deepEqual(listed.body.items[1].claims, { repository_id: '734501' });

  const duplicate = await call(server, admin.token, 'POST', path(), { name: 'deploy', issuer: issuer.url('/gha'), subject: 'x' });
  assertProblem(duplicate, 409);

  const deleted = await call(server, admin.token, 'DELETE', `${path()}/${gha.body.id}`);
  assert.equal(deleted.status, 204, deleted.text);
  assertProblem(await call(server, admin.token, 'DELETE', `${path()}/${gha.body.id}`), 404);
  assert.equal((await call(server, admin.token, 'GET', path())).body.items.length, 1);

  await server.keyward.audit.flush();
  const events = await server.keyward.store.prisma.auditEvent.findMany({ where: { type: 'admin.change', subject: clientId } });
  const actions = events.map((e) => (e.details as { action: string; federated_credential_id?: string }));
  assert.ok(actions.some((d) => d.action === 'createFederatedCredential' && d.federated_credential_id === k8s.body.id));
  assert.ok(actions.some((d) => d.action === 'deleteFederatedCredential' && d.federated_credential_id === gha.body.id));
});

test('validation: exactly one of subject and subject_pattern, https issuer (http only on loopback), public asymmetric inline keys only', async () => {
  const neither = await call(server, admin.token, 'POST', path(), { name: 'n', issuer: issuer.url('/k8s') });
  assertProblem(neither, 400);
  assert.deepEqual(failingFields(neither), ['subject']);
  assertProblem(await call(server, admin.token, 'POST', path(), { name: 'b', issuer: issuer.url('/k8s'), subject: 'a', subject_pattern: 'a*' }), 400);
  const http = await call(server, admin.token, 'POST', path(), { name: 'h', issuer: 'http://issuer.example', subject: 'a' });
  assert.deepEqual(failingFields(http), ['issuer']);
  const jwk = issuer.jwks('/k8s').keys[0]!;
  const privateKey = await call(server, admin.token, 'POST', path(), { name: 'p', issuer: issuer.url('/k8s'), subject: 'a', jwks: { keys: [{ ...jwk, d: 'secret' }] } });
  assertProblem(privateKey, 400, 'public keys only');
  const symmetric = await call(server, admin.token, 'POST', path(), { name: 's', issuer: issuer.url('/k8s'), subject: 'a', jwks: { keys: [{ ...jwk, alg: 'HS256' }] } });
  assertProblem(symmetric, 400);
  const onlyStars = await call(server, admin.token, 'POST', path(), { name: 'w', issuer: issuer.url('/k8s'), subject_pattern: '*:*' });
  assert.deepEqual(failingFields(onlyStars), ['subject_pattern']);
  const typedClaims = await call(server, admin.token, 'POST', path(), { name: 'c', issuer: issuer.url('/k8s'), subject: 'a', claims: { nested: { a: 1 } } });
  assertProblem(typedClaims, 400);
  assertProblem(await call(server, admin.token, 'POST', '/clients/nobody-has-this-id/federated-credentials', { name: 'x', issuer: issuer.url('/k8s'), subject: 'a' }), 404);
});

test('a federated_jwt client refuses its own jwks or jwks_uri (its keys come from the credentials)', async () => {
  const res = await call(server, admin.token, 'POST', '/clients', {
    client_name: 'confused', grant_types: ['client_credentials'], token_endpoint_auth_method: 'federated_jwt', jwks_uri: 'https://keys.example/jwks',
  });
  assertProblem(res, 400);
  assert.ok(failingFields(res).includes('jwks'));
});

test('POST /federated-credentials/test: the dry run names the matching credential, or every candidate\'s reason; the token is never logged', async () => {
  // With a jti, so that a dry run consuming it would show.
  const good = await issuer.sign('/k8s', { ...kubernetesClaims(issuer.url('/k8s'), server.url), jti: 'dry-run-1' });
  const matched = await call(server, admin.token, 'POST', '/federated-credentials/test', { token: good });
  assert.equal(matched.status, 200, matched.text);
  const [credential] = (await call(server, admin.token, 'GET', path())).body.items;
  assert.deepEqual(matched.body.matched, { client_id: clientId, credential_id: credential.id });

  const intruder = await issuer.sign('/k8s', kubernetesClaims(issuer.url('/k8s'), server.url, { serviceAccount: 'intruder' }));
  const refused = await call(server, admin.token, 'POST', '/federated-credentials/test', { token: intruder });
  assert.equal(refused.body.matched, null);
  assert.deepEqual(refused.body.reasons.map((r: { reason: string }) => r.reason), ['subject_mismatch']);
  assert.equal(refused.body.reasons[0].credential_id, credential.id);

  const other = await issuer.sign('/gha', githubActionsClaims(issuer.url('/gha'), server.url));
  const wrongIssuer = await call(server, admin.token, 'POST', '/federated-credentials/test', { token: other });
  assert.deepEqual(wrongIssuer.body.reasons.map((r: { reason: string }) => r.reason), ['issuer_mismatch']);

  // A dry run consumes nothing: the same token still authenticates afterwards.
  const token = await fetch(`${server.url}/token`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: good }),
  });
  assert.equal(token.status, 200, await token.text());

  assertProblem(await call(server, admin.token, 'POST', '/federated-credentials/test', {}), 400);
  for (const jwt of [good, intruder, other]) {
    assert.ok(!server.logs.text.includes(jwt.split('.')[1]!), 'no token in the logs');
  }
  await server.keyward.audit.flush();
  const audit = await server.keyward.store.prisma.auditEvent.findMany();
  assert.ok(!JSON.stringify(audit.map((e) => e.details)).includes(good.split('.')[1]!), 'no token in the audit trail');
});

test('the OpenAPI document describes the federation operations', async () => {
  const res = await fetch(`${server.url}/admin/v1/openapi.json`);
  const document = await res.json() as { paths: Record<string, Record<string, { operationId: string }>>; components: { schemas: Record<string, unknown> } };
  assert.equal(document.paths['/clients/{client_id}/federated-credentials']?.post?.operationId, 'createFederatedCredential');
  assert.equal(document.paths['/clients/{client_id}/federated-credentials/{id}']?.delete?.operationId, 'deleteFederatedCredential');
  assert.equal(document.paths['/federated-credentials/test']?.post?.operationId, 'testFederatedToken');
  assert.ok(document.components.schemas.FederatedCredential);
});

test('read-only admins may list but not create', async () => {
  const reader = await adminClient(server, ['admin:read']);
  assert.equal((await call(server, reader.token, 'GET', path())).status, 200);
  assertProblem(await call(server, reader.token, 'POST', path(), { name: 'r', issuer: issuer.url('/k8s'), subject: 'a' }), 403);
});
