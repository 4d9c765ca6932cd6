import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hashPassword, needsRehash, verifyPassword } from '../../src/identity/passwords.ts';

// Loads the native argon2 binding for real: a binary built for another Node-API version
// crashes or throws here, in CI, rather than at the first login in production.
test('argon2id hashPassword and verifyPassword round trip with the native binding', async () => {
  const hash = await hashPassword('correct horse battery staple');
  assert.match(hash, /^\$argon2id\$v=19\$m=19456,p=1,t=2\$/);
  assert.equal(await verifyPassword(hash, 'correct horse battery staple'), true);
  assert.equal(await verifyPassword(hash, 'correct horse battery stapler'), false);
  assert.equal(needsRehash(hash), false);
});

test('two hashes of the same password differ (random salt)', async () => {
  assert.notEqual(await hashPassword('same'), await hashPassword('same'));
});

test('a malformed hash verifies as false instead of throwing', async () => {
  assert.equal(await verifyPassword('not-a-hash', 'x'), false);
});
