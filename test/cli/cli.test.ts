import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Readable, Writable } from 'node:stream';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { run } from '../../src/cli/run.ts';
import { ChangeFeed } from '../../src/store/changes.ts';
import { ClientService } from '../../src/identity/clients/index.ts';
import { verifyPassword } from '../../src/identity/passwords.ts';
import { SecretHasher } from '../../src/identity/secrets.ts';
import type { Store } from '../../src/store/store.ts';
import { createTestDatabase, openTestStore, startServer, TEST_KEK, type TestDatabase } from '../support/harness.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PASSWORD = 'a long enough cli password';

let db: TestDatabase;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  json: any;
}

function envFor(target: TestDatabase): NodeJS.ProcessEnv {
  return {
    KEYWARD_KEK: TEST_KEK,
    KEYWARD_KEK_FILE: path.join(target.dir, 'kek'),
    KEYWARD_DATA_DIR: path.join(target.dir, 'pgdata'),
    ...(target.url ? { DATABASE_URL: target.url } : {}),
  };
}

function result(code: number, stdout: string, stderr: string): Run {
  let json: unknown;
  try {
    json = JSON.parse(stdout);
  } catch {
    json = undefined;
  }
  return { code, stdout, stderr, json };
}

/**
 * The CLI's `run()` in this process (what src/cli/main.ts calls with the process's streams):
 * spawning a process per command costs seconds each, the entry point is spawned below.
 */
const stores = new Map<TestDatabase, Store>();

async function cli(target: TestDatabase, args: string[], stdin?: string): Promise<Run> {
  if (!stores.has(target)) stores.set(target, await openTestStore(target));
  let stdout = '';
  let stderr = '';
  const code = await run(args, {
    stdout: { write: (text: string) => { stdout += text; } },
    stderr: new Writable({ write(chunk: Buffer, _enc, done) { stderr += chunk.toString(); done(); } }),
    stdin: Readable.from(stdin === undefined ? [] : [stdin]),
    env: envFor(target),
  }, { store: stores.get(target)! });
  return result(code, stdout, stderr);
}

/** `npm run cli -- …` is `tsx src/cli/main.ts …`: the real entry point in its own process. */
function spawnCli(target: TestDatabase, args: string[]): Promise<Run> {
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, ...envFor(target) };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve(result(code ?? -1, stdout, stderr)));
    child.stdin.end();
  });
}

before(async () => {
  db = await createTestDatabase();
  // A database as a running Keyward leaves it: migrated, admin roles, signing keys.
  const server = await startServer(db);
  await server.stop();
});
after(async () => {
  for (const store of stores.values()) await store.close();
  await db?.drop();
});

test('migrate applies pending migrations and migrate status reports them; other commands refuse a stale schema', async () => {
  const fresh = await createTestDatabase();
  try {
    // Spawned first: with PGlite only one process may hold the database, and the in-process runs below keep it open.
    const stale = await spawnCli(fresh, ['roles', 'list']);
    assert.equal(stale.code, 1);
    assert.match(stale.stderr, /pending migration.*npm run migrate/);
    const before = await spawnCli(fresh, ['migrate', 'status', '--json']);
    assert.equal(before.code, 0, before.stderr);
    assert.deepEqual(before.json.applied, []);
    assert.ok(before.json.pending.length >= 1);
    const applied = await cli(fresh, ['migrate', '--json']);
    assert.deepEqual(applied.json.applied, before.json.pending);
    const again = await cli(fresh, ['migrate']);
    assert.match(again.stdout, /up to date/);
    const afterwards = await cli(fresh, ['migrate', 'status', '--json']);
    assert.deepEqual(afterwards.json, { applied: before.json.pending, pending: [] });
  } finally {
    await stores.get(fresh)?.close();
    stores.delete(fresh);
    await fresh.drop();
  }
});

test('usage: no command prints the command list; unknown commands and options exit 2 with usage', async () => {
  const help = await spawnCli(db, ['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stderr + help.stdout, /clients create/);
  const unknown = await spawnCli(db, ['frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command: frobnicate/);
  const option = await cli(db, ['clients', 'list', '--bogus']);
  assert.equal(option.code, 2);
  assert.match(option.stderr, /--bogus[\s\S]*usage: npm run cli -- clients list/);
  const args = await cli(db, ['clients', 'get']);
  assert.equal(args.code, 2);
  assert.match(args.stderr, /<client_id>/);
});

let clientId: string;
const secrets: string[] = [];

test('roles, resources and clients are created through the domain services; the secret is printed once', async () => {
  const role = await cli(db, ['roles', 'create', 'orders-reader', '--permission', 'orders:read', '--description', 'Reads orders', '--json']);
  assert.equal(role.code, 0, role.stderr);
  assert.deepEqual(role.json.permissions, ['orders:read']);
  const duplicate = await cli(db, ['roles', 'create', 'orders-reader']);
  assert.equal(duplicate.code, 1);
  assert.match(duplicate.stderr, /already exists/);
  const invalid = await cli(db, ['roles', 'create', 'Bad Name']);
  assert.equal(invalid.code, 2);
  assert.match(invalid.stderr, /name: must match/);

  const resource = await cli(db, ['resources', 'create', 'https://orders.test', '--scope', 'orders:read', '--ttl', '300', '--json']);
  assert.equal(resource.code, 0, resource.stderr);
  assert.equal(resource.json.access_token_ttl, 300);
  assert.equal((await cli(db, ['resources', 'create', 'javascript:alert(1)'])).code, 2);

  const client = await cli(db, ['clients', 'create', '--name', 'worker', '--role', 'orders-reader', '--json']);
  assert.equal(client.code, 0, client.stderr);
  clientId = client.json.client_id;
  secrets.push(client.json.client_secret);
  assert.deepEqual(client.json.roles, ['orders-reader']);
  const human = await cli(db, ['clients', 'create', '--name', 'spa', '--grant', 'authorization_code', '--redirect-uri', 'http://evil.example/cb']);
  assert.equal(human.code, 2);
  assert.match(human.stderr, /redirect_uris.0: http is allowed only for loopback/);

  const listed = await cli(db, ['clients', 'list', '--json']);
  assert.ok(listed.json.items.some((c: { client_id: string }) => c.client_id === clientId));
  assert.ok(!listed.stdout.includes(secrets[0]!), 'a list never shows a secret');
  const shown = await cli(db, ['clients', 'get', clientId]);
  assert.match(shown.stdout, new RegExp(`client_id: ${clientId}`));
  assert.equal((await cli(db, ['clients', 'get', 'missing'])).code, 1);
});

test('a client secret rotates and roles are assigned and cleared', async () => {
  const rotated = await cli(db, ['clients', 'rotate-secret', clientId, '--previous-expires-in', '0', '--json']);
  assert.equal(rotated.code, 0, rotated.stderr);
  secrets.push(rotated.json.client_secret);
  assert.equal((await cli(db, ['clients', 'rotate-secret', clientId, '--previous-expires-in', 'soon'])).code, 2);
  const cleared = await cli(db, ['clients', 'roles', clientId, '--json']);
  assert.deepEqual(cleared.json.roles, []);
  const set = await cli(db, ['clients', 'roles', clientId, '--role', 'orders-reader']);
  assert.match(set.stdout, /roles: orders-reader/);
  assert.equal((await cli(db, ['clients', 'roles', clientId, '--role', 'ghost'])).code, 1);
});

let userId: string;

test('users are created with the password from stdin only, and given roles', async () => {
  const refused = await cli(db, ['users', 'create', '--username', 'alice']);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /--password-stdin/);
  const created = await cli(db, ['users', 'create', '--username', 'alice', '--email', 'alice@example.com', '--password-stdin', '--json'], `${PASSWORD}\n`);
  assert.equal(created.code, 0, created.stderr);
  userId = created.json.id;
  const roles = await cli(db, ['users', 'roles', userId, '--role', 'orders-reader', '--json']);
  assert.deepEqual(roles.json.roles, ['orders-reader']);
  const listed = await cli(db, ['users', 'list', '--limit', '1', '--json']);
  assert.equal(listed.json.items.length, 1);
});

test('issue 10 F4: users create lowercases the username and refuses one that differs from an existing user only by case', async () => {
  const created = await cli(db, ['users', 'create', '--username', 'Grace.Hopper', '--password-stdin', '--json'], `${PASSWORD}\n`);
  assert.equal(created.code, 0, created.stderr);
  assert.equal(created.json.username, 'grace.hopper');
  const clash = await cli(db, ['users', 'create', '--username', 'GRACE.hopper', '--password-stdin'], `${PASSWORD}\n`);
  assert.equal(clash.code, 1);
  assert.match(clash.stderr, /grace\.hopper already exists/);
});

test('keys list and keys rotate work on the stored key set', async () => {
  const listed = await cli(db, ['keys', 'list', '--json']);
  assert.equal(listed.code, 0, listed.stderr);
  assert.deepEqual(listed.json.items.map((k: { alg: string; role: string }) => `${k.alg}:${k.role}`).sort(), ['ES256:current', 'ES256:next', 'RS256:current', 'RS256:next']);
  const rotated = await cli(db, ['keys', 'rotate', '--alg', 'ES256', '--json']);
  assert.equal(rotated.code, 0, rotated.stderr);
  assert.deepEqual(rotated.json.items.filter((k: { alg: string }) => k.alg === 'ES256').map((k: { state: string }) => k.state).sort(), ['active', 'retiring', 'staged']);
  // The new next key was published just now: a second rotation must wait for the JWKS max-age.
  const again = await cli(db, ['keys', 'rotate', '--alg', 'ES256']);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /rotation is possible from \d{4}-/);
  const emergency = await cli(db, ['keys', 'rotate', '--alg', 'RS256', '--emergency']);
  assert.equal(emergency.code, 0, emergency.stderr);
  assert.match(emergency.stdout, /RS256 {2}retired/);
  assert.equal((await cli(db, ['keys', 'rotate', '--alg', 'HS256'])).code, 2);
});

test('what the CLI did is in the store: secrets verify, the password verifies, changes are audited as cli:<user>', async () => {
  const store = stores.get(db)!;
  {
    const clients = new ClientService(store.prisma, new SecretHasher(Buffer.from(TEST_KEK, 'base64')), new ChangeFeed(undefined), () => new Date());
    assert.equal(await clients.verifySecret(clientId, secrets[0]!), false, 'rotated away with --previous-expires-in 0');
    assert.equal(await clients.verifySecret(clientId, secrets[1]!), true);
    const user = await store.prisma.user.findUniqueOrThrow({ where: { id: userId } });
    assert.ok(await verifyPassword(user.passwordHash, PASSWORD));
    const audit = await store.prisma.auditEvent.findMany({ where: { type: 'admin.change', actor: { startsWith: 'cli:' } } });
    const actions = audit.map((a) => (a.details as { action: string }).action);
    for (const action of ['roles create', 'resources create', 'clients create', 'clients rotate-secret', 'clients roles', 'users create', 'users roles', 'keys rotate']) {
      assert.ok(actions.includes(action), action);
    }
    const transitions = await store.prisma.auditEvent.count({ where: { type: 'key.transition', actor: { startsWith: 'cli:' } } });
    assert.ok(transitions >= 2);
    for (const row of audit) {
      const text = JSON.stringify({ ...row, id: String(row.id) });
      assert.ok(!text.includes(PASSWORD) && !secrets.some((s) => text.includes(s)));
    }
  }
});
