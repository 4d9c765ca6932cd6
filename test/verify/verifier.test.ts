import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import {
  certificateThumbprint, createVerifier, InsufficientScope, InvalidRequest, InvalidToken, requireRoles, requireScopes, type Verifier,
} from 'keyward/verify';
import { API, TestIssuer, unsigned } from './issuer.ts';

/** keyward/verify's token checks (RFC 9068, RFC 6750, RFC 9449, RFC 8705) against a real HTTP issuer. */
let issuer: TestIssuer;
let verifier: Verifier;

before(async () => {
  issuer = await TestIssuer.start();
  verifier = createVerifier({ issuer: issuer.url, audience: API });
});
after(() => issuer.stop());

const code = (expected: 'invalid_token' | 'insufficient_scope' | 'invalid_request', message?: RegExp) => (error: unknown) => {
  assert.ok(error instanceof InvalidToken || error instanceof InsufficientScope || error instanceof InvalidRequest, String(error));
  assert.equal(error.code, expected);
  if (message) assert.match(error.message, message);
  return true;
};

describe('RFC 9068 access-token validation', () => {
  test('RFC 9068 §4: a valid at+jwt verifies and resolves to its claims', async () => {
    const claims = await verifier.verify(await issuer.token());
    assert.equal(claims.client_id, 'svc-orders');
    assert.deepEqual(claims.roles, ['orders-reader']);
    assert.equal(claims.scope, 'orders:read');
  });

  test('RFC 9068 §4: typ application/at+jwt is the same media type and verifies', async () => {
    await verifier.verify(await issuer.token({}, { typ: 'application/at+jwt' }));
  });

  test('RFC 9068 §4: an ID token of the same issuer, even with our audience, is not an access token', async () => {
    const idToken = await issuer.token({ nonce: 'n', auth_time: 1 }, { typ: 'JWT' });
    await assert.rejects(verifier.verify(idToken), code('invalid_token', /typ must be at\+jwt/));
    await assert.rejects(verifier.verify(await issuer.token({}, { typ: null })), code('invalid_token', /typ/));
  });

  test('RFC 9068 §4: a token for another audience is refused', async () => {
    await assert.rejects(verifier.verify(await issuer.token({ aud: 'https://billing.example.test' })), code('invalid_token', /aud/));
  });

  test('a verifier may accept several audiences', async () => {
    const both = createVerifier({ issuer: issuer.url, audience: [API, 'https://billing.example.test'] });
    await both.verify(await issuer.token({ aud: 'https://billing.example.test' }));
  });

  test('RFC 9068 §4: a token of another issuer is refused', async () => {
    await assert.rejects(verifier.verify(await issuer.token({ iss: 'https://evil.example' })), code('invalid_token', /iss/));
  });

  test('RFC 7519 §4.1.4: an expired token is refused; clockTolerance allows the configured skew only', async () => {
    const iat = Math.floor(Date.now() / 1000) - 400;
    const expired = await issuer.token({ iat, exp: iat + 390 });
    await assert.rejects(verifier.verify(expired), code('invalid_token', /expired/));
    const lenient = createVerifier({ issuer: issuer.url, audience: API, clockTolerance: 30 });
    await lenient.verify(expired);
    const longAgo = await issuer.token({ iat, exp: iat + 300 });
    await assert.rejects(lenient.verify(longAgo), code('invalid_token', /expired/));
  });

  test('RFC 7519 §4.1.5: a token not yet valid (nbf) is refused', async () => {
    await assert.rejects(verifier.verify(await issuer.token({ nbf: Math.floor(Date.now() / 1000) + 120 })), code('invalid_token', /nbf/));
  });

  test('RFC 9068 §2.2: a token without client_id or jti is refused', async () => {
    await assert.rejects(verifier.verify(await issuer.token({ client_id: undefined })), code('invalid_token', /client_id/));
    await assert.rejects(verifier.verify(await issuer.token({ jti: undefined })), code('invalid_token', /jti/));
  });

  test('RFC 8725 §3.1: alg none is refused, and cannot be configured', async () => {
    const now = Math.floor(Date.now() / 1000);
    const none = unsigned({ iss: issuer.url, aud: API, sub: 's', client_id: 's', iat: now, exp: now + 60, jti: 'j' }, { kid: 'k1' });
    await assert.rejects(verifier.verify(none), code('invalid_token'));
    assert.throws(() => createVerifier({ issuer: issuer.url, audience: API, algorithms: ['none'] }), TypeError);
  });

  test('RFC 8725 §2.1: an HMAC token keyed with the public key (algorithm confusion) is refused, and HS* cannot be configured', async () => {
    const now = Math.floor(Date.now() / 1000);
    const secret = new TextEncoder().encode(JSON.stringify(issuer.keys[0]!.jwk));
    const forged = await new SignJWT({ iss: issuer.url, aud: API, sub: 's', client_id: 's', iat: now, exp: now + 60, jti: 'j' })
      .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: 'k1' }).sign(secret);
    await assert.rejects(verifier.verify(forged), code('invalid_token', /algorithm/));
    assert.throws(() => createVerifier({ issuer: issuer.url, audience: API, algorithms: ['HS256'] }), TypeError);
  });

  test('a token whose payload was altered after signing is refused', async () => {
    const [h, p, s] = (await issuer.token()).split('.');
    const payload = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>;
    payload.roles = ['admin'];
    const tampered = `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
    await assert.rejects(verifier.verify(tampered), code('invalid_token', /signature/));
  });

  test('garbage is invalid_token, never a crash', async () => {
    for (const junk of ['', 'a', 'a.b.c', 'x'.repeat(5000), '..', 'eyJ.eyJ.']) {
      await assert.rejects(verifier.verify(junk), code('invalid_token'));
    }
  });

  test('RFC 6750 §3: an error_description can never break out of its quoted string', () => {
    const header = new InvalidToken('x", error="none\\\r\nSet-Cookie: a=b').challenge('api');
    assert.equal(header, 'Bearer realm="api", error="invalid_token", error_description="x?, error=?none???Set-Cookie: a=b"');
  });
});

describe('guards', () => {
  test('requireRoles: every listed role must be held, else insufficient_scope (403)', async () => {
    const claims = await verifier.verify(await issuer.token({ roles: ['orders-reader', 'auditor'] }));
    requireRoles('orders-reader', 'auditor')(claims);
    assert.throws(() => requireRoles('orders-writer')(claims), (e: unknown) => e instanceof InsufficientScope && e.status === 403);
    const none = await verifier.verify(await issuer.token({ roles: undefined }));
    assert.throws(() => requireRoles('orders-reader')(none), InsufficientScope);
  });

  test('requireScopes: RFC 6750 §3.1 insufficient_scope names the scope needed', async () => {
    const claims = await verifier.verify(await issuer.token({ scope: 'orders:read orders:write' }));
    requireScopes('orders:write')(claims);
    let error: InsufficientScope | undefined;
    try {
      requireScopes('orders:admin')(claims);
    } catch (e) {
      error = e as InsufficientScope;
    }
    assert.equal(error?.challenge(), 'Bearer error="insufficient_scope", error_description="the token lacks a required scope", scope="orders:admin"');
  });
});

describe('RFC 9449 DPoP-bound tokens', () => {
  const URL_ = 'https://orders.example.test/orders/7';
  let key: { privateKey: CryptoKey; jwk: JWK; jkt: string };

  before(async () => {
    const pair = await generateKeyPair('ES256');
    const jwk = await exportJWK(pair.publicKey);
    key = { privateKey: pair.privateKey, jwk, jkt: await calculateJwkThumbprint(jwk, 'sha256') };
  });

  const ath = (token: string) => createHash('sha256').update(token).digest('base64url');
  async function proof(token: string, overrides: Record<string, unknown> = {}, signer = key): Promise<string> {
    return new SignJWT({ jti: randomUUID(), htm: 'GET', htu: URL_, iat: Math.floor(Date.now() / 1000), ath: ath(token), ...overrides })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: signer.jwk }).sign(signer.privateKey);
  }

  test('RFC 9449 §4.3, §7.1: a bound token with a valid proof for this request verifies', async () => {
    const token = await issuer.token({ cnf: { jkt: key.jkt } });
    const claims = await verifier.verify(token, { dpop: { proof: await proof(token), method: 'get', url: `${URL_}?page=2` } });
    assert.deepEqual(claims.cnf, { jkt: key.jkt });
  });

  test('RFC 9449 §7.1: a bound token without a proof is refused with a DPoP challenge', async () => {
    const token = await issuer.token({ cnf: { jkt: key.jkt } });
    const error: unknown = await verifier.verify(token).then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof InvalidToken);
    assert.match(error.challenge(), /^DPoP error="invalid_token", .*algs="/);
  });

  test('RFC 9449 §4.3: proofs for another method, URL, token or key, stale, or with a private key are refused', async () => {
    const token = await issuer.token({ cnf: { jkt: key.jkt } });
    const dpop = async (p: Promise<string>) => ({ dpop: { proof: await p, method: 'GET', url: URL_ } });
    const other = await generateKeyPair('ES256');
    const otherKey = { privateKey: other.privateKey, jwk: await exportJWK(other.publicKey), jkt: '' };
    const cases: [string, Promise<{ dpop: { proof: string; method: string; url: string } }>, RegExp][] = [
      ['htm', dpop(proof(token, { htm: 'POST' })), /htm/],
      ['htu', dpop(proof(token, { htu: 'https://orders.example.test/orders/8' })), /htu/],
      ['ath', dpop(proof(token, { ath: ath('another token') })), /ath/],
      ['key', dpop(proof(token, {}, otherKey)), /not the key/],
      ['iat', dpop(proof(token, { iat: Math.floor(Date.now() / 1000) - 3600 })), /iat/],
      ['typ', (async () => ({ dpop: { method: 'GET', url: URL_, proof: await new SignJWT({ jti: 'j', htm: 'GET', htu: URL_, iat: Math.floor(Date.now() / 1000), ath: ath(token) }).setProtectedHeader({ alg: 'ES256', typ: 'JWT', jwk: key.jwk }).sign(key.privateKey) } }))(), /typ/],
      ['private jwk', (async () => {
        const pair = await generateKeyPair('ES256', { extractable: true });
        const priv = await exportJWK(pair.privateKey);
        const p = await new SignJWT({ jti: 'j', htm: 'GET', htu: URL_, iat: Math.floor(Date.now() / 1000), ath: ath(token) }).setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: priv }).sign(pair.privateKey);
        return { dpop: { proof: p, method: 'GET', url: URL_ } };
      })(), /public jwk/],
    ];
    for (const [name, input, why] of cases) {
      await assert.rejects(verifier.verify(token, await input), code('invalid_token', why), name);
    }
  });

  test('RFC 9449 §7.2: a DPoP proof with a token that is not bound is refused', async () => {
    const token = await issuer.token();
    await assert.rejects(verifier.verify(token, { dpop: { proof: await proof(token), method: 'GET', url: URL_ } }), code('invalid_token', /not DPoP-bound/));
  });

  test('RFC 9449 §11.1: with a jti store, a replayed proof is refused', async () => {
    const seen = new Set<string>();
    const strict = createVerifier({ issuer: issuer.url, audience: API, dpop: { jtiUnused: (jti) => !seen.has(jti) && Boolean(seen.add(jti)) } });
    const token = await issuer.token({ cnf: { jkt: key.jkt } });
    const input = { dpop: { proof: await proof(token), method: 'GET', url: URL_ } };
    await strict.verify(token, input);
    await assert.rejects(strict.verify(token, input), code('invalid_token', /replayed/));
  });
});

describe('RFC 8705 certificate-bound tokens', () => {
  const der = Buffer.from('3082010a0282010100c0ffee', 'hex');
  const pem = `-----BEGIN CERTIFICATE-----\n${der.toString('base64')}\n-----END CERTIFICATE-----\n`;
  const x5t = createHash('sha256').update(der).digest('base64url');

  test('RFC 8705 §3.1: the certificate whose SHA-256 thumbprint is cnf x5t#S256 verifies, as DER or PEM', async () => {
    assert.equal(await certificateThumbprint(der), x5t);
    const token = await issuer.token({ cnf: { 'x5t#S256': x5t } });
    await verifier.verify(token, { certificate: der });
    await verifier.verify(token, { certificate: pem });
  });

  test('RFC 8705 §3: a bound token with no certificate or another one is refused', async () => {
    const token = await issuer.token({ cnf: { 'x5t#S256': x5t } });
    await assert.rejects(verifier.verify(token), code('invalid_token', /certificate/));
    await assert.rejects(verifier.verify(token, { certificate: Buffer.from('other') }), code('invalid_token', /does not match/));
  });
});
