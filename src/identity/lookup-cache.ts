import { LRUCache } from 'lru-cache';

/** Counters for /metrics: hits (no store round trip), misses (a lookup), entries held. */
export interface CacheStats {
  hits: number;
  misses: number;
  size: number;
}

export interface LookupCacheOptions {
  /** Most entries held; the least recently used goes first. Absences are held apart, as many again at most. */
  max: number;
  /** How long "there is no such entry" is believed; unknown ids must not fill the cache. */
  absentTtlMs: number;
  /** Milliseconds for TTLs (tests move it); performance.now() otherwise. */
  now?: () => number;
}

/**
 * A bounded lookup cache over lru-cache: one load per key at a time (concurrent callers share
 * it), found values kept until invalidated or evicted, absences only for `absentTtlMs`. A failed
 * load is not cached, nor is one that overlapped an invalidation (it may have read what the
 * change replaced). Absences live in an LRU of their own, so a flood of unknown keys (random
 * client ids) evicts only other absences, never an entry that was found.
 */
export class LookupCache<V extends object> {
  readonly #found: LRUCache<string, V>;
  readonly #absent: LRUCache<string, true>;
  readonly #inflight = new Map<string, Promise<V | undefined>>();
  /** Bumped by every invalidation: a load begun before one is answered but not kept. */
  #generation = 0;
  #hits = 0;
  #misses = 0;

  constructor(private readonly load: (key: string) => Promise<V | undefined>, options: LookupCacheOptions) {
    this.#found = new LRUCache<string, V>({ max: options.max });
    this.#absent = new LRUCache<string, true>({
      max: options.max,
      ttl: options.absentTtlMs,
      ...(options.now ? { perf: { now: options.now }, ttlResolution: 0 } : {}),
    });
  }

  get(key: string): Promise<V | undefined> {
    // The hot path: a held entry, or a believed absence.
    const held = this.#found.get(key);
    if (held !== undefined) {
      this.#hits += 1;
      return Promise.resolve(held);
    }
    if (this.#absent.get(key)) {
      this.#hits += 1;
      return Promise.resolve(undefined);
    }
    const running = this.#inflight.get(key);
    if (running) {
      this.#hits += 1;
      return running;
    }
    this.#misses += 1;
    const generation = this.#generation;
    const loading = this.load(key).then((value) => {
      if (generation === this.#generation) {
        if (value === undefined) this.#absent.set(key, true);
        else this.#found.set(key, value);
      }
      return value;
    }).finally(() => {
      if (this.#inflight.get(key) === loading) this.#inflight.delete(key);
    });
    this.#inflight.set(key, loading);
    return loading;
  }

  invalidate(key: string): void {
    this.#generation += 1;
    this.#found.delete(key);
    this.#absent.delete(key);
    this.#inflight.delete(key);
  }

  clear(): void {
    this.#generation += 1;
    this.#found.clear();
    this.#absent.clear();
    this.#inflight.clear();
  }

  /** `size` counts found entries and believed absences. */
  stats(): CacheStats {
    return { hits: this.#hits, misses: this.#misses, size: this.#found.size + this.#absent.size };
  }
}
