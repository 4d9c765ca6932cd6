import { LRUCache } from 'lru-cache';
import type { Client } from 'oidc-provider';
import type { CacheStats } from '../identity/lookup-cache.ts';
import { DEFAULT_CLIENT_CACHE_SIZE } from '../identity/clients/cache.ts';

/** How a client-instance cache learns that a client changed: its id, or undefined for "all". */
export type ClientChanges = (listener: (clientId: string | undefined) => void) => void;

export interface ClientInstancesOptions {
  /** Most Client instances held per provider instance (least recently used go first). */
  max?: number;
  /** Most recently used clients loaded into a new provider before it serves (key rotation). */
  warmMax?: number;
}

/** How many provider instances' caches are still told about changes (the current one and those finishing requests). */
const KEPT_GENERATIONS = 3;
/** Warming yields to the event loop after this many clients, so requests keep being served. */
const WARM_BATCH = 64;

/** The cache of one provider instance: Client objects belong to the `provider.Client` class they were built by. */
export class ProviderClients {
  readonly #lru: LRUCache<string, Client>;
  readonly #inflight = new Map<string, Promise<Client | undefined>>();
  /** While warmed (before its provider serves), lookups are not counted as hits or misses. */
  warming = false;

  constructor(private readonly owner: ClientInstances, max: number) {
    this.#lru = new LRUCache<string, Client>({ max });
  }

  /**
   * The cached Client for `clientId`, else `load`'s (shared by concurrent callers). A load
   * that overlaps a change to any client is returned to its callers but not kept: it may have
   * read the record from before the change.
   */
  find(clientId: string, load: (clientId: string) => Promise<Client | undefined>): Promise<Client | undefined> | Client {
    const hit = this.#lru.get(clientId);
    if (hit) {
      if (!this.warming) this.owner.counted(true);
      return hit;
    }
    const running = this.#inflight.get(clientId);
    if (running) {
      if (!this.warming) this.owner.counted(true);
      return running;
    }
    if (!this.warming) this.owner.counted(false);
    const generation = this.owner.generation;
    const loading = load(clientId).then((client) => {
      if (client && generation === this.owner.generation) this.#lru.set(clientId, client);
      return client;
    }).finally(() => this.#inflight.delete(clientId));
    this.#inflight.set(clientId, loading);
    return loading;
  }

  /** Client ids, most recently used first. */
  recent(limit: number): string[] {
    const ids: string[] = [];
    for (const id of this.#lru.keys()) {
      if (ids.length >= limit) break;
      ids.push(id);
    }
    return ids;
  }

  drop(clientId: string | undefined): void {
    if (clientId === undefined) this.#lru.clear();
    else this.#lru.delete(clientId);
  }

  get size(): number {
    return this.#lru.size;
  }
}

/**
 * Keyward's cache of oidc-provider `Client` objects, one bounded LRU per provider instance,
 * emptied of a client as soon as the change feed names it (here at once, on other instances
 * via NOTIFY: the path that invalidates the client-record cache). It replaces oidc-provider's
 * own lookup, which rebuilds the metadata, serialises and hashes it on every request and keeps
 * only 100 clients (see overrides/client-find.ts). A new provider instance (key rotation) is
 * filled with the clients the previous one served most recently before it takes requests.
 */
export class ClientInstances {
  readonly #max: number;
  readonly #warmMax: number;
  #generations: ProviderClients[] = [];
  #generation = 0;
  #hits = 0;
  #misses = 0;

  constructor(changes: ClientChanges, options: ClientInstancesOptions = {}) {
    this.#max = options.max ?? DEFAULT_CLIENT_CACHE_SIZE;
    this.#warmMax = options.warmMax ?? this.#max;
    changes((clientId) => {
      this.#generation += 1;
      for (const cache of this.#generations) cache.drop(clientId);
    });
  }

  /** Bumped by every change; a load begun under an older value is not kept. */
  get generation(): number {
    return this.#generation;
  }

  /** A new, empty cache for a new provider instance; the older ones stay coherent for requests still in them. */
  create(): ProviderClients {
    const cache = new ProviderClients(this, this.#max);
    this.#generations = [...this.#generations, cache].slice(-KEPT_GENERATIONS);
    return cache;
  }

  /**
   * Loads into the newest cache (through `find`, the new provider's lookup) the clients the
   * cache before it used most recently, so the first requests after a rotation find their
   * client ready. Returns how many were loaded.
   */
  async warm(find: (clientId: string) => Promise<unknown>): Promise<number> {
    const next = this.#generations.at(-1);
    const previous = this.#generations.at(-2);
    if (!next || !previous) return 0;
    const ids = previous.recent(this.#warmMax);
    next.warming = true;
    try {
      for (let i = 0; i < ids.length; i++) {
        await find(ids[i]!);
        if ((i + 1) % WARM_BATCH === 0) await new Promise((resolve) => setImmediate(resolve));
      }
    } finally {
      next.warming = false;
    }
    return ids.length;
  }

  /** @internal counted by ProviderClients */
  counted(hit: boolean): void {
    if (hit) this.#hits += 1;
    else this.#misses += 1;
  }

  /** Hits, misses (of requests, not of warming) and entries of the current provider's cache (for /metrics and tests). */
  stats(): CacheStats {
    return { hits: this.#hits, misses: this.#misses, size: this.#generations.at(-1)?.size ?? 0 };
  }
}
