import assert from 'node:assert/strict';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { DEFAULT_MIGRATIONS_DIR, migrate, readMigrations } from '../../src/store/migrate.ts';
import { PrismaAdapter } from '../../src/store/oidc-artifacts.ts';
import { OidcGrants } from '../../src/store/oidc-grants.ts';
import type { Store } from '../../src/store/store.ts';
import { createTestDatabase, openTestStore, type TestDatabase } from '../support/harness.ts';

/**
 * The consent page asks "which live grants does this person hold for this client?". That is
 * answered from indexed account_id/client_id columns the adapter fills on every write, not by
 * scanning JSON payloads.
 */
let db: TestDatabase;
let store: Store;
const clock = new Date('2030-01-01T00:00:00Z');
const now = () => clock;
const ALICE = '11111111-1111-4111-8111-111111111111';
const BOB = '22222222-2222-4222-8222-222222222222';

before(async () => {
  db = await createTestDatabase();
  store = await openTestStore(db);
  await migrate(store.sql);
});
after(async () => {
  await store?.close();
  await db?.drop();
});

test('the adapter fills account_id and client_id from the payload on every write', async () => {
  const grants = new PrismaAdapter(store.prisma, 'Grant', now);
  await grants.upsert('g-columns', { accountId: ALICE, clientId: 'app', openid: { scope: 'openid' } }, 60);
  await new PrismaAdapter(store.prisma, 'Interaction', now).upsert('i-columns', { uid: 'u1' }, 60);
  const rows = await store.sql.query<{ id: string; account_id: string | null; client_id: string | null }>(
    `SELECT id, account_id, client_id FROM oidc_artifacts WHERE id IN ('g-columns', 'i-columns') ORDER BY id`,
  );
  assert.deepEqual(rows, [
    { id: 'g-columns', account_id: ALICE, client_id: 'app' },
    { id: 'i-columns', account_id: null, client_id: null },
  ]);
});

test('liveGrants returns only the live Grants of that person to that client, longest-lived first', async () => {
  const grant = new PrismaAdapter(store.prisma, 'Grant', now);
  const token = new PrismaAdapter(store.prisma, 'AccessToken', now);
  const payload = (accountId: string, clientId: string, scope: string) => ({ accountId, clientId, openid: { scope } }) as never;
  await grant.upsert('g-short', payload(ALICE, 'reports', 'openid'), 60);
  await grant.upsert('g-long', payload(ALICE, 'reports', 'openid email'), 3600);
  await grant.upsert('g-other-client', payload(ALICE, 'console', 'openid roles'), 3600);
  await grant.upsert('g-other-person', payload(BOB, 'reports', 'openid profile'), 3600);
  await token.upsert('at-same-pair', payload(ALICE, 'reports', 'openid offline_access'), 3600);
  await store.prisma.oidcArtifact.create({
    data: { model: 'Grant', id: 'g-expired', payload: { accountId: ALICE, clientId: 'reports' }, accountId: ALICE, clientId: 'reports', expiresAt: new Date(clock.getTime() - 1000) },
  });

  const found = await new OidcGrants(store.prisma).liveGrants(ALICE, 'reports', clock);
  assert.deepEqual(found.map((p) => (p as { openid: { scope: string } }).openid.scope), ['openid email', 'openid']);
});

test('the migration backfills the columns of artifacts written before it', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'keyward-grants-'));
  try {
    const migrations = await readMigrations(DEFAULT_MIGRATIONS_DIR);
    const first = migrations.findIndex((m) => m.name.endsWith('_oidc_artifact_account_client'));
    assert.ok(first > 0, 'the account/client migration is committed');
    for (const m of migrations.slice(0, first)) await cp(path.join(DEFAULT_MIGRATIONS_DIR, m.name), path.join(dir, m.name), { recursive: true });
    const fresh = await createTestDatabase();
    const old = await openTestStore(fresh);
    try {
      await migrate(old.sql, dir);
      await old.sql.query(`INSERT INTO oidc_artifacts (model, id, payload) VALUES ('Grant', 'g-old', $1::jsonb)`, [
        JSON.stringify({ accountId: ALICE, clientId: 'reports', openid: { scope: 'openid' } }),
      ]);
      await migrate(old.sql);
      const found = await new OidcGrants(old.prisma).liveGrants(ALICE, 'reports', clock);
      assert.equal(found.length, 1);
    } finally {
      await old.close();
      await fresh.drop();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
