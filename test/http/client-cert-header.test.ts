import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decodeJwt } from 'jose';
import { chainsTo, ClientCertificates, decodePem, MAX_CERTIFICATE_HEADER, xfccCertificate } from '../../src/http/client-certificate.ts';
import { binary } from '../support/binary.ts';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';
import { onFreshPort } from '../support/net.ts';
import { nginxPreamble } from '../support/nginx.ts';
import { TestPki, type Issued } from '../support/pki.ts';
import { tlsRequest } from '../support/tls-request.ts';

/**
 * RFC 8705 behind a TLS-terminating proxy: the client certificate arrives in a header
 * (KEYWARD_CLIENT_CERT_HEADER), trusted only with KEYWARD_PROXY_HOPS > 0. A real nginx with
 * `ssl_verify_client optional_no_ca` forwards `$ssl_client_escaped_cert`; Keyward checks the
 * chain against KEYWARD_TLS_CLIENT_CA_FILE itself. Envoy's XFCC format is parsed too.
 */
const NGINX = binary('nginx');

const pki = new TestPki();
const clientCa = pki.ca('client-ca');
const orders = pki.issue('orders', '/C=DE/O=Keyward Test/CN=orders-service', { ca: clientCa, san: 'DNS:orders.internal.test' });
const rogueCa = pki.ca('rogue-ca');
const rogue = pki.issue('rogue', '/C=DE/O=Keyward Test/CN=orders-service', { ca: rogueCa, san: 'DNS:orders.internal.test' });
const escaped = encodeURIComponent(orders.cert);
after(() => pki.remove());

describe('Envoy x-forwarded-client-cert and nginx $ssl_client_escaped_cert parsing', () => {
  test('XFCC: the Cert element of the first (client-facing) element is the client certificate', () => {
    const xfcc = `By=spiffe://mesh/keyward;Hash=abc;Cert="${escaped}";Subject="CN=orders-service,O=Keyward Test,C=DE";URI=,`
      + `By=spiffe://mesh/next;Cert="${encodeURIComponent(rogue.cert)}"`;
    const pem = xfccCertificate(xfcc);
    assert.ok(pem);
    assert.equal(new X509Certificate(pem).fingerprint256, new X509Certificate(orders.cert).fingerprint256);
    assert.equal(xfccCertificate(`Hash=abc;Cert=${escaped}`)?.trim(), orders.cert.trim(), 'unquoted value');
    assert.equal(xfccCertificate('By=spiffe://x;Hash=abc'), undefined, 'no Cert element');
    assert.equal(xfccCertificate('Cert="not%20a%20certificate"'), undefined);
  });

  test('nginx escaped PEM decodes; anything else is no certificate', () => {
    assert.equal(decodePem(escaped), orders.cert.trim());
    assert.equal(decodePem('%E0%A4%A'), undefined);
    assert.equal(decodePem(encodeURIComponent('-----BEGIN CERTIFICATE-----\n<script>\n-----END CERTIFICATE-----')), undefined);
  });

  test('the header is read only behind a proxy, only up to its size bound, and chained against the bundle', () => {
    const reqWith = (value: string) => ({ headers: { 'x-forwarded-client-cert': value }, socket: {} }) as never;
    const options = { header: 'x-forwarded-client-cert', clientCa: Buffer.from(clientCa.cert), now: () => new Date() };
    const trusted = new ClientCertificates({ ...options, proxyHops: 1 });
    assert.equal(trusted.of(reqWith(`Cert="${escaped}"`))?.chained, true);
    assert.equal(trusted.of(reqWith(`Cert="${encodeURIComponent(rogue.cert)}"`))?.chained, false);
    assert.equal(trusted.of(reqWith(`Cert="${escaped}";${'x'.repeat(MAX_CERTIFICATE_HEADER)}`)), undefined);
    const untrusted = new ClientCertificates({ ...options, proxyHops: 0 });
    assert.equal(untrusted.headerIgnored, true);
    assert.equal(untrusted.of(reqWith(`Cert="${escaped}"`)), undefined);
  });

  test('a certificate outside its validity period does not chain', () => {
    const anchors = [new X509Certificate(clientCa.cert)];
    const leaf = new X509Certificate(orders.cert);
    assert.equal(chainsTo(leaf, anchors, new Date()), true);
    assert.equal(chainsTo(leaf, anchors, new Date(Date.now() + 3 * 86_400_000)), false);
    assert.equal(chainsTo(new X509Certificate(rogue.cert), anchors, new Date()), false);
  });
});

describe('RFC 8705 §2.1 through a real nginx (KEYWARD_CLIENT_CERT_HEADER)', { skip: NGINX ? false : 'nginx is not installed (.ci/run installs it)' }, () => {
  let db: TestDatabase;
  let directDb: TestDatabase;
  let keyward: TestServer;
  let direct: TestServer;
  let nginx: ChildProcess | undefined;
  let gateway: string;
  let serverCa: Issued;
  let clientId: string;

  before(async () => {
    db = await createTestDatabase();
    serverCa = pki.ca('server-ca');
    const serverCert = pki.issue('nginx', '/CN=127.0.0.1', { ca: serverCa, san: 'IP:127.0.0.1', server: true });
    const nginxPort = await onFreshPort(async (port) => port);
    gateway = `https://127.0.0.1:${nginxPort}`;
    const env = { ISSUER: gateway, KEYWARD_CLIENT_CERT_HEADER: 'X-SSL-Client-Cert', KEYWARD_TLS_CLIENT_CA_FILE: clientCa.certFile };
    keyward = await startServer(db, { ...env, KEYWARD_PROXY_HOPS: '1' });
    // The same header setting, but no proxy hops: the header must mean nothing.
    directDb = await createTestDatabase();
    direct = await startServer(directDb, { ...env, KEYWARD_PROXY_HOPS: '0' });
    const upstream = new URL(keyward.url).port;
    const dir = pki.dir;
    // The issuer names nginx's port, so it was chosen before Keyward started; no retry on another.
    await (async (port: number) => {
      const conf = path.join(dir, `nginx-${port}.conf`);
      writeFileSync(conf, `${nginxPreamble(dir)}  server {
    listen 127.0.0.1:${nginxPort} ssl;
    ssl_certificate ${serverCert.certFile};
    ssl_certificate_key ${serverCert.keyFile};
    ssl_verify_client optional_no_ca;
    location = /__ready { return 204; }
    location / {
      proxy_pass http://127.0.0.1:${upstream};
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto https;
      proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert;
    }
  }
}
`);
      const child = spawn(NGINX!, ['-p', dir, '-e', path.join(dir, 'nginx-error.log'), '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stderr!.on('data', (d: Buffer) => { output += d.toString(); });
      for (let i = 0; i < 100; i++) {
        if (child.exitCode !== null) {
          throw new Error(`nginx exited ${child.exitCode}: ${output}`);
        }
        try {
          await tlsRequest(`${gateway}/__ready`, { ca: serverCa.cert });
          nginx = child;
          return;
        } catch {
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      child.kill('SIGKILL');
      throw new Error(`nginx did not start: ${output}`);
    })(nginxPort);
    await keyward.keyward.resources.create({ identifier: 'https://orders.keyward.test', name: 'Orders' });
    clientId = (await keyward.keyward.clients.create({
      client_name: 'behind nginx', grant_types: ['client_credentials'], token_endpoint_auth_method: 'tls_client_auth',
      tls_client_auth_san_dns: 'orders.internal.test', tls_client_certificate_bound_access_tokens: true,
      default_resource: 'https://orders.keyward.test',
    })).client.client_id;
  });

  after(async () => {
    nginx?.kill('SIGTERM');
    await direct?.stop();
    await keyward?.stop();
    await directDb?.drop();
    await db?.drop();
  });

  const viaNginx = (cert: Issued | undefined, headers: Record<string, string> = {}) => tlsRequest(`${gateway}/token`, {
    ca: serverCa.cert, cert, headers, form: { grant_type: 'client_credentials', client_id: clientId },
  });

  test('the certificate nginx forwards authenticates the client and binds its token', async () => {
    const res = await viaNginx(orders);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(decodeJwt(res.json.access_token as string).cnf, { 'x5t#S256': orders.thumbprint });
  });

  test('optional_no_ca lets any certificate through nginx: Keyward refuses one not chaining to its CA bundle', async () => {
    const res = await viaNginx(rogue);
    assert.equal(res.status, 401, res.text);
    assert.equal(res.json.error, 'invalid_client');
  });

  test('a client cannot smuggle the header through nginx: nginx overwrites it with the (absent) certificate', async () => {
    const res = await viaNginx(undefined, { 'X-SSL-Client-Cert': escaped });
    assert.equal(res.status, 401, res.text);
    assert.equal(res.json.error, 'invalid_client');
  });

  test('without KEYWARD_PROXY_HOPS the header is ignored, and start-up warned about it', async () => {
    const res = await fetch(`${direct.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-ssl-client-cert': escaped },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId }),
    });
    assert.equal(res.status, 401, await res.clone().text());
    assert.equal(((await res.json()) as { error: string }).error, 'invalid_client');
    assert.match(direct.logs.text, /KEYWARD_CLIENT_CERT_HEADER is ignored/);
    assert.doesNotMatch(keyward.logs.text, /KEYWARD_CLIENT_CERT_HEADER is ignored/);
  });
});
