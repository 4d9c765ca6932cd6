import type { AuditWriter } from '../audit/writer.ts';
import type { Sql } from '../store/sql.ts';
import { KEY_LIFECYCLE_LOCK } from './scheduler.ts';
import type { SigningAlg } from './algorithms.ts';
import type { KeyStore } from './store.ts';

/**
 * Before the first Provider is built, every algorithm must have a signing key: on an empty
 * store (or for an algorithm newly configured) one is created active at once; nobody can hold
 * a token of an algorithm we never signed with, so there is nothing to stage for. A staged key
 * left without an active one (a crash mid-rotation) is promoted instead, being already published.
 * Instances starting together serialize on the lifecycle lock, so only one of them does it.
 */
export async function ensureInitialKeys(sql: Sql, keys: KeyStore, algs: readonly SigningAlg[], now: () => Date, audit?: AuditWriter): Promise<SigningAlg[]> {
  const result = await sql.withAdvisoryLock(KEY_LIFECYCLE_LOCK, async () => {
    const stored = await keys.list();
    const missing = algs.filter((alg) => !stored.some((k) => k.alg === alg && k.state === 'active'));
    for (const alg of missing) {
      const staged = stored.find((k) => k.alg === alg && k.state === 'staged');
      const key = staged ? await keys.transition(staged.kid, 'active', now()) : await keys.create(alg, 'active', now);
      audit?.record({
        type: 'key.transition',
        actor: 'startup',
        subject: key.kid,
        outcome: 'success',
        details: { alg, from: staged ? 'staged' : null, to: 'active', reason: 'initial' },
        at: key.activatedAt ?? now(),
      });
    }
    return missing;
  });
  return result.acquired ? result.value : [];
}
