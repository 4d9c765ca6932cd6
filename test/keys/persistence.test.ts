import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JWK } from 'jose';
import { seal, unseal, UnsealError } from '../../src/keys/crypto.ts';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';

const ADMIN_ID = 'keys-test-admin';
const ADMIN_SECRET = randomBytes(32).toString('base64url');
const env = { KEYWARD_BOOTSTRAP_ADMIN_CLIENT_ID: ADMIN_ID, KEYWARD_BOOTSTRAP_ADMIN_CLIENT_SECRET: ADMIN_SECRET };

/** Private members of RSA and EC JWKs that must never be published. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

interface KeyRow {
  kid: string;
  alg: string;
  state: string;
  public_jwk: JWK;
  encrypted_jwk: string | null;
}

async function keyRows(server: TestServer): Promise<KeyRow[]> {
  return server.keyward.store.sql.query<KeyRow>('SELECT kid, alg, state, public_jwk, encrypted_jwk FROM signing_keys ORDER BY alg');
}

async function publishedJwks(server: TestServer): Promise<{ keys: JWK[] }> {
  const discovery = (await (await fetch(`${server.url}/.well-known/openid-configuration`)).json()) as { jwks_uri: string };
  const res = await fetch(discovery.jwks_uri);
  assert.equal(res.status, 200);
  return (await res.json()) as { keys: JWK[] };
}

async function adminToken(server: TestServer): Promise<string> {
  const res = await fetch(`${server.url}/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${ADMIN_ID}:${ADMIN_SECRET}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: `${server.url}/admin` }),
  });
  const body = (await res.json()) as { access_token?: string };
  assert.equal(res.status, 200, JSON.stringify(body));
  return body.access_token!;
}

describe('signing keys at rest', () => {
  let db: TestDatabase;
  let server: TestServer;
  let port: string;

  before(async () => {
    db = await createTestDatabase();
    server = await startServer(db, env);
    port = new URL(server.url).port;
  });
  after(async () => {
    await server?.stop();
    await db?.drop();
  });

  test('the first start generates, for ES256 and RS256, a current (active) and a next (staged) key', async () => {
    const rows = await keyRows(server);
    assert.deepEqual(rows.map((r) => [r.alg, r.state]).sort(), [['ES256', 'active'], ['ES256', 'staged'], ['RS256', 'active'], ['RS256', 'staged']]);
  });

  test('private JWKs are stored encrypted; the public JWK holds no private member', async () => {
    const usable = await server.keyward.keys.loadUsable();
    for (const row of await keyRows(server)) {
      const priv = usable.find((k) => k.kid === row.kid)!.privateJwk;
      assert.ok(priv.d, 'the decrypted private JWK has d');
      const sealed = row.encrypted_jwk ?? '';
      assert.ok(sealed.startsWith('v1.'), 'sealed format v1');
      assert.ok(!sealed.includes(priv.d), 'd does not appear in clear');
      assert.doesNotMatch(sealed, /"d"|"kty"/);
      for (const member of PRIVATE_MEMBERS) assert.equal((row.public_jwk as Record<string, unknown>)[member], undefined, `public_jwk.${member}`);
    }
  });

  test('/jwks serves exactly the public keys', async () => {
    const jwks = await publishedJwks(server);
    const rows = await keyRows(server);
    assert.deepEqual(jwks.keys.map((k) => k.kid).sort(), rows.map((r) => r.kid).sort());
    for (const key of jwks.keys) {
      for (const member of PRIVATE_MEMBERS) assert.equal((key as Record<string, unknown>)[member], undefined, `${key.kid}.${member} published`);
      const row = rows.find((r) => r.kid === key.kid)!;
      assert.equal(key.alg, row.alg);
      assert.equal(key.use, 'sig');
    }
  });

  test('a restart on the same store keeps the kids, and a token issued before verifies after', async () => {
    const kidsBefore = (await keyRows(server)).map((r) => r.kid);
    const token = await adminToken(server);
    await server.stop();
    server = await startServer(db, { ...env, PORT: port });

    assert.deepEqual((await keyRows(server)).map((r) => r.kid), kidsBefore);
    const jwks = await publishedJwks(server);
    assert.deepEqual(jwks.keys.map((k) => k.kid).sort(), [...kidsBefore].sort());
    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(jwks), { issuer: server.url, audience: `${server.url}/admin` });
    assert.ok(kidsBefore.includes(protectedHeader.kid!));
    assert.equal(payload.client_id, ADMIN_ID);
    // And the restarted instance signs with the same key.
    assert.equal(decodeProtectedHeader(await adminToken(server)).kid, protectedHeader.kid);
  });

  test('a start with a different KEK on the same store fails clearly and writes nothing', async () => {
    const keysBefore = await keyRows(server);
    const secretsBefore = await server.keyward.store.sql.query('SELECT id, hash FROM client_secrets ORDER BY id');
    // One instance at a time: two PGlite instances must never share a data directory.
    await server.stop();
    const otherKek = randomBytes(32).toString('base64');
    await assert.rejects(startServer(db, { ...env, PORT: port, KEYWARD_KEK: otherKek }), (error: Error) => {
      assert.match(error.message, /key-encryption key/);
      return true;
    });
    server = await startServer(db, { ...env, PORT: port });
    assert.deepEqual(await keyRows(server), keysBefore, 'no key generated or changed');
    // Not even the bootstrap secret was re-hashed under the wrong KEK.
    assert.deepEqual(await server.keyward.store.sql.query('SELECT id, hash FROM client_secrets ORDER BY id'), secretsBefore);
    await adminToken(server);
  });
});

describe('seal and unseal (AES-256-GCM, kid as AAD)', () => {
  const kek = randomBytes(32);

  test('unseal returns what seal sealed', () => {
    assert.equal(unseal(kek, seal(kek, '{"d":"secret"}', 'kid-1'), 'kid-1'), '{"d":"secret"}');
  });

  test('two seals of the same plaintext differ (random IV)', () => {
    assert.notEqual(seal(kek, 'x', 'kid'), seal(kek, 'x', 'kid'));
  });

  test('a tampered ciphertext is refused', () => {
    const sealed = seal(kek, 'private key material', 'kid-1');
    const parts = sealed.split('.');
    const ct = Buffer.from(parts[2]!, 'base64url');
    ct[0]! ^= 1;
    parts[2] = ct.toString('base64url');
    assert.throws(() => unseal(kek, parts.join('.'), 'kid-1'), UnsealError);
  });

  test('a tampered tag is refused', () => {
    const parts = seal(kek, 'private key material', 'kid-1').split('.');
    const tag = Buffer.from(parts[3]!, 'base64url');
    tag[0]! ^= 1;
    parts[3] = tag.toString('base64url');
    assert.throws(() => unseal(kek, parts.join('.'), 'kid-1'), UnsealError);
  });

  test('a ciphertext moved to another kid (wrong AAD) is refused', () => {
    assert.throws(() => unseal(kek, seal(kek, 'private key material', 'kid-1'), 'kid-2'), UnsealError);
  });

  test('the wrong KEK is refused', () => {
    assert.throws(() => unseal(randomBytes(32), seal(kek, 'x', 'kid-1'), 'kid-1'), UnsealError);
  });

  test('an unknown format is refused', () => {
    assert.throws(() => unseal(kek, 'v2.a.b.c', 'kid-1'), UnsealError);
    assert.throws(() => unseal(kek, 'garbage', 'kid-1'), UnsealError);
  });
});
