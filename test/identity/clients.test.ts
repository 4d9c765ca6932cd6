import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ChangeFeed } from '../../src/store/changes.ts';
import { ClientService } from '../../src/identity/clients/index.ts';
import { Invalid } from '../../src/domain/errors.ts';
import { SecretHasher } from '../../src/identity/secrets.ts';
import { migrate } from '../../src/store/migrate.ts';
import type { Store } from '../../src/store/store.ts';
import { createTestDatabase, openTestStore, TEST_KEK, type TestDatabase } from '../support/harness.ts';

let db: TestDatabase;
let store: Store;
let clients: ClientService;

before(async () => {
  db = await createTestDatabase();
  store = await openTestStore(db);
  await migrate(store.sql);
  clients = new ClientService(store.prisma, new SecretHasher(Buffer.from(TEST_KEK, 'base64')), new ChangeFeed(undefined), () => new Date());
});
after(async () => {
  await store?.close();
  await db?.drop();
});

/** An `Invalid` whose `fields` name exactly `fields`, as the admin API renders into `errors`. */
function refusedFor(...fields: string[]) {
  return (error: unknown) => {
    assert.ok(error instanceof Invalid, String(error));
    assert.deepEqual(Object.keys(error.fields ?? {}).sort(), [...fields].sort());
    return true;
  };
}

const publicKey = { kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0' };

test('RFC 7591 §2 rules between fields: ClientService.create refuses what POST /clients refuses, and stores nothing', async () => {
  const before = await store.prisma.client.count();
  await assert.rejects(clients.create({ client_name: 'code without redirect', grant_types: ['authorization_code'] }), refusedFor('redirect_uris'));
  await assert.rejects(
    clients.create({ client_name: 'jwt without keys', grant_types: ['client_credentials'], token_endpoint_auth_method: 'private_key_jwt' }),
    refusedFor('jwks'),
  );
  await assert.rejects(
    clients.create({ client_name: 'public service', grant_types: ['client_credentials'], token_endpoint_auth_method: 'none' }),
    refusedFor('token_endpoint_auth_method'),
  );
  await assert.rejects(clients.create({ client_name: 'refresh alone', grant_types: ['refresh_token'] }), refusedFor('grant_types'));
  await assert.rejects(
    clients.create({ client_name: 'both key sources', grant_types: ['client_credentials'], token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [publicKey] }, jwks_uri: 'https://keys.test/jwks' }),
    refusedFor('jwks_uri'),
  );
  assert.equal(await store.prisma.client.count(), before);
});

test('ClientService.update checks the merged client, so a partial update cannot break a rule either', async () => {
  const { client: service } = await clients.create({ client_name: 'service', grant_types: ['client_credentials'] });
  await assert.rejects(clients.update(service.client_id, { token_endpoint_auth_method: 'none' }), refusedFor('token_endpoint_auth_method'));
  await assert.rejects(clients.update(service.client_id, { grant_types: ['authorization_code'] }), refusedFor('redirect_uris'));

  const { client: jwt } = await clients.create({
    client_name: 'jwt', grant_types: ['client_credentials'], token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [publicKey] },
  });
  await assert.rejects(clients.update(jwt.client_id, { jwks: null }), refusedFor('jwks'));

  const unchanged = await clients.get(service.client_id);
  assert.equal(unchanged.token_endpoint_auth_method, 'client_secret_basic');
  assert.equal(unchanged.secrets.length, 1, 'a refused update does not drop the secret');
  assert.deepEqual((await clients.get(jwt.client_id)).jwks, { keys: [publicKey] });
});

test('rotating a secret keeps at most two: the new one and the one it replaces', async () => {
  const { client } = await clients.create({ client_name: 'rotating', grant_types: ['client_credentials'] });
  const issued: string[] = [];
  for (let i = 0; i < 3; i++) issued.push((await clients.rotateSecret(client.client_id, 3600)).client_secret);
  assert.equal((await clients.get(client.client_id)).secrets.length, 2);
  assert.equal(await clients.verifySecret(client.client_id, issued[2]!), true);
  assert.equal(await clients.verifySecret(client.client_id, issued[1]!), true);
  assert.equal(await clients.verifySecret(client.client_id, issued[0]!), false);
});

test('stored metadata is parsed on read: a row that does not match the schema is an error, not a client', async () => {
  const { client } = await clients.create({ client_name: 'corrupted', grant_types: ['client_credentials'] });
  await store.prisma.client.update({ where: { clientId: client.client_id }, data: { metadata: { grant_types: 'client_credentials' } } });
  await assert.rejects(clients.get(client.client_id), { name: 'ZodError' });
  await assert.rejects(clients.record(client.client_id), { name: 'ZodError' });
});
