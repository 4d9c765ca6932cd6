import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Readable, Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { run } from '../../src/cli/run.ts';
import { deriveKey, hmacSha256, unseal } from '../../src/keys/crypto.ts';
import { INSTANCE_SECRET_NAMES, KekMismatchError, prepareSealed, type KekRing } from '../../src/keys/instance-secrets.ts';
import type { Store } from '../../src/store/store.ts';
import { createTestDatabase, openTestStore, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';
import { basic, ORDERS, postForm, seedOrders, verifyAccessToken } from '../oidc/service-fixtures.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const KEK_A = randomBytes(32).toString('base64');
const KEK_B = randomBytes(32).toString('base64');
const ring = (current: string, previous?: string): KekRing => ({
  current: Buffer.from(current, 'base64'), currentName: 'KEYWARD_KEK',
  ...(previous ? { previous: Buffer.from(previous, 'base64'), previousName: 'KEYWARD_KEK_PREVIOUS' } : {}),
});

interface Sealed {
  id: string;
  sealed: string;
}

async function sealedRows(store: Store): Promise<Sealed[]> {
  return store.sql.query<Sealed>(`SELECT kid AS id, encrypted_jwk AS sealed FROM signing_keys WHERE encrypted_jwk IS NOT NULL
    UNION ALL SELECT name AS id, sealed_value AS sealed FROM instance_secrets ORDER BY id`);
}

/** Every stored ciphertext opens under `kek` (and so needs no other KEK). */
async function allSealedUnder(store: Store, kek: string): Promise<number> {
  const rows = await sealedRows(store);
  for (const row of rows) unseal(Buffer.from(kek, 'base64'), row.sealed, row.id);
  return rows.length;
}

async function serviceToken(server: TestServer, service: { id: string; secret: string }): Promise<string> {
  const res = await postForm(server.url, '/token', { grant_type: 'client_credentials', resource: ORDERS, scope: 'orders:read' }, { authorization: basic(service.id, service.secret) });
  assert.equal(res.status, 200, res.text);
  return res.json!.access_token as string;
}

async function cli(db: TestDatabase, store: Store, env: Record<string, string>, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await run(args, {
    stdout: { write: (text: string) => { stdout += text; } },
    stderr: new Writable({ write(chunk: Buffer, _enc, done) { stderr += chunk.toString(); done(); } }),
    stdin: Readable.from([]),
    env: {
      KEYWARD_KEK_FILE: path.join(db.dir, 'kek'), KEYWARD_DATA_DIR: path.join(db.dir, 'pgdata'),
      ...(db.url ? { DATABASE_URL: db.url } : {}), ...env,
    },
  }, { store });
  return { code, stdout, stderr };
}

describe('issue 12 item 4: KEK rotation keeps signing keys, client secrets and tokens working', () => {
  let db: TestDatabase;
  let server: TestServer | undefined;
  let port: string;
  let service: { id: string; secret: string };
  let tokenBefore: string;

  before(async () => {
    db = await createTestDatabase();
    server = await startServer(db, { KEYWARD_KEK: KEK_A });
    port = new URL(server.url).port;
    await seedOrders(server.keyward);
    const { client, client_secret } = await server.keyward.clients.create({ client_name: 'kek rotation', grant_types: ['client_credentials'], roles: ['orders-reader'] });
    service = { id: client.client_id, secret: client_secret! };
    tokenBefore = await serviceToken(server, service);
    await server.stop();
    server = undefined;
  });
  after(async () => {
    await server?.stop();
    await db?.drop();
  });

  test('a fresh store gets random instance secrets (not derived from the KEK), all sealed under it', async () => {
    const store = await openTestStore(db);
    try {
      const { secrets, counts } = await prepareSealed(store.sql, ring(KEK_A), { rekey: false });
      assert.equal(counts.instanceSecrets.created, 0, 'created at first start');
      assert.equal(counts.instanceSecrets.current, INSTANCE_SECRET_NAMES.length);
      for (const name of INSTANCE_SECRET_NAMES) assert.notDeepEqual(secrets[name], deriveKey(Buffer.from(KEK_A, 'base64'), name));
      assert.ok(await allSealedUnder(store, KEK_A) > INSTANCE_SECRET_NAMES.length);
    } finally {
      await store.close();
    }
  });

  test('a KEK that decrypts nothing stops start-up with one line naming the variable, and writes nothing', async () => {
    const store = await openTestStore(db);
    const before = await sealedRows(store);
    await store.close();
    await assert.rejects(startServer(db, { PORT: port, KEYWARD_KEK: KEK_B }), (error: Error) => {
      assert.ok(error instanceof KekMismatchError, String(error));
      assert.match(error.message, /^invalid KEYWARD_KEK: this key-encryption key does not decrypt \d+ of the \d+ stored .*KEYWARD_KEK_PREVIOUS/);
      assert.doesNotMatch(error.message, /\n/);
      return true;
    });
    const wrongPrevious = randomBytes(32).toString('base64');
    await assert.rejects(startServer(db, { PORT: port, KEYWARD_KEK: KEK_B, KEYWARD_KEK_PREVIOUS: wrongPrevious }),
      /^KekMismatchError: invalid KEYWARD_KEK: neither this key-encryption key nor KEYWARD_KEK_PREVIOUS decrypts/);
    // The real entry point: exit code 2 and exactly one line on stderr.
    const exit = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
        cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'],
        env: {
          PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent',
          KEYWARD_KEK: KEK_B, KEYWARD_DATA_DIR: path.join(db.dir, 'pgdata'), ...(db.url ? { DATABASE_URL: db.url } : {}),
        },
      });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.on('exit', (code) => resolve({ code, stderr }));
    });
    assert.equal(exit.code, 2, exit.stderr);
    // oidc-provider, loaded before the store is opened, warns on some runtimes: not ours.
    const ours = exit.stderr.split('\n').filter((line) => !line.startsWith('oidc-provider WARNING')).join('\n');
    assert.match(ours, /^keyward: invalid KEYWARD_KEK: this key-encryption key does not decrypt [^\n]+\n$/);
    const after = await openTestStore(db);
    try {
      assert.deepEqual(await sealedRows(after), before);
    } finally {
      await after.close();
    }
  });

  test('new KEK + KEYWARD_KEK_PREVIOUS: start re-encrypts everything; restart with the new KEK alone: keys load, the client secret and old tokens verify', async () => {
    server = await startServer(db, { PORT: port, KEYWARD_KEK: KEK_B, KEYWARD_KEK_PREVIOUS: KEK_A });
    assert.ok(server.logs.text.includes('re-encrypted under the current KEK'), 'the re-encryption is logged');
    assert.ok(await allSealedUnder(server.keyward.store, KEK_B) > 0);
    await verifyAccessToken(server.url, tokenBefore, ORDERS);
    await verifyAccessToken(server.url, await serviceToken(server, service), ORDERS);
    await server.stop();
    server = undefined;

    server = await startServer(db, { PORT: port, KEYWARD_KEK: KEK_B });
    const token = await serviceToken(server, service);
    await verifyAccessToken(server.url, token, ORDERS);
    await verifyAccessToken(server.url, tokenBefore, ORDERS);
    assert.equal((await server.keyward.keys.loadUsable()).length >= 2, true);
    await server.stop();
    server = undefined;
    // The old KEK alone no longer opens anything.
    await assert.rejects(startServer(db, { PORT: port, KEYWARD_KEK: KEK_A }), KekMismatchError);
  });

  test('`keys rekey` re-encrypts what only the previous KEK opens, prints the counts, and is idempotent', async () => {
    const store = await openTestStore(db);
    try {
      // Back to A, as an operator rotating again would.
      const first = await cli(db, store, { KEYWARD_KEK: KEK_A, KEYWARD_KEK_PREVIOUS: KEK_B }, ['keys', 'rekey']);
      assert.equal(first.code, 0, first.stderr);
      const rows = await sealedRows(store);
      const keyCount = rows.length - INSTANCE_SECRET_NAMES.length;
      assert.match(first.stdout, new RegExp(`signing keys: +${keyCount} re-encrypted, 0 already`));
      assert.match(first.stdout, new RegExp(`instance secrets: +${INSTANCE_SECRET_NAMES.length} re-encrypted, 0 already`));
      assert.equal(await allSealedUnder(store, KEK_A), rows.length);
      const again = await cli(db, store, { KEYWARD_KEK: KEK_A, KEYWARD_KEK_PREVIOUS: KEK_B }, ['keys', 'rekey', '--json']);
      assert.equal(again.code, 0, again.stderr);
      assert.deepEqual(JSON.parse(again.stdout), {
        signing_keys: { rekeyed: 0, already_current: keyCount },
        instance_secrets: { rekeyed: 0, already_current: INSTANCE_SECRET_NAMES.length, created: 0 },
      });
      const list = await cli(db, store, { KEYWARD_KEK: KEK_A }, ['keys', 'list']);
      assert.equal(list.code, 0, list.stderr);
      const wrong = await cli(db, store, { KEYWARD_KEK: KEK_B }, ['keys', 'list']);
      assert.equal(wrong.code, 1);
      assert.match(wrong.stderr, /^keys list failed: invalid KEYWARD_KEK: this key-encryption key does not decrypt/);
    } finally {
      await store.close();
    }
    server = await startServer(db, { PORT: port, KEYWARD_KEK: KEK_A });
    await verifyAccessToken(server.url, await serviceToken(server, service), ORDERS);
    await server.stop();
    server = undefined;
  });
});

describe('issue 12 item 4: a store from before instance secrets keeps its client secrets', () => {
  let db: TestDatabase;
  after(async () => {
    await db?.drop();
  });

  test('missing instance secrets take the value the KEK derivation gave (from KEYWARD_KEK_PREVIOUS when rotating at the same time)', async () => {
    db = await createTestDatabase();
    let server = await startServer(db, { KEYWARD_KEK: KEK_A });
    const port = new URL(server.url).port;
    await seedOrders(server.keyward);
    const { client, client_secret } = await server.keyward.clients.create({ client_name: 'legacy', grant_types: ['client_credentials'], roles: ['orders-reader'] });
    const service = { id: client.client_id, secret: client_secret! };
    // What the previous release stored: no instance secrets, hashes under the KEK-derived pepper.
    const legacyPepper = deriveKey(Buffer.from(KEK_A, 'base64'), 'client-secret-pepper');
    await server.keyward.store.sql.query('UPDATE client_secrets SET hash = $2 WHERE client_id = $1', [service.id, hmacSha256(legacyPepper, service.secret).toString('base64url')]);
    await server.keyward.store.sql.query('DELETE FROM instance_secrets');
    await server.stop();

    // Upgrade and replace the KEK in one restart.
    server = await startServer(db, { PORT: port, KEYWARD_KEK: KEK_B, KEYWARD_KEK_PREVIOUS: KEK_A });
    try {
      await verifyAccessToken(server.url, await serviceToken(server, service), ORDERS);
      const rows = await server.keyward.store.sql.query<{ name: string; sealed_value: string }>('SELECT name, sealed_value FROM instance_secrets');
      assert.equal(rows.length, INSTANCE_SECRET_NAMES.length);
      for (const row of rows) {
        assert.equal(unseal(Buffer.from(KEK_B, 'base64'), row.sealed_value, row.name), deriveKey(Buffer.from(KEK_A, 'base64'), row.name).toString('base64url'), row.name);
      }
    } finally {
      await server.stop();
    }
    server = await startServer(db, { PORT: port, KEYWARD_KEK: KEK_B });
    try {
      await verifyAccessToken(server.url, await serviceToken(server, service), ORDERS);
    } finally {
      await server.stop();
    }
  });
});

describe('issue 12 item 4: instances starting together', () => {
  let db: TestDatabase;
  after(async () => {
    await db?.drop();
  });

  test('two concurrent first passes agree on every instance secret and re-encrypt each ciphertext once', async () => {
    db = await createTestDatabase();
    const server = await startServer(db, { KEYWARD_KEK: KEK_A });
    await server.keyward.store.sql.query('DELETE FROM instance_secrets');
    await server.stop();
    // PostgreSQL: two pools, as two instances; PGlite allows one process, so one store twice.
    const one = await openTestStore(db);
    const two = db.kind === 'postgres' ? await openTestStore(db) : one;
    try {
      const [a, b] = await Promise.all([
        prepareSealed(one.sql, ring(KEK_B, KEK_A), { rekey: true }),
        prepareSealed(two.sql, ring(KEK_B, KEK_A), { rekey: true }),
      ]);
      assert.deepEqual(a.secrets, b.secrets);
      assert.equal(a.counts.signingKeys.rekeyed + b.counts.signingKeys.rekeyed, a.counts.signingKeys.rekeyed || b.counts.signingKeys.rekeyed, 'only one of them re-encrypts');
      assert.ok(a.counts.signingKeys.rekeyed + b.counts.signingKeys.rekeyed > 0);
      assert.equal(a.counts.instanceSecrets.created + b.counts.instanceSecrets.created, INSTANCE_SECRET_NAMES.length);
      assert.deepEqual(a.secrets['client-secret-pepper'], deriveKey(Buffer.from(KEK_A, 'base64'), 'client-secret-pepper'));
      assert.ok(await allSealedUnder(one, KEK_B) > 0);
    } finally {
      await one.close();
      if (two !== one) await two.close();
    }
  });
});
