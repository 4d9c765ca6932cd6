import assert from 'node:assert/strict';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { run } from '../../src/cli/run.ts';
import type { Store } from '../../src/store/store.ts';
import { TestIssuer, kubernetesClaims } from '../oidc/federation-issuer.ts';
import { createTestDatabase, openTestStore, startServer, TEST_KEK, type TestDatabase } from '../support/harness.ts';

let db: TestDatabase;
let store: Store;
let issuer: TestIssuer;

before(async () => {
  db = await createTestDatabase();
  issuer = await TestIssuer.start(['/k8s']);
  // A database as a running Keyward leaves it: migrated, admin roles, signing keys.
  await (await startServer(db)).stop();
  store = await openTestStore(db);
});
after(async () => {
  await store?.close();
  await issuer?.close();
  await db?.drop();
});

async function cli(args: string[], stdin?: string): Promise<{ code: number; stdout: string; stderr: string; json: any }> {
  let stdout = '';
  let stderr = '';
  const code = await run(args, {
    stdout: { write: (text: string) => { stdout += text; } },
    stderr: new Writable({ write(chunk: Buffer, _enc, done) { stderr += chunk.toString(); done(); } }),
    stdin: Readable.from(stdin === undefined ? [] : [stdin]),
    env: {
      KEYWARD_KEK: TEST_KEK, KEYWARD_KEK_FILE: path.join(db.dir, 'kek'), KEYWARD_DATA_DIR: path.join(db.dir, 'pgdata'),
      ISSUER: 'https://id.example.com', ...(db.url ? { DATABASE_URL: db.url } : {}),
    },
  }, { store });
  let json: unknown;
  try { json = JSON.parse(stdout); } catch { json = undefined; }
  return { code, stdout, stderr, json };
}

test('federation create, list, test (dry run from stdin) and delete from the CLI; invalid input is a usage error', async () => {
  const client = await cli(['clients', 'create', '--name', 'invoicer', '--auth-method', 'federated_jwt', '--json']);
  assert.equal(client.code, 0, client.stderr);
  assert.equal(client.json.client_secret, undefined);
  const id = client.json.client_id as string;

  const created = await cli(['federation', 'create', id, '--name', 'cluster', '--issuer', issuer.url('/k8s'),
    '--subject-pattern', 'system:serviceaccount:payments:*', '--claim', 'team=billing', '--json']);
  assert.equal(created.code, 0, created.stderr);
  assert.deepEqual(created.json.claims, { team: 'billing' });

  const listed = await cli(['federation', 'list', id, '--json']);
  assert.deepEqual(listed.json.items.map((c: { id: string }) => c.id), [created.json.id]);

  const token = await issuer.sign('/k8s', { ...kubernetesClaims(issuer.url('/k8s'), 'https://id.example.com'), team: 'billing' });
  const matched = await cli(['federation', 'test', '--json'], `${token}\n`);
  assert.equal(matched.code, 0, matched.stderr);
  assert.deepEqual(matched.json.matched, { client_id: id, credential_id: created.json.id });
  const other = await issuer.sign('/k8s', kubernetesClaims(issuer.url('/k8s'), 'https://id.example.com'));
  const refused = await cli(['federation', 'test'], other);
  assert.match(refused.stdout, /matched: none/);
  assert.match(refused.stdout, /claim_mismatch \(claim team does not have the required value\)/);

  const neither = await cli(['federation', 'create', id, '--name', 'x', '--issuer', issuer.url('/k8s')]);
  assert.equal(neither.code, 2);
  assert.match(neither.stderr, /exactly one of subject and subject_pattern/);

  const deleted = await cli(['federation', 'delete', id, created.json.id]);
  assert.equal(deleted.code, 0, deleted.stderr);
  assert.equal((await cli(['federation', 'list', id, '--json'])).json.items.length, 0);
});
