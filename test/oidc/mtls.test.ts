import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { decodeJwt } from 'jose';
import { ADMIN_ROLE } from '../../src/identity/admin-roles.ts';
import { certificateJwks } from '../../src/identity/clients/index.ts';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';
import { onFreshPort } from '../support/net.ts';
import { TestPki, type Issued } from '../support/pki.ts';
import { tlsRequest } from '../support/tls-request.ts';
import { auditEvents } from './service-fixtures.ts';

/**
 * RFC 8705 against Keyward's own HTTPS listener: mutual-TLS client authentication (§2.1
 * tls_client_auth by subject DN and by SAN, §2.2 self_signed_tls_client_auth) and
 * certificate-bound access tokens (§3), with a test PKI made by openssl at test time.
 */
const run = promisify(execFile);

let db: TestDatabase;
let server: TestServer;
let url: string;
let pki: TestPki;
let serverCa: Issued;
let orders: Issued;
let billing: Issued;
let rogue: Issued;
let selfSigned: Issued;
const ids: Record<string, string> = {};
let secretClient: { id: string; secret: string };

const DN = 'CN=orders-service,O=Keyward Test,C=DE';
const API = 'https://orders.keyward.test';

before(async () => {
  db = await createTestDatabase();
  pki = new TestPki();
  const clientCa = pki.ca('client-ca');
  serverCa = pki.ca('server-ca');
  const serverCert = pki.issue('server', '/CN=127.0.0.1', { ca: serverCa, san: 'IP:127.0.0.1', server: true });
  orders = pki.issue('orders', '/C=DE/O=Keyward Test/CN=orders-service', {
    ca: clientCa, san: 'DNS:orders.internal.test,URI:spiffe://keyward.test/orders,IP:10.1.2.3,email:orders@keyward.test',
  });
  billing = pki.issue('billing', '/C=DE/O=Keyward Test/CN=billing-service', { ca: clientCa, san: 'DNS:billing.internal.test' });
  const rogueCa = pki.ca('rogue-ca');
  rogue = pki.issue('rogue', '/C=DE/O=Keyward Test/CN=orders-service', { ca: rogueCa, san: 'DNS:orders.internal.test' });
  selfSigned = pki.issue('self', '/CN=self-signed-job');
  server = await onFreshPort((port) => startServer(db, {
    PORT: String(port), ISSUER: `https://127.0.0.1:${port}`,
    KEYWARD_TLS_CERT_FILE: serverCert.certFile, KEYWARD_TLS_KEY_FILE: serverCert.keyFile, KEYWARD_TLS_CLIENT_CA_FILE: clientCa.certFile,
  }));
  url = server.keyward.config.issuer;
  const clients = server.keyward.clients;
  await server.keyward.resources.create({ identifier: API, name: 'Orders', scopes: ['orders:read'] });
  const mtls = async (name: string, extra: Record<string, unknown>) => (await clients.create({
    client_name: name, grant_types: ['client_credentials'], token_endpoint_auth_method: 'tls_client_auth', default_resource: API,
    tls_client_certificate_bound_access_tokens: true, ...extra,
  })).client.client_id;
  ids.dn = await mtls('by DN', { tls_client_auth_subject_dn: DN });
  ids.dns = await mtls('by SAN DNS', { tls_client_auth_san_dns: 'orders.internal.test' });
  ids.uri = await mtls('by SAN URI', { tls_client_auth_san_uri: 'spiffe://keyward.test/orders' });
  ids.ip = await mtls('by SAN IP', { tls_client_auth_san_ip: '10.1.2.3' });
  ids.email = await mtls('by SAN email', { tls_client_auth_san_email: 'orders@keyward.test' });
  ids.self = (await clients.create({
    client_name: 'self-signed', grant_types: ['client_credentials'], default_resource: API, token_endpoint_auth_method: 'self_signed_tls_client_auth',
    jwks: certificateJwks(selfSigned.cert), tls_client_certificate_bound_access_tokens: true,
  })).client.client_id;
  const created = await clients.create({
    client_name: 'secret, bound tokens', grant_types: ['client_credentials'], default_resource: API, tls_client_certificate_bound_access_tokens: true,
  });
  secretClient = { id: created.client.client_id, secret: created.client_secret! };
  ids.admin = await mtls('admin console by DN', { tls_client_auth_subject_dn: DN, admin_console: true, first_party: true, roles: [ADMIN_ROLE], default_resource: undefined });
});

after(async () => {
  await server?.stop();
  await db?.drop();
  pki?.remove();
});

function token(clientId: string, cert: Issued | undefined, extra: Record<string, string> = {}, headers: Record<string, string> = {}) {
  return tlsRequest(`${url}/token`, {
    ca: serverCa.cert, cert, headers,
    form: { grant_type: 'client_credentials', client_id: clientId, ...extra },
  });
}

describe('RFC 8705 §2.1 tls_client_auth (PKI)', () => {
  test('§2.1.2 by subject DN: the certificate authenticates the client and binds the token (§3.1 cnf x5t#S256)', async () => {
    const res = await token(ids.dn!, orders);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.token_type, 'Bearer');
    const claims = decodeJwt(res.json.access_token as string);
    assert.deepEqual(claims.cnf, { 'x5t#S256': orders.thumbprint });
    assert.equal(claims.client_id, ids.dn);
    const issued = await auditEvents(server.keyward, 'token.issued');
    assert.ok(issued.some((e) => e.actor === ids.dn && e.outcome === 'success' && e.details.bound === 'mtls'), 'audited as certificate-bound');
  });

  for (const kind of ['dns', 'uri', 'ip', 'email'] as const) {
    test(`§2.1.2 by SAN ${kind}: a matching certificate is accepted, another one of the same CA is invalid_client`, async () => {
      const ok = await token(ids[kind]!, orders);
      assert.equal(ok.status, 200, ok.text);
      const wrong = await token(ids[kind]!, billing);
      assert.equal(wrong.status, 401, wrong.text);
      assert.equal(wrong.json.error, 'invalid_client');
    });
  }

  test('§2.1: another subject, a certificate of an untrusted CA with the same DN, or no certificate → invalid_client', async () => {
    for (const cert of [billing, rogue, undefined]) {
      const res = await token(ids.dn!, cert);
      assert.equal(res.status, 401, `${cert ? 'with a certificate' : 'without one'}: ${res.text}`);
      assert.equal(res.json.error, 'invalid_client');
    }
  });

  test('§2.1 with curl --cert --key --cacert', async () => {
    const { stdout } = await run('curl', ['-sS', '--cert', orders.certFile, '--key', orders.keyFile, '--cacert', serverCa.certFile,
      '-d', 'grant_type=client_credentials', '-d', `client_id=${ids.dn}`, `${url}/token`]);
    const body = JSON.parse(stdout) as { access_token?: string };
    assert.ok(body.access_token, stdout);
    assert.deepEqual(decodeJwt(body.access_token).cnf, { 'x5t#S256': orders.thumbprint });
  });
});

describe('RFC 8705 §2.2 self_signed_tls_client_auth', () => {
  test('the registered self-signed certificate authenticates; a CA-issued one does not', async () => {
    const ok = await token(ids.self!, selfSigned);
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(decodeJwt(ok.json.access_token as string).cnf, { 'x5t#S256': selfSigned.thumbprint });
    const other = await token(ids.self!, orders);
    assert.equal(other.status, 401);
    assert.equal(other.json.error, 'invalid_client');
  });
});

describe('RFC 8705 §3 certificate-bound access tokens', () => {
  const basic = () => ({ authorization: `Basic ${Buffer.from(`${secretClient.id}:${secretClient.secret}`).toString('base64')}` });

  test('§3: a client authenticating with a secret gets tokens bound to the certificate it presents; none → invalid_grant', async () => {
    const bound = await tlsRequest(`${url}/token`, { ca: serverCa.cert, cert: billing, headers: basic(), form: { grant_type: 'client_credentials' } });
    assert.equal(bound.status, 200, bound.text);
    assert.deepEqual(decodeJwt(bound.json.access_token as string).cnf, { 'x5t#S256': billing.thumbprint });
    const bare = await tlsRequest(`${url}/token`, { ca: serverCa.cert, headers: basic(), form: { grant_type: 'client_credentials' } });
    assert.equal(bare.status, 400, bare.text);
    assert.equal(bare.json.error, 'invalid_grant');
  });

  test('§3.2: introspection returns cnf x5t#S256, which a thief\'s certificate does not match', async () => {
    const issued = await token(ids.dn!, orders);
    const res = await tlsRequest(`${url}/token/introspection`, {
      ca: serverCa.cert, cert: orders, form: { token: issued.json.access_token as string, client_id: ids.dn! },
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.active, true);
    assert.deepEqual(res.json.cnf, { 'x5t#S256': orders.thumbprint });
    assert.notEqual(res.json.cnf['x5t#S256'], billing.thumbprint);
    // The thief holds the token but not the key: it cannot even authenticate to introspect.
    const thief = await tlsRequest(`${url}/token/introspection`, {
      ca: serverCa.cert, cert: billing, form: { token: issued.json.access_token as string, client_id: ids.dn! },
    });
    assert.equal(thief.status, 401);
  });

  test('§3: a stolen certificate-bound admin token is refused by the admin API without its certificate', async () => {
    const issued = await token(ids.admin!, orders, { resource: `${url}/admin` });
    assert.equal(issued.status, 200, issued.text);
    const bearer = { authorization: `Bearer ${issued.json.access_token as string}` };
    const owner = await tlsRequest(`${url}/admin/v1/clients`, { ca: serverCa.cert, cert: orders, headers: bearer });
    assert.equal(owner.status, 200, owner.text);
    const none = await tlsRequest(`${url}/admin/v1/clients`, { ca: serverCa.cert, headers: bearer });
    assert.equal(none.status, 401, none.text);
    assert.match(String(none.headers['www-authenticate']), /invalid_token/);
    const other = await tlsRequest(`${url}/admin/v1/clients`, { ca: serverCa.cert, cert: billing, headers: bearer });
    assert.equal(other.status, 401, other.text);
  });
});

describe('RFC 8705 §3.3 / RFC 9449 §5.1 discovery', () => {
  test('advertises bound tokens and DPoP algorithms on the one set of endpoints', async () => {
    const res = await tlsRequest(`${url}/.well-known/openid-configuration`, { ca: serverCa.cert });
    assert.equal(res.json.tls_client_certificate_bound_access_tokens, true);
    assert.ok((res.json.token_endpoint_auth_methods_supported as string[]).includes('tls_client_auth'));
    assert.ok((res.json.token_endpoint_auth_methods_supported as string[]).includes('self_signed_tls_client_auth'));
    assert.ok((res.json.dpop_signing_alg_values_supported as string[]).includes('ES256'));
    assert.equal(res.json.mtls_endpoint_aliases, undefined);
  });
});
