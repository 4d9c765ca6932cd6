import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/env.ts';
import { TestPki } from '../support/pki.ts';

/** KEYWARD_TLS_* and KEYWARD_CLIENT_CERT_HEADER: each mistake is one line naming its variable. */
const pki = new TestPki();
const ca = pki.ca('ca');
const server = pki.issue('server', '/CN=127.0.0.1', { ca, server: true, san: 'IP:127.0.0.1' });
const notPem = path.join(pki.dir, 'not.pem');
writeFileSync(notPem, 'hello\n');
after(() => pki.remove());

function rejected(env: Record<string, string>, variable: string, form: RegExp): void {
  assert.throws(() => loadConfig(env), (error: unknown) => {
    assert.ok(error instanceof ConfigError, String(error));
    assert.match(error.message, new RegExp(`^invalid ${variable}: `));
    assert.match(error.message, form);
    assert.doesNotMatch(error.message, /\n/);
    return true;
  });
}

test('the TLS listener: both files or neither, readable, PEM; the client CA bundle also stands alone (proxy header path)', () => {
  const both = loadConfig({ KEYWARD_TLS_CERT_FILE: server.certFile, KEYWARD_TLS_KEY_FILE: server.keyFile, KEYWARD_TLS_CLIENT_CA_FILE: ca.certFile });
  assert.ok(both.tls?.cert.toString().includes('BEGIN CERTIFICATE'));
  assert.ok(both.clientCa?.toString().includes('BEGIN CERTIFICATE'));
  assert.equal(loadConfig({}).tls, undefined);
  const caOnly = loadConfig({ KEYWARD_TLS_CLIENT_CA_FILE: ca.certFile });
  assert.equal(caOnly.tls, undefined);
  assert.ok(caOnly.clientCa);

  rejected({ KEYWARD_TLS_CERT_FILE: server.certFile }, 'KEYWARD_TLS_KEY_FILE', /set both/);
  rejected({ KEYWARD_TLS_KEY_FILE: server.keyFile }, 'KEYWARD_TLS_CERT_FILE', /set both/);
  rejected({ KEYWARD_TLS_CERT_FILE: path.join(pki.dir, 'missing.pem'), KEYWARD_TLS_KEY_FILE: server.keyFile }, 'KEYWARD_TLS_CERT_FILE', /cannot read .*ENOENT/);
  rejected({ KEYWARD_TLS_CERT_FILE: notPem, KEYWARD_TLS_KEY_FILE: server.keyFile }, 'KEYWARD_TLS_CERT_FILE', /no PEM certificate/);
  rejected({ KEYWARD_TLS_CERT_FILE: server.certFile, KEYWARD_TLS_KEY_FILE: notPem }, 'KEYWARD_TLS_KEY_FILE', /no PEM private key/);
  rejected({ KEYWARD_TLS_CLIENT_CA_FILE: notPem }, 'KEYWARD_TLS_CLIENT_CA_FILE', /no PEM certificate/);
});

test('KEYWARD_CLIENT_CERT_HEADER is a header name (kept lower-case); KEYWARD_DPOP_REQUIRE_NONCE a boolean', () => {
  assert.equal(loadConfig({ KEYWARD_CLIENT_CERT_HEADER: 'X-SSL-Client-Cert' }).clientCertHeader, 'x-ssl-client-cert');
  rejected({ KEYWARD_CLIENT_CERT_HEADER: 'X SSL' }, 'KEYWARD_CLIENT_CERT_HEADER', /header name/);
  assert.equal(loadConfig({}).dpopRequireNonce, false);
  assert.equal(loadConfig({ KEYWARD_DPOP_REQUIRE_NONCE: 'true' }).dpopRequireNonce, true);
  rejected({ KEYWARD_DPOP_REQUIRE_NONCE: 'yes' }, 'KEYWARD_DPOP_REQUIRE_NONCE', /./);
});
