import argon2 from 'argon2';

/**
 * argon2id at OWASP's recommended minimum or above (m=19 MiB, t=2, p=1). Hashes made with
 * weaker parameters are re-hashed on the next successful login (`needsRehash`).
 */
export const PASSWORD_PARAMS = { type: argon2.argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export function hashPassword(password: string): Promise<string> {
  return argon2.hash(password, PASSWORD_PARAMS);
}

export async function verifyPassword(hash: string, password: string): Promise<boolean> {
  try {
    return await argon2.verify(hash, password);
  } catch {
    return false;
  }
}

export function needsRehash(hash: string): boolean {
  return argon2.needsRehash(hash, PASSWORD_PARAMS);
}

let dummy: Promise<string> | undefined;

/**
 * Verifies against a fixed dummy hash, so an unknown username costs the same time as a wrong
 * password and login timing does not reveal which accounts exist.
 */
export async function verifyAgainstDummy(password: string): Promise<false> {
  dummy ??= hashPassword('keyward-dummy-password-for-timing');
  await verifyPassword(await dummy, password);
  return false;
}
