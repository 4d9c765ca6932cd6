import { accessSync, constants } from 'node:fs';
import path from 'node:path';

/** The path of an installed executable (PATH, then the sbin directories), or undefined. */
export function binary(name: string): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/local/sbin']) {
    const file = path.join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch { /* next */ }
  }
  return undefined;
}
