import { open, readFile, rm } from 'node:fs/promises';

export class StoreLockedError extends Error {
  override name = 'StoreLockedError';
}

/**
 * PGlite is a database inside this process: a second process opening the same data directory
 * would silently corrupt it. A lock file holding the owner's pid keeps that from happening;
 * a lock left by a process that no longer runs is taken over.
 */
export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  const file = `${dataDir}.lock`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(file, 'wx', 0o600);
      await handle.writeFile(String(process.pid));
      await handle.close();
      return () => rm(file, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = Number((await readFile(file, 'utf8').catch(() => '')).trim());
      if (owner && isRunning(owner)) {
        throw new StoreLockedError(`the embedded store ${dataDir} is in use by process ${owner}; stop it first, use PostgreSQL for several processes, or delete ${file} if no Keyward runs`);
      }
      await rm(file, { force: true });
    }
  }
  throw new StoreLockedError(`could not lock the embedded store ${dataDir}`);
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
