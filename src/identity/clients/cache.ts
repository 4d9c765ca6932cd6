import type { PrismaClient } from '../../store/store.ts';
import type { ChangeFeed } from '../../store/changes.ts';
import { LookupCache, type CacheStats, type LookupCacheOptions } from '../lookup-cache.ts';
import { include, toRecord, type ClientRecord, type ClientRow } from './rows.ts';

/**
 * KEYWARD_CLIENT_CACHE_SIZE's default. An LRU smaller than the set of clients that take turns
 * misses on every request (measured: 10,000 clients round-robin through 10,000 entries ended at
 * no hits at all once one other id had been looked up), so it is sized well above a fleet.
 */
export const DEFAULT_CLIENT_CACHE_SIZE = 50_000;

/**
 * Client records for the token endpoint's hot path, each kept until the change feed names its
 * client (or any role, since a record carries its roles), or until evicted: the cache is a
 * bounded LRU, and an unknown id is believed absent only briefly, so random ids cannot grow it.
 */
export class ClientRecordCache {
  readonly #cache: LookupCache<ClientRecord>;

  constructor(
    prisma: PrismaClient,
    changes: ChangeFeed,
    max = DEFAULT_CLIENT_CACHE_SIZE,
  ) {
    const options: LookupCacheOptions = { max, absentTtlMs: 5_000 };
    this.#cache = new LookupCache(async (clientId) => {
      const row = await prisma.client.findUnique({ where: { clientId }, include });
      return row ? toRecord(row as ClientRow) : undefined;
    }, options);
    changes.subscribe((change) => {
      if (change.kind === 'client') {
        if (change.id) this.invalidate(change.id);
        else this.clear();
      } else if (change.kind === 'role') {
        this.clear();
      }
    });
  }

  get(clientId: string): Promise<ClientRecord | undefined> {
    return this.#cache.get(clientId);
  }

  invalidate(clientId: string): void {
    this.#cache.invalidate(clientId);
  }

  clear(): void {
    this.#cache.clear();
  }

  stats(): CacheStats {
    return this.#cache.stats();
  }
}
