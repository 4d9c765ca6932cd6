import { LRUCache } from 'lru-cache';

/** Counters for /metrics: hits (no store round trip), misses (a lookup), entries held. */
export interface CacheStats {
  hits: number;
  misses: number;
  size: number;
}

export interface LookupCacheOptions {
  /** Most entries held; the least recently used goes first. */
  max: number;
  /** How long "there is no such entry" is believed; unknown ids must not fill the cache. */
  absentTtlMs: number;
  /** Milliseconds for TTLs (tests move it); performance.now() otherwise. */
  now?: () => number;
}

/** Stands for a confirmed absence in the cache (lru-cache does not store `undefined`). */
const ABSENT: object = Object.freeze({});

/**
 * A bounded lookup cache over lru-cache: one load per key at a time (concurrent callers share
 * it), found values kept until invalidated or evicted, absences only for `absentTtlMs`. A failed
 * load is not cached.
 */
export class LookupCache<V extends object> {
  readonly #lru: LRUCache<string, V | typeof ABSENT>;
  #hits = 0;
  #misses = 0;

  constructor(load: (key: string) => Promise<V | undefined>, private readonly options: LookupCacheOptions) {
    this.#lru = new LRUCache<string, V | typeof ABSENT>({
      max: options.max,
      ...(options.now ? { perf: { now: options.now }, ttlResolution: 0 } : {}),
      // An entry invalidated or evicted while its load is in flight is not stored when the load
      // ends (lru-cache checks the slot still holds that load), but its callers get the result.
      ignoreFetchAbort: true,
      fetchMethod: async (key, _stale, { options: entry }) => {
        const value = await load(key);
        if (value !== undefined) return value;
        entry.ttl = this.options.absentTtlMs;
        return ABSENT;
      },
    });
  }

  async get(key: string): Promise<V | undefined> {
    // The hot path: a held entry (lru-cache's `get` skips a load in flight and an expired absence).
    const held = this.#lru.get(key);
    if (held !== undefined) {
      this.#hits += 1;
      return held === ABSENT ? undefined : held as V;
    }
    const status: LRUCache.Status<string, V | typeof ABSENT> = {};
    const value = await this.#lru.fetch(key, { status });
    if (status.fetch === 'hit' || status.fetch === 'inflight') this.#hits += 1;
    else this.#misses += 1;
    return value === ABSENT || value === undefined ? undefined : value as V;
  }

  invalidate(key: string): void {
    this.#lru.delete(key);
  }

  clear(): void {
    this.#lru.clear();
  }

  stats(): CacheStats {
    return { hits: this.#hits, misses: this.#misses, size: this.#lru.size };
  }
}
