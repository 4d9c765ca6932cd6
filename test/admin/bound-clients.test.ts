import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { clientRead } from '../../src/admin/schemas/clients.ts';
import { certificateJwks } from '../../src/identity/clients/index.ts';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';
import { TestPki, type Issued } from '../support/pki.ts';
import { adminClient, assertProblem, call, failingFields, type AdminClient } from './support.ts';

/**
 * The admin API manages the metadata of clients bound to a key (RFC 8705 §2.1.2, §2.2, §3.4;
 * RFC 9449 §5.2) and refuses shapes oidc-provider could not honour, naming each field.
 */
let db: TestDatabase;
let server: TestServer;
let admin: AdminClient;
let pki: TestPki;
let self: Issued;
let other: Issued;

before(async () => {
  db = await createTestDatabase();
  server = await startServer(db);
  admin = await adminClient(server);
  pki = new TestPki();
  self = pki.issue('self', '/CN=job');
  other = pki.issue('other', '/CN=other');
});
after(async () => {
  await server?.stop();
  await db?.drop();
  pki?.remove();
});

const machine = { client_name: 'mTLS worker', grant_types: ['client_credentials'] };

test('RFC 8705 §2.1.2: tls_client_auth with one subject field is registered without a secret and shown back', async () => {
  const res = await call(server, admin.token, 'POST', '/clients', {
    ...machine, token_endpoint_auth_method: 'tls_client_auth', tls_client_auth_subject_dn: 'CN=orders,O=Example,C=DE',
    tls_client_certificate_bound_access_tokens: true,
  });
  assert.equal(res.status, 201, res.text);
  assert.equal(res.body.client_secret, undefined);
  const got = await call(server, admin.token, 'GET', `/clients/${res.body.client_id}`);
  clientRead.strict().parse(got.body);
  assert.equal(got.body.tls_client_auth_subject_dn, 'CN=orders,O=Example,C=DE');
  assert.equal(got.body.tls_client_certificate_bound_access_tokens, true);

  // An update may swap the subject field (null clears the old one); the merged result is checked.
  const swapped = await call(server, admin.token, 'PATCH', `/clients/${res.body.client_id}`, { tls_client_auth_subject_dn: null, tls_client_auth_san_uri: 'spiffe://example/orders' });
  assert.equal(swapped.status, 200, swapped.text);
  assert.equal(swapped.body.tls_client_auth_subject_dn, undefined);
  assert.equal(swapped.body.tls_client_auth_san_uri, 'spiffe://example/orders');
  const none = await call(server, admin.token, 'PATCH', `/clients/${res.body.client_id}`, { tls_client_auth_san_uri: null });
  assertProblem(none, 400);
  assert.deepEqual(failingFields(none), ['token_endpoint_auth_method']);
});

test('RFC 8705 §2.1.2: tls_client_auth needs exactly one subject field, of a valid form, and only that method takes them', async () => {
  const cases: [Record<string, unknown>, string[]][] = [
    [{ token_endpoint_auth_method: 'tls_client_auth' }, ['token_endpoint_auth_method']],
    [{ token_endpoint_auth_method: 'tls_client_auth', tls_client_auth_san_dns: 'a.example', tls_client_auth_san_ip: '10.0.0.1' }, ['token_endpoint_auth_method']],
    [{ token_endpoint_auth_method: 'client_secret_basic', tls_client_auth_san_dns: 'a.example' }, ['tls_client_auth_san_dns']],
    [{ token_endpoint_auth_method: 'tls_client_auth', tls_client_auth_san_ip: '10.0.0.300' }, ['tls_client_auth_san_ip']],
    [{ token_endpoint_auth_method: 'tls_client_auth', tls_client_auth_san_dns: '*.example' }, ['tls_client_auth_san_dns']],
    [{ token_endpoint_auth_method: 'tls_client_auth', tls_client_auth_subject_dn: 'orders' }, ['tls_client_auth_subject_dn']],
    [{ dpop_bound_access_tokens: 'yes' }, ['dpop_bound_access_tokens']],
  ];
  for (const [body, fields] of cases) {
    const res = await call(server, admin.token, 'POST', '/clients', { ...machine, ...body });
    assertProblem(res, 400);
    for (const field of fields) assert.ok(failingFields(res).includes(field), `${JSON.stringify(body)} → ${res.text}`);
  }
});

test('RFC 8705 §2.2: self_signed_tls_client_auth needs jwks whose x5c certificate holds the key', async () => {
  const ok = await call(server, admin.token, 'POST', '/clients', { ...machine, token_endpoint_auth_method: 'self_signed_tls_client_auth', jwks: certificateJwks(self.cert) });
  assert.equal(ok.status, 201, ok.text);
  assert.equal(ok.body.client_secret, undefined);

  const missing = await call(server, admin.token, 'POST', '/clients', { ...machine, token_endpoint_auth_method: 'self_signed_tls_client_auth' });
  assertProblem(missing, 400);
  assert.deepEqual(failingFields(missing), ['jwks']);
  const { x5c: _x5c, ...bare } = certificateJwks(self.cert).keys[0]!;
  const noX5c = await call(server, admin.token, 'POST', '/clients', { ...machine, token_endpoint_auth_method: 'self_signed_tls_client_auth', jwks: { keys: [bare] } });
  assertProblem(noX5c, 400);
  assert.deepEqual(failingFields(noX5c), ['jwks']);
  const mismatched = { ...certificateJwks(self.cert).keys[0]!, x5c: certificateJwks(other.cert).keys[0]!.x5c };
  const wrong = await call(server, admin.token, 'POST', '/clients', { ...machine, token_endpoint_auth_method: 'self_signed_tls_client_auth', jwks: { keys: [mismatched] } });
  assertProblem(wrong, 400, 'does not match');
});

test('RFC 9449 §5.2: dpop_bound_access_tokens is stored and cleared; OpenAPI documents the bound-client fields', async () => {
  const res = await call(server, admin.token, 'POST', '/clients', { ...machine, dpop_bound_access_tokens: true });
  assert.equal(res.status, 201, res.text);
  assert.equal(res.body.dpop_bound_access_tokens, true);
  const cleared = await call(server, admin.token, 'PATCH', `/clients/${res.body.client_id}`, { dpop_bound_access_tokens: null });
  assert.equal(cleared.status, 200, cleared.text);
  assert.equal(cleared.body.dpop_bound_access_tokens, undefined);

  const doc = (await call(server, undefined, 'GET', '/openapi.json')).body as { components: { schemas: Record<string, { properties: Record<string, unknown> }> } };
  for (const field of ['tls_client_auth_subject_dn', 'tls_client_auth_san_dns', 'tls_client_auth_san_uri', 'tls_client_auth_san_ip',
    'tls_client_auth_san_email', 'tls_client_certificate_bound_access_tokens', 'dpop_bound_access_tokens']) {
    assert.ok(doc.components.schemas.Client!.properties[field], field);
  }
  const text = JSON.stringify(doc);
  assert.ok(text.includes('self_signed_tls_client_auth'));
});
