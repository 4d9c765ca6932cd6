import { readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { PGlite, type PGliteOptions } from '@electric-sql/pglite';

/**
 * Everything Keyward asks of embedded PGlite, in one place (README "Embedded start").
 *
 * What a start costs, measured (bench/startup.ts, issue 13 §6): opening an existing data
 * directory is ~1.5 CPU-s (compiling PGlite's WebAssembly); a new data directory added ~10
 * CPU-s and ~500 MiB of RSS, all of it `initdb` (PGlite runs it in a second PGlite instance
 * with initdb.wasm, then copies the result over). So a new data directory is instead
 * unpacked from a template: the freshly initdb'ed cluster of this PGlite version, written the
 * first time one was needed (or by `npm install`'s postinstall) to templatePath(). The template holds only what
 * `initdb` makes; migrations run on it as on any new store.
 *
 * `shared_buffers` is 16 MB instead of initdb's 128 MB (below). Left at PGlite's defaults,
 * measured as not worth changing: `initialMemory` (the WebAssembly module refuses less than
 * its default 128 MiB; only touched pages count towards RSS), extensions (none are loaded), `work_mem`, and
 * `relaxedDurability` (only affects browser file systems; on Node every write reaches the
 * data directory as it happens).
 */
export const PGLITE_OPTIONS: PGliteOptions = {
  // initdb's 128 MB of shared buffers are allocated and touched at start (~90 MiB of RSS
  // measured); Keyward's embedded store is small and the OS caches its files anyway.
  startParams: [...PGlite.defaultStartParams, '-c', 'shared_buffers=16MB'],
};

const require = createRequire(import.meta.url);

function pgliteVersion(): string | undefined {
  try {
    // The package's exports do not include package.json: found from its entry point.
    const entry = require.resolve('@electric-sql/pglite');
    const root = entry.slice(0, entry.lastIndexOf(`${path.sep}dist${path.sep}`));
    return (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return undefined;
  }
}

/**
 * Where the template of this PGlite version lives: the user's cache directory
 * (`$XDG_CACHE_HOME` or `~/.cache`), `keyward/pglite-<version>.tar.gz`. scripts/pglite-template.mjs
 * (run by postinstall) writes the same file.
 */
export function templatePath(): string | undefined {
  const version = pgliteVersion();
  if (!version) return undefined;
  const cache = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(cache, 'keyward', `pglite-${version}.tar.gz`);
}

async function isEmptyOrAbsent(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length === 0;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

/**
 * Whether PGlite will create a new cluster (`memory://` always does), and the template to unpack
 * instead of running initdb (undefined: none yet, initdb runs and saveTemplate() may write one).
 */
export async function newCluster(dataDir: string): Promise<{ fresh: boolean; template: Blob | undefined }> {
  const fresh = dataDir.startsWith('memory://') || (await isEmptyOrAbsent(dataDir));
  const file = templatePath();
  if (!fresh || !file) return { fresh, template: undefined };
  try {
    return { fresh, template: new Blob([await readFile(file)]) };
  } catch {
    return { fresh, template: undefined };
  }
}

/**
 * Writes the template from a store PGlite has just initdb'ed (nothing of Keyward's in it yet).
 * Best effort: an unwritable cache directory only means the next new data directory runs initdb too.
 */
export async function saveTemplate(db: PGlite): Promise<void> {
  const file = templatePath();
  if (!file) return;
  try {
    const dump = await db.dumpDataDir('gzip');
    await mkdir(path.dirname(file), { recursive: true });
    const partial = `${file}.${process.pid}.partial`;
    await writeFile(partial, Buffer.from(await dump.arrayBuffer()));
    await rename(partial, file);
  } catch {
    // Not writable: fine.
  }
}
