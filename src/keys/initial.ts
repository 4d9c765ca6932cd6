import type { Sql } from '../store/sql.ts';
import type { KeyStore, SigningAlg } from './store.ts';

const KEY_INIT_LOCK = 0x6b657977; // "keyw"

/**
 * On a store without usable keys, creates one active key per algorithm. Instances starting
 * together serialize on an advisory lock so only one of them generates keys.
 */
export async function ensureInitialKeys(sql: Sql, keys: KeyStore, algs: SigningAlg[], now: () => Date): Promise<SigningAlg[]> {
  const result = await sql.withAdvisoryLock(KEY_INIT_LOCK, async () => {
    const usable = (await keys.list()).filter((k) => k.state === 'active');
    const missing = algs.filter((alg) => !usable.some((k) => k.alg === alg));
    for (const alg of missing) await keys.create(alg, 'active', now());
    return missing;
  });
  return result.acquired ? result.value : [];
}
