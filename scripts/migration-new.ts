/**
 * `npm run migrate:new -- <name>`: writes prisma/migrations/<UTC YYYYMMDDHHMMSS>_<name>/migration.sql
 * with the SQL that brings the committed migrations up to prisma/schema.prisma, computed offline
 * by Prisma's WASM schema engine (src/store/schema-engine.ts). Writes nothing when in sync.
 */
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DEFAULT_MIGRATIONS_DIR } from '../src/store/migrate.ts';
import { DEFAULT_SCHEMA_PATH, diffMigrationsToSchema, hasStatements } from '../src/store/schema-engine.ts';

const USAGE = `usage: npm run migrate:new -- <name>

Creates prisma/migrations/<UTC timestamp>_<name>/migration.sql from the difference between the
committed migrations and prisma/schema.prisma. <name> must match ^[a-z0-9_]+$ (e.g. add_user_locale).`;

const NAME = /^[a-z0-9_]+$/;

function fail(message: string): never {
  console.error(`${message}\n\n${USAGE}`);
  process.exit(2);
}

function timestamp(date: Date): string {
  // 2026-11-24T01:59:56.123Z -> 20261124015956
  return date.toISOString().slice(0, 19).replace(/[-:T]/g, '');
}

async function main(args: string[]): Promise<void> {
  if (args.includes('-h') || args.includes('--help')) {
    console.log(USAGE);
    return;
  }
  if (args.length !== 1) fail(args.length === 0 ? 'missing migration name' : `expected one migration name, got ${args.length} arguments`);
  const name = args[0]!;
  if (!NAME.test(name) || name.length > 200) fail(`invalid migration name: ${JSON.stringify(name)}`);

  const script = await diffMigrationsToSchema(DEFAULT_SCHEMA_PATH, DEFAULT_MIGRATIONS_DIR);
  if (!hasStatements(script)) {
    console.log('no changes: prisma/schema.prisma matches the committed migrations');
    return;
  }

  const dirName = `${timestamp(new Date())}_${name}`;
  const existing = (await readdir(DEFAULT_MIGRATIONS_DIR, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name).sort();
  const latest = existing.at(-1);
  // The runner applies migrations in name order: a new one must sort after every existing one.
  if (latest !== undefined && dirName.slice(0, 14) <= latest.slice(0, 14)) {
    console.error(`refusing to create ${dirName}: it would not sort after the latest migration ${latest} (check the system clock, or wait a second)`);
    process.exit(1);
  }
  const dir = path.join(DEFAULT_MIGRATIONS_DIR, dirName);
  await mkdir(dir);
  const file = path.join(dir, 'migration.sql');
  await writeFile(file, script, { flag: 'wx' });
  console.log(`created ${path.relative(process.cwd(), file)}`);
  console.log('review it, then apply with `npm run migrate`');
}

main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exit(1);
});
