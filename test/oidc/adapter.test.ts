import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { AdapterPayload } from 'oidc-provider';
import { PrismaAdapter, purgeExpiredArtifacts } from '../../src/store/oidc-artifacts.ts';
import { migrate } from '../../src/store/migrate.ts';
import type { Store } from '../../src/store/store.ts';
import { TestClock } from '../support/clock.ts';
import { createTestDatabase, openTestStore, type TestDatabase } from '../support/harness.ts';

/**
 * oidc-provider's Adapter contract (see the Adapter interface in @types/oidc-provider) on the
 * real store: PostgreSQL when DATABASE_URL is set, PGlite otherwise.
 */
let db: TestDatabase;
let store: Store;
/** The adapters' clock; tests move it to make artifacts expire. */
const clock = new TestClock(new Date('2030-01-01T00:00:00Z'));
const now = clock.now;
let seq = 0;
const uniqueId = (prefix: string) => `${prefix}-${process.pid}-${++seq}`;
const adapter = (model: string) => new PrismaAdapter(store.prisma, model, now);

before(async () => {
  db = await createTestDatabase();
  store = await openTestStore(db);
  await migrate(store.sql);
});
after(async () => {
  await store?.close();
  await db?.drop();
});

describe('upsert and find', () => {
  test('find returns the payload that upsert stored', async () => {
    const tokens = adapter('AccessToken');
    const id = uniqueId('at');
    const payload: AdapterPayload = { jti: id, kind: 'AccessToken', clientId: 'svc', accountId: 'u1', grantId: 'g1', scope: 'openid', iat: 1, exp: 2, extra: { nested: [1, 'two'] } };
    await tokens.upsert(id, payload, 60);
    assert.deepEqual(await tokens.find(id), payload);
  });

  test('a second upsert of the same id overwrites the first', async () => {
    const sessions = adapter('Session');
    const id = uniqueId('sess');
    await sessions.upsert(id, { jti: id, kind: 'Session', accountId: 'before', uid: 'uid-a' }, 60);
    await sessions.upsert(id, { jti: id, kind: 'Session', accountId: 'after', uid: 'uid-b' }, 60);
    assert.equal((await sessions.find(id))?.accountId, 'after');
    // The indexed columns follow the payload too: the old uid no longer finds it.
    assert.equal(await sessions.findByUid('uid-a'), undefined);
    assert.equal((await sessions.findByUid('uid-b'))?.accountId, 'after');
    const rows = await store.prisma.oidcArtifact.count({ where: { model: 'Session', id } });
    assert.equal(rows, 1);
  });

  test('find of an unknown id is undefined', async () => {
    assert.equal(await adapter('AccessToken').find('no-such-id'), undefined);
  });

  test('the same id in two models is two distinct artifacts', async () => {
    const id = uniqueId('shared');
    await adapter('AuthorizationCode').upsert(id, { jti: id, kind: 'AuthorizationCode', clientId: 'a' }, 60);
    await adapter('RefreshToken').upsert(id, { jti: id, kind: 'RefreshToken', clientId: 'b' }, 60);
    assert.equal((await adapter('AuthorizationCode').find(id))?.clientId, 'a');
    assert.equal((await adapter('RefreshToken').find(id))?.clientId, 'b');
    await adapter('AuthorizationCode').destroy(id);
    assert.equal(await adapter('AuthorizationCode').find(id), undefined);
    assert.equal((await adapter('RefreshToken').find(id))?.clientId, 'b');
  });
});

describe('expiry is honoured on read', () => {
  test('an artifact is found until expiresIn seconds have passed, then no longer', async () => {
    const codes = adapter('AuthorizationCode');
    const id = uniqueId('code');
    await codes.upsert(id, { jti: id, kind: 'AuthorizationCode', uid: `${id}-uid`, userCode: `${id}-uc` }, 30);
    clock.advance(29_000);
    assert.ok(await codes.find(id));
    clock.advance(1_000);
    assert.equal(await codes.find(id), undefined);
    assert.equal(await codes.findByUid(`${id}-uid`), undefined);
    assert.equal(await codes.findByUserCode(`${id}-uc`), undefined);
  });

  test('expiresIn 0 (no expiry) keeps the artifact however far time moves', async () => {
    const grants = adapter('Grant');
    const id = uniqueId('grant');
    await grants.upsert(id, { jti: id, kind: 'Grant' }, 0);
    clock.advance(10 * 365 * 86_400_000);
    assert.ok(await grants.find(id));
  });
});

describe('secondary lookups', () => {
  test('RFC 8628 §3.5: an expired DeviceCode stays findable for an hour (oidc-provider answers expired_token from its exp), other models do not', async () => {
    const id = uniqueId('dc');
    const userCode = `EXPD${seq}`;
    await adapter('DeviceCode').upsert(id, { jti: id, kind: 'DeviceCode', userCode, clientId: 'tv' }, 600);
    const at = uniqueId('at');
    await adapter('AccessToken').upsert(at, { jti: at, kind: 'AccessToken' }, 600);
    clock.advance(601_000);
    assert.ok(await adapter('DeviceCode').find(id));
    assert.ok(await adapter('DeviceCode').findByUserCode(userCode));
    assert.equal(await adapter('AccessToken').find(at), undefined);
    clock.advance(3600_000);
    assert.equal(await adapter('DeviceCode').find(id), undefined);
  });

  test('findByUserCode finds a DeviceCode by its user code, within its own model only', async () => {
    const devices = adapter('DeviceCode');
    const id = uniqueId('dc');
    const userCode = `UC-${id}`;
    await devices.upsert(id, { jti: id, kind: 'DeviceCode', userCode, clientId: 'tv' }, 600);
    assert.equal((await devices.findByUserCode(userCode))?.jti, id);
    assert.equal(await devices.findByUserCode('UNKNOWN'), undefined);
    assert.equal(await adapter('Session').findByUserCode(userCode), undefined);
  });

  test('findByUid finds a Session by its uid, within its own model only', async () => {
    const sessions = adapter('Session');
    const id = uniqueId('sess');
    const uid = `uid-${id}`;
    await sessions.upsert(id, { jti: id, kind: 'Session', uid, accountId: 'u7' }, 600);
    assert.equal((await sessions.findByUid(uid))?.accountId, 'u7');
    assert.equal(await sessions.findByUid('unknown-uid'), undefined);
    assert.equal(await adapter('Interaction').findByUid(uid), undefined);
  });
});

describe('consume and destroy', () => {
  test('consume marks the artifact consumed (epoch seconds) and that survives a re-find', async () => {
    const codes = adapter('AuthorizationCode');
    const id = uniqueId('code');
    await codes.upsert(id, { jti: id, kind: 'AuthorizationCode', clientId: 'web' }, 60);
    assert.equal((await codes.find(id))?.consumed, undefined);
    await codes.consume(id);
    const expected = Math.floor(clock.ms / 1000);
    const found = await codes.find(id);
    assert.equal(found?.consumed, expected);
    assert.equal(found?.clientId, 'web');
    // A fresh adapter (as another instance would have) sees the same.
    assert.equal((await adapter('AuthorizationCode').find(id))?.consumed, expected);
  });

  test('RFC 6749 §4.1.2: of concurrent consumeOnce calls on one artifact exactly one wins, each from its own adapter', async () => {
    const id = uniqueId('code');
    await adapter('AuthorizationCode').upsert(id, { jti: id, kind: 'AuthorizationCode', clientId: 'web' }, 60);
    const results = await Promise.all(Array.from({ length: 8 }, () => adapter('AuthorizationCode').consumeOnce(id)));
    assert.equal(results.filter(Boolean).length, 1);
    assert.equal(await adapter('AuthorizationCode').consumeOnce(id), false);
    assert.equal(await adapter('AuthorizationCode').consumeOnce('never-stored'), false);
  });

  test('consume of an unknown id is a no-op', async () => {
    await adapter('AuthorizationCode').consume('never-stored');
    assert.equal(await adapter('AuthorizationCode').find('never-stored'), undefined);
  });

  test('destroy removes the artifact', async () => {
    const tokens = adapter('AccessToken');
    const id = uniqueId('at');
    await tokens.upsert(id, { jti: id, kind: 'AccessToken' }, 60);
    await tokens.destroy(id);
    assert.equal(await tokens.find(id), undefined);
    await tokens.destroy(id); // idempotent
  });
});

describe('revokeByGrantId', () => {
  test('removes every artifact of the grant across models and nothing of another grant', async () => {
    const grant = uniqueId('grant');
    const other = uniqueId('grant');
    const models = ['AccessToken', 'RefreshToken', 'AuthorizationCode', 'DeviceCode'];
    const ids: Record<string, string[]> = {};
    for (const model of models) {
      ids[model] = [uniqueId(model), uniqueId(model)];
      await adapter(model).upsert(ids[model][0]!, { jti: ids[model][0], kind: model, grantId: grant }, 600);
      await adapter(model).upsert(ids[model][1]!, { jti: ids[model][1], kind: model, grantId: other }, 600);
    }
    // The Grant itself: oidc-provider's revoke helper destroys it separately, and only when
    // revokeGrantPolicy says so (revoking an access token keeps the grant).
    await adapter('Grant').upsert(grant, { jti: grant, kind: 'Grant', clientId: 'web' }, 600);
    await adapter('Grant').upsert(other, { jti: other, kind: 'Grant', clientId: 'web' }, 600);

    // oidc-provider calls it on one model's adapter per model; one call must already clear all.
    await adapter('AccessToken').revokeByGrantId(grant);

    for (const model of models) {
      assert.equal(await adapter(model).find(ids[model]![0]!), undefined, `${model} of the revoked grant is gone`);
      assert.ok(await adapter(model).find(ids[model]![1]!), `${model} of the other grant remains`);
    }
    assert.equal(await store.prisma.oidcArtifact.count({ where: { grantId: grant } }), 0);
    assert.equal(await store.prisma.oidcArtifact.count({ where: { grantId: other } }), models.length);

    // Then, as oidc-provider does when revokeGrantPolicy allows, the Grant is destroyed by id.
    await adapter('Grant').destroy(grant);
    assert.equal(await adapter('Grant').find(grant), undefined);
    assert.ok(await adapter('Grant').find(other));
  });
});

describe('purgeExpiredArtifacts', () => {
  test('deletes only expired rows', async () => {
    await store.prisma.oidcArtifact.deleteMany({});
    const tokens = adapter('AccessToken');
    await tokens.upsert('short', { jti: 'short', kind: 'AccessToken' }, 10);
    await tokens.upsert('long', { jti: 'long', kind: 'AccessToken' }, 3600);
    await adapter('Grant').upsert('forever', { jti: 'forever', kind: 'Grant' }, 0);
    assert.equal(await purgeExpiredArtifacts(store.prisma, clock.now()), 0);
    clock.advance(11_000);
    assert.equal(await purgeExpiredArtifacts(store.prisma, clock.now()), 1);
    const left = (await store.prisma.oidcArtifact.findMany({ select: { id: true }, orderBy: { id: 'asc' } })).map((r) => r.id);
    assert.deepEqual(left, ['forever', 'long']);
  });
});
