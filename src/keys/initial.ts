import type { AuditWriter } from '../audit/writer.ts';
import type { Logger } from '../log/logger.ts';
import type { Sql } from '../store/sql.ts';
import { planStart } from './lifecycle.ts';
import { applyTransitions, KEY_LIFECYCLE_LOCK, type AppliedTransition } from './scheduler.ts';
import type { SigningAlg } from './algorithms.ts';
import type { KeyStore } from './store.ts';

/**
 * Before the first Provider is built, every algorithm must have a current (signing) and a next
 * key. On an empty store, or for an algorithm newly configured, both are created at once:
 * nobody can hold a token of an algorithm we never signed with, and the next key is in every
 * JWKS that ever held the current one. A store from before next keys gets its next key here;
 * a next key left without a current one (a crash mid-rotation) signs, being already published.
 * Instances starting together serialize on the lifecycle lock, so only one of them does it.
 */
export async function ensureInitialKeys(
  sql: Sql, keys: KeyStore, algs: readonly SigningAlg[], now: () => Date, audit: AuditWriter, logger: Logger,
): Promise<AppliedTransition[]> {
  const result = await sql.withAdvisoryLock(KEY_LIFECYCLE_LOCK, async () =>
    applyTransitions({ keys, audit, logger, now }, planStart(await keys.list(), algs), now(), 'initial', 'startup'));
  return result.acquired ? result.value : [];
}
