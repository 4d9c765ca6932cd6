import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import argon2 from 'argon2';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { PasswordAuthenticator } from '../../src/identity/password-login.ts';
import { hashPassword, needsRehash, PASSWORD_PARAMS, verifyPassword } from '../../src/identity/passwords.ts';
import { ChangeFeed } from '../../src/store/changes.ts';
import { UserService } from '../../src/identity/users.ts';
import { accountConfiguration } from '../../src/oidc/accounts.ts';
import { migrate } from '../../src/store/migrate.ts';
import type { Store } from '../../src/store/store.ts';
import { CapturedLogs, createTestDatabase, openTestStore, type TestDatabase } from '../support/harness.ts';

let db: TestDatabase;
let store: Store;
let auth: PasswordAuthenticator;

before(async () => {
  db = await createTestDatabase();
  store = await openTestStore(db);
  await migrate(store.sql);
  auth = new PasswordAuthenticator(new UserService(store.prisma, new ChangeFeed(undefined)), new CapturedLogs().logger);
});
after(async () => {
  await store?.close();
  await db?.drop();
});

async function user(username: string, password: string, extra: { disabled?: boolean; hash?: string } = {}) {
  return store.prisma.user.create({
    data: { username, passwordHash: extra.hash ?? await hashPassword(password), disabled: extra.disabled ?? false, email: `${username}@example.test`, name: username.toUpperCase() },
  });
}

test('the right password authenticates; a wrong one and an unknown username fail with the same reason', async () => {
  const alice = await user('alice', 'correct horse');
  assert.deepEqual(await auth.authenticate('alice', 'correct horse'), { ok: true, userId: alice.id, username: 'alice', rehashed: false });
  assert.deepEqual(await auth.authenticate('alice', 'wrong'), { ok: false, reason: 'invalid_credentials' });
  assert.deepEqual(await auth.authenticate('nobody', 'wrong'), { ok: false, reason: 'invalid_credentials' });
});

test('a disabled user is refused; "disabled" is only said to someone who knows the password', async () => {
  const dora = await user('dora', 'pw-dora', { disabled: true });
  assert.deepEqual(await auth.authenticate('dora', 'pw-dora'), { ok: false, reason: 'disabled', userId: dora.id });
  assert.deepEqual(await auth.authenticate('dora', 'guess'), { ok: false, reason: 'invalid_credentials' });
});

test('an unknown username costs an argon2 verification like a wrong password (no timing oracle for existing accounts)', async () => {
  await user('tim', 'pw-tim');
  const median = async (fn: () => Promise<unknown>) => {
    const times: number[] = [];
    for (let i = 0; i < 9; i++) {
      const start = process.hrtime.bigint();
      await fn();
      times.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
    return times.sort((a, b) => a - b)[4]!;
  };
  await auth.authenticate('nobody', 'warm-up');
  const wrong = await median(() => auth.authenticate('tim', 'wrong'));
  const unknown = await median(() => auth.authenticate('nobody-at-all', 'wrong'));
  // Loose bounds (CI machines are noisy); without the dummy verification an unknown name
  // answers after one indexed lookup, more than an order of magnitude faster.
  assert.ok(unknown > wrong * 0.35 && unknown < wrong * 3, `unknown ${unknown.toFixed(1)} ms vs wrong password ${wrong.toFixed(1)} ms`);
});

test('a hash made with weaker argon2 parameters is upgraded on a successful login (and only then)', async () => {
  const weak = await argon2.hash('pw-weak', { type: argon2.argon2id, memoryCost: 4096, timeCost: 1, parallelism: 1 });
  const wendy = await user('wendy', 'pw-weak', { hash: weak });
  assert.equal(needsRehash(weak), true);
  await auth.authenticate('wendy', 'nope');
  assert.equal((await store.prisma.user.findUniqueOrThrow({ where: { id: wendy.id } })).passwordHash, weak, 'a failed login changes nothing');

  const result = await auth.authenticate('wendy', 'pw-weak');
  assert.deepEqual(result, { ok: true, userId: wendy.id, username: 'wendy', rehashed: true });
  const upgraded = (await store.prisma.user.findUniqueOrThrow({ where: { id: wendy.id } })).passwordHash;
  assert.notEqual(upgraded, weak);
  assert.equal(needsRehash(upgraded), false);
  assert.ok(upgraded.startsWith('$argon2id$v=19$'));
  for (const param of [`m=${PASSWORD_PARAMS.memoryCost}`, `t=${PASSWORD_PARAMS.timeCost}`, `p=${PASSWORD_PARAMS.parallelism}`]) {
    assert.ok(upgraded.split('$')[3]!.split(',').includes(param), `${param} in ${upgraded.split('$')[3]}`);
  }
  assert.equal(await verifyPassword(upgraded, 'pw-weak'), true);
});

test('findAccount: sub is the user id, claims by scope source; disabled, deleted or malformed ids are not found', async () => {
  const users = new UserService(store.prisma, new ChangeFeed(undefined));
  const { findAccount } = accountConfiguration(users);
  const role = await store.prisma.role.create({ data: { name: 'viewer' } });
  const carl = await user('carl', 'pw-carl');
  await store.prisma.userRole.create({ data: { userId: carl.id, roleName: role.name } });
  const ctx = {} as KoaContextWithOIDC;
  const account = await findAccount!(ctx, carl.id);
  assert.equal(account?.accountId, carl.id);
  assert.deepEqual(await account.claims('id_token', 'openid', {}, []), {
    sub: carl.id, preferred_username: 'carl', name: 'CARL', email: 'carl@example.test', email_verified: false, roles: ['viewer'],
  });
  const off = await user('offline', 'pw', { disabled: true });
  assert.equal(await findAccount!(ctx, off.id), undefined);
  assert.equal(await findAccount!(ctx, '00000000-0000-4000-8000-000000000000'), undefined);
  assert.equal(await findAccount!(ctx, 'not-a-uuid'), undefined);
});
