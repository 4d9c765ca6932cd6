import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { IssuerKeys, subjectMatches } from '../../src/identity/federation/index.ts';
import { mismatchOf, type FederatedCredential } from '../../src/identity/federation/rules.ts';

test('subject_pattern: * matches within one segment; segments are separated by / and :', () => {
  assert.ok(subjectMatches('repo:acme/*:ref:refs/heads/main', 'repo:acme/deployer:ref:refs/heads/main'));
  assert.ok(subjectMatches('system:serviceaccount:prod:*', 'system:serviceaccount:prod:invoicer'));
  assert.ok(subjectMatches('spiffe://prod.acme/ns/payments/sa/*', 'spiffe://prod.acme/ns/payments/sa/invoicer'));
  assert.ok(subjectMatches('repo:acme/deploy-*:*', 'repo:acme/deploy-eu:environment'));
  assert.ok(subjectMatches('repo:acme/*:ref:refs/heads/*', 'repo:acme/x:ref:refs/heads/'), 'a star may match nothing');
  // Never across a separator.
  assert.ok(!subjectMatches('system:serviceaccount:prod:*', 'system:serviceaccount:prod:a:b'));
  assert.ok(!subjectMatches('repo:acme/*:ref:refs/heads/main', 'repo:acme/a/b:ref:refs/heads/main'));
  assert.ok(!subjectMatches('repo:acme/*:ref:refs/heads/main', 'repo:evil/acme:ref:refs/heads/main'));
  assert.ok(!subjectMatches('repo:acme/*:ref:refs/heads/main', 'repo:acme/x:ref:refs/heads/main-feature'));
  assert.ok(!subjectMatches('repo:acme/*', 'repo:acme/x/y'));
  // Literal characters are literal (no regex, no ?).
  assert.ok(!subjectMatches('a.b', 'axb'));
  assert.ok(subjectMatches('a?b', 'a?b'));
});

test('subject_pattern matching is linear: a pathological pattern answers at once', () => {
  const started = performance.now();
  assert.ok(!subjectMatches(`${'*a'.repeat(200)}b`, 'a'.repeat(5000)));
  assert.ok(performance.now() - started < 1000);
});

const rule: FederatedCredential = {
  id: 'c1', clientId: 'x', name: 'n', issuer: 'https://iss.example', jwksUri: undefined, jwks: undefined,
  subject: 's', subjectPattern: undefined, audience: undefined, claims: { repository_id: '74', private: false }, createdAt: new Date(),
};

test('claim conditions are exact and typed: "74" is not 74, false is not absent', () => {
  const claims = { iss: 'https://iss.example', aud: 'https://keyward.example', sub: 's', repository_id: '74', private: false };
  assert.equal(mismatchOf(rule, claims, 'https://keyward.example'), undefined);
  assert.deepEqual(mismatchOf(rule, { ...claims, repository_id: 74 }, 'https://keyward.example'), { reason: 'claim_mismatch', claim: 'repository_id' });
  assert.deepEqual(mismatchOf(rule, { ...claims, private: undefined }, 'https://keyward.example'), { reason: 'claim_mismatch', claim: 'private' });
  assert.deepEqual(mismatchOf(rule, { ...claims, aud: ['https://a', 'https://keyward.example'] }, 'https://keyward.example'), undefined);
  assert.equal(mismatchOf(rule, { ...claims, aud: 'https://other' }, 'https://keyward.example')?.reason, 'audience_mismatch');
});

// --- issuer keys -------------------------------------------------------------------------

let server: Server;
let base: string;
const served = { maxAge: 600, discoveryIssuer: '', body: undefined as string | undefined, jwksHits: 0, discoveryHits: 0 };
let key: { privateKey: CryptoKey; jwk: JWK };

async function newKey(): Promise<void> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  key = { privateKey, jwk: { ...(await exportJWK(publicKey)), kid: `k${Math.random()}`, alg: 'ES256' } };
}

before(async () => {
  await newKey();
  server = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.url === '/.well-known/openid-configuration') {
      served.discoveryHits += 1;
      return res.end(JSON.stringify({ issuer: served.discoveryIssuer || base, jwks_uri: `${base}/jwks` }));
    }
    served.jwksHits += 1;
    res.setHeader('cache-control', `max-age=${served.maxAge}`);
    res.end(served.body ?? JSON.stringify({ keys: [key.jwk] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

async function resolves(keys: IssuerKeys, kid: string): Promise<boolean> {
  const resolver = await keys.resolver({ issuer: base, jwksUri: undefined }, kid);
  const token = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid }).sign(key.privateKey);
  try {
    const [h] = token.split('.');
    await resolver(JSON.parse(Buffer.from(h!, 'base64url').toString()) as never, { payload: '', signature: '' } as never);
    return true;
  } catch {
    return false;
  }
}

test('issuer keys: discovery then JWKS, cached for Cache-Control max-age; an unknown kid refetches at most once per 30 s, so a rotation is picked up', async () => {
  let clock = 1_000_000;
  const keys = new IssuerKeys({ now: () => clock });
  served.jwksHits = 0;
  served.discoveryHits = 0;
  assert.ok(await resolves(keys, key.jwk.kid!));
  assert.ok(await resolves(keys, key.jwk.kid!));
  assert.deepEqual([served.discoveryHits, served.jwksHits], [1, 1]);

  await newKey();
  clock += 5_000;
  assert.ok(!(await resolves(keys, key.jwk.kid!)), 'within 30 s of the last fetch an unknown kid does not refetch');
  assert.equal(served.jwksHits, 1);
  clock += 30_000;
  assert.ok(await resolves(keys, key.jwk.kid!), 'after 30 s it does, and finds the rotated key');
  assert.equal(served.jwksHits, 2);

  clock += 601_000;
  assert.ok(await resolves(keys, key.jwk.kid!));
  assert.equal(served.jwksHits, 3, 'an expired set (max-age 600) is refetched');
});

test('issuer keys: a discovery document naming another issuer, an oversized JWKS and a non-JSON answer are refused', async () => {
  served.discoveryIssuer = 'https://impostor.example';
  await assert.rejects(new IssuerKeys().resolver({ issuer: base, jwksUri: undefined }, 'x'), /another issuer/);
  served.discoveryIssuer = '';
  served.body = JSON.stringify({ keys: [], padding: 'x'.repeat(300 * 1024) });
  await assert.rejects(new IssuerKeys().resolver({ issuer: base, jwksUri: `${base}/jwks` }, 'x'), /more than/);
  served.body = 'not json';
  await assert.rejects(new IssuerKeys().resolver({ issuer: base, jwksUri: `${base}/jwks` }, 'x'), /did not answer JSON/);
  served.body = undefined;
});

test('issuer keys: a timeout bounds an issuer that never answers', async () => {
  const silent = createServer(() => { /* never answers */ });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  try {
    const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    const started = Date.now();
    await assert.rejects(new IssuerKeys({ timeoutMs: 200 }).resolver({ issuer: url, jwksUri: `${url}/jwks` }, 'x'), /failed/);
    assert.ok(Date.now() - started < 2000);
  } finally {
    silent.closeAllConnections();
    silent.close();
  }
});
