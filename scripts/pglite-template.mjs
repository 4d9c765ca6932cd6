// Writes the PGlite initdb template that src/store/pglite-options.ts unpacks for a new data
// directory (so the first `npm start` does not run initdb). Run by postinstall; best effort.
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { Buffer } from 'node:buffer';

const require = createRequire(import.meta.url);
try {
  const entry = require.resolve('@electric-sql/pglite');
  const root = entry.slice(0, entry.lastIndexOf(`${path.sep}dist${path.sep}`));
  const { version } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
  const file = path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'keyward', `pglite-${version}.tar.gz`);
  if (!existsSync(file)) {
    const { PGlite } = await import('@electric-sql/pglite');
    const db = await PGlite.create('memory://template');
    const dump = await db.dumpDataDir('gzip');
    await db.close();
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(`${file}.${process.pid}.partial`, Buffer.from(await dump.arrayBuffer()));
    await rename(`${file}.${process.pid}.partial`, file);
    process.stdout.write(`keyward: PGlite template written to ${file}\n`);
  }
} catch (error) {
  process.stdout.write(`keyward: no PGlite template (${error.message}); the first start on a new data directory runs initdb\n`);
}
