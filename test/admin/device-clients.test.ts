/**
 * Device clients (RFC 8628) through the admin API: public (auth method none) or confidential,
 * no redirect URIs needed, and what the device authorization endpoint then accepts.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DEVICE_CODE_GRANT } from '../../src/identity/clients/metadata.ts';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';
import { basic, postForm } from '../oidc/service-fixtures.ts';
import { adminClient, assertNoLeaks, assertProblem, call, failingFields, type AdminClient } from './support.ts';

let db: TestDatabase;
let server: TestServer;
let admin: AdminClient;

before(async () => {
  db = await createTestDatabase();
  server = await startServer(db);
  admin = await adminClient(server);
});
after(async () => {
  await server?.stop();
  await db?.drop();
});

test('RFC 8628 §3.1: a public device client (auth method none, no redirect URIs) is registered without a secret and may start device authorization', async () => {
  const res = await call(server, admin.token, 'POST', '/clients', {
    client_name: 'Kiosk', grant_types: [DEVICE_CODE_GRANT, 'refresh_token'], token_endpoint_auth_method: 'none',
  });
  assert.equal(res.status, 201, res.text);
  assert.equal(res.body.client_secret, undefined);
  assert.deepEqual(res.body.redirect_uris, []);
  assert.deepEqual(res.body.grant_types, [DEVICE_CODE_GRANT, 'refresh_token']);
  const started = await postForm(server.url, '/device/auth', { client_id: res.body.client_id, scope: 'openid' });
  assert.equal(started.status, 200, started.text);
  assert.equal(typeof started.json!.device_code, 'string');
  assert.equal(started.json!.interval, 5);
});

test('RFC 8628 §3.1: a confidential device client authenticates at the device authorization endpoint', async () => {
  const res = await call(server, admin.token, 'POST', '/clients', {
    client_name: 'Set-top box', grant_types: [DEVICE_CODE_GRANT], token_endpoint_auth_method: 'client_secret_basic',
  });
  assert.equal(res.status, 201, res.text);
  assert.ok(res.body.client_secret);
  const ok = await postForm(server.url, '/device/auth', { scope: 'openid' }, { authorization: basic(res.body.client_id, res.body.client_secret) });
  assert.equal(ok.status, 200, ok.text);
  const anonymous = await postForm(server.url, '/device/auth', { client_id: res.body.client_id, scope: 'openid' });
  assert.equal(anonymous.status, 401);
  assert.equal(anonymous.json!.error, 'invalid_client');
});

test('a client not registered for the device grant cannot start device authorization', async () => {
  const res = await call(server, admin.token, 'POST', '/clients', {
    client_name: 'Web', grant_types: ['authorization_code'], token_endpoint_auth_method: 'none', redirect_uris: ['https://web.example/cb'],
  });
  assert.equal(res.status, 201, res.text);
  const refused = await postForm(server.url, '/device/auth', { client_id: res.body.client_id, scope: 'openid' });
  assert.equal(refused.status, 400, refused.text);
  assert.equal(refused.json!.error, 'unauthorized_client');
});

test('validation: refresh_token needs authorization_code or the device grant; unknown grant types are refused', async () => {
  const alone = await call(server, admin.token, 'POST', '/clients', { client_name: 'x', grant_types: ['refresh_token'], token_endpoint_auth_method: 'none' });
  assertProblem(alone, 400);
  assert.deepEqual(failingFields(alone), ['grant_types']);
  const unknown = await call(server, admin.token, 'POST', '/clients', { client_name: 'x', grant_types: ['urn:ietf:params:oauth:grant-type:device'] });
  assertProblem(unknown, 400);
  const all = await call(server, admin.token, 'POST', '/clients', {
    client_name: 'Everything', grant_types: ['authorization_code', 'refresh_token', 'client_credentials', DEVICE_CODE_GRANT],
    redirect_uris: ['https://app.example/cb'],
  });
  assert.equal(all.status, 201, all.text);
});

test('the OpenAPI document and discovery name the device grant', async () => {
  const doc = await call(server, undefined, 'GET', '/openapi.json');
  assert.ok(doc.text.includes(DEVICE_CODE_GRANT));
  const discovery = await (await fetch(`${server.url}/.well-known/openid-configuration`)).json() as Record<string, unknown>;
  assert.equal(discovery.device_authorization_endpoint, `${server.url}/device/auth`);
  assert.ok((discovery.grant_types_supported as string[]).includes(DEVICE_CODE_GRANT));
});

test('no secret or hash appears in any response or log line', async () => {
  await assertNoLeaks(server);
});
