import { randomUUID } from 'node:crypto';
import type { Sql } from './sql.ts';

/** What changed: the in-process caches drop exactly that entry (or everything of a kind). */
export interface Change {
  kind: 'client' | 'role' | 'resource' | 'user' | 'keys';
  /** The id of the changed entity; absent means "all of this kind". */
  id?: string;
}

type Listener = (change: Change) => void;

const CHANNEL = 'keyward_changes';

/**
 * Invalidation feed. Inside one process, listeners are called directly and synchronously;
 * across instances the change travels through PostgreSQL LISTEN/NOTIFY (PGlite: same process).
 */
export class ChangeFeed {
  readonly #listeners = new Set<Listener>();
  readonly #origin = randomUUID();
  #unlisten: (() => Promise<void>) | undefined;

  constructor(private readonly sql: Sql | undefined) {}

  subscribe(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async publish(change: Change): Promise<void> {
    this.#deliver(change);
    if (this.sql) await this.sql.notify(CHANNEL, JSON.stringify({ ...change, origin: this.#origin }));
  }

  /** Starts receiving other instances' changes. */
  async start(): Promise<void> {
    if (!this.sql || this.#unlisten) return;
    this.#unlisten = await this.sql.listen(CHANNEL, (payload) => {
      try {
        const { origin, ...change } = JSON.parse(payload) as Change & { origin: string };
        if (origin !== this.#origin) this.#deliver(change);
      } catch {
        // A malformed payload is not ours to act on.
      }
    });
  }

  async stop(): Promise<void> {
    await this.#unlisten?.();
    this.#unlisten = undefined;
  }

  #deliver(change: Change): void {
    for (const listener of this.#listeners) listener(change);
  }
}
