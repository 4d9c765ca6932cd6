import type { Logger } from '../log/logger.ts';
import type { ChangeFeed } from '../store/changes.ts';
import type { KeyStore } from './store.ts';

export interface KeySetFollowerDeps {
  keys: KeyStore;
  changes: ChangeFeed;
  logger: Logger;
  /** Builds a new Provider from the stored keys and swaps it in. */
  rebuild: () => Promise<void>;
  /** The fallback re-read, for a NOTIFY lost while the listening connection was down. */
  pollMs?: number;
}

const DEFAULT_POLL_MS = 30_000;

/**
 * Keeps this instance serving the stored key set: reloads when another instance announces a
 * change (`keys` on the change feed, i.e. LISTEN/NOTIFY) and, as a fallback, whenever a
 * periodic re-read finds the fingerprint of live keys differs from the one loaded. Reloads are
 * coalesced: a burst of notifications builds one Provider, not one each.
 */
export class KeySetFollower {
  #loaded: string | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #force = false;
  #poll: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;

  constructor(private readonly deps: KeySetFollowerDeps) {}

  /** `loaded`: the fingerprint read before the running Provider's keys were loaded. */
  start(loaded: string): void {
    this.#loaded = loaded;
    this.#unsubscribe ??= this.deps.changes.subscribe((change) => {
      if (change.kind === 'keys') this.#sync(false).catch((error: Error) => this.deps.logger.error({ err: error.message }, 'key set reload failed'));
    });
    this.#poll ??= setInterval(() => {
      this.#sync(false).catch((error: Error) => this.deps.logger.warn({ err: error.message }, 'key set re-read failed'));
    }, this.deps.pollMs ?? DEFAULT_POLL_MS);
    this.#poll.unref();
  }

  stop(): Promise<void> {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    if (this.#poll) clearInterval(this.#poll);
    this.#poll = undefined;
    return this.#running ?? Promise.resolve();
  }

  /** Reloads unconditionally (after this instance changed the keys, or on request). */
  reload(): Promise<void> {
    return this.#sync(true);
  }

  /** Reloads when the stored key set differs from the one being served. */
  sync(): Promise<void> {
    return this.#sync(false);
  }

  #sync(force: boolean): Promise<void> {
    this.#force ||= force;
    if (this.#running) {
      // A pass is under way but may have read the store before this change: run once more.
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      do {
        this.#again = false;
        const forced = this.#force;
        this.#force = false;
        await this.#once(forced);
      } while (this.#again);
    })().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #once(force: boolean): Promise<void> {
    // Read before loading: a change racing the load leaves a stale fingerprint, so the next
    // pass reloads again rather than missing it.
    const fingerprint = await this.deps.keys.fingerprint();
    if (!force && fingerprint === this.#loaded) return;
    await this.deps.rebuild();
    const changed = fingerprint !== this.#loaded;
    this.#loaded = fingerprint;
    if (changed) this.deps.logger.info({ keys: fingerprint.split(',').length }, 'signing keys reloaded');
  }
}
