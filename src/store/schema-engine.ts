import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { bindMigrationAwareSqlAdapterFactory } from '@prisma/driver-adapter-utils';
import * as bg from '@prisma/schema-engine-wasm/schema_engine_bg';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { DEFAULT_MIGRATIONS_DIR, migrate } from './migrate.ts';
import { pgliteSql } from './sql.ts';

/**
 * Prisma's schema (migration) engine, compiled to WASM (`@prisma/schema-engine-wasm`), driven
 * through an in-memory PGlite. This is what lets us author migrations offline: the native
 * engine the Prisma CLI would download is never needed. Dev/CI tooling only, never the server.
 *
 * Pinned internal API (the package is what `prisma` itself uses internally, not a public API;
 * re-check when bumping it):
 * - the package's main entry `import`s a `.wasm` file as an ES module, which Node cannot load,
 *   so we instantiate `schema_engine_bg.wasm` by hand against the exported `schema_engine_bg`
 *   glue (import namespace `./schema_engine_bg.js`), then `__wbg_set_wasm` + `__wbindgen_start`;
 * - `SchemaEngine.new(options, logCallback, migrationAwareAdapterFactory)`;
 * - `engine.diff({ from, to, script: true, ... })`. `from: { tag: 'schemaDatasource' }` means
 *   "the database behind the adapter". `{ tag: 'url' }` is rejected by the WASM build
 *   ("--from-url and --to-url flags are no longer supported").
 */
export const DEFAULT_SCHEMA_PATH = fileURLToPath(new URL('../../prisma/schema.prisma', import.meta.url));

let loading: Promise<void> | undefined;

/** Instantiates the WASM module once per process (the glue keeps it in module state). */
function loadEngine(): Promise<void> {
  loading ??= (async () => {
    const wasmUrl = new URL('schema_engine_bg.wasm', import.meta.resolve('@prisma/schema-engine-wasm/schema_engine_bg'));
    const module = await WebAssembly.compile(await readFile(wasmUrl));
    const imports = { './schema_engine_bg.js': bg as unknown as WebAssembly.ModuleImports };
    const instance = await WebAssembly.instantiate(module, imports);
    bg.__wbg_set_wasm(instance.exports);
    (instance.exports.__wbindgen_start as () => void)();
  })();
  loading.catch(() => {
    loading = undefined;
  });
  return loading;
}

/**
 * Returns the SQL that brings a database built from the migrations in `migrationsDir` up to the
 * datamodel in `schemaPath`. When they agree, the engine returns only a comment
 * (`-- This is an empty migration.`); test with {@link hasStatements}.
 *
 * The committed migrations are applied to a fresh in-memory PGlite with our own runner
 * (src/store/migrate.ts, the same code production uses), then that database is diffed
 * against the datamodel.
 */
export async function diffMigrationsToSchema(schemaPath = DEFAULT_SCHEMA_PATH, migrationsDir = DEFAULT_MIGRATIONS_DIR): Promise<string> {
  const content = await readFile(schemaPath, 'utf8');
  const files = [{ path: path.basename(schemaPath), content }];
  await loadEngine();
  const db = await PGlite.create();
  try {
    await migrate(pgliteSql(db), migrationsDir);
    const factory = bindMigrationAwareSqlAdapterFactory(new PrismaPGlite(db));
    const engine = await bg.SchemaEngine.new({ datamodels: files.map((f) => [f.path, f.content]) }, () => undefined, factory);
    try {
      const result = await engine.diff({
        from: { tag: 'schemaDatasource', files, configDir: path.dirname(schemaPath) },
        to: { tag: 'schemaDatamodel', files },
        script: true,
        exitCode: null,
        filters: { externalTables: [], externalEnums: [] },
      });
      return result.stdout ?? '';
    } finally {
      engine.free();
    }
  } finally {
    await db.close();
  }
}

/** True when `script` contains anything besides SQL line comments and whitespace. */
export function hasStatements(script: string): boolean {
  return script.split('\n').some((line) => {
    const trimmed = line.trim();
    return trimmed !== '' && !trimmed.startsWith('--');
  });
}
