import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * The key-encryption key: from the environment when given, otherwise from a local file that
 * is created once (mode 0600) so a development install needs no setup.
 */
export async function loadKek(fromEnv: Buffer | undefined, file: string): Promise<Buffer> {
  if (fromEnv) return fromEnv;
  try {
    const kek = Buffer.from((await readFile(file, 'utf8')).trim(), 'base64');
    if (kek.length !== 32) throw new Error(`${file} does not hold 32 bytes of base64`);
    return kek;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const kek = randomBytes(32);
  await mkdir(path.dirname(file), { recursive: true });
  // 'wx' fails if another process created it meanwhile: then read theirs.
  try {
    await writeFile(file, `${kek.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
    return kek;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return loadKek(undefined, file);
    throw error;
  }
}
