import { randomUUID } from 'node:crypto';
import { errorFields, type Logger } from '../log/logger.ts';
import type { ListenerState } from './listener.ts';
import type { Sql } from './sql.ts';

/** What changed: the in-process caches drop exactly that entry (or everything of a kind). */
export interface Change {
  kind: 'client' | 'role' | 'resource' | 'user' | 'keys';
  /** The id of the changed entity; absent means "all of this kind". */
  id?: string;
}

type Listener = (change: Change) => void;

const CHANNEL = 'keyward_changes';

/** Every kind of cached data; each cache drops all it holds of a kind named without an id. */
const ALL_KINDS: readonly Change['kind'][] = ['client', 'role', 'resource', 'user', 'keys'];
/** What a cache may serve without the store; keys are the follower's (it re-reads them itself), and JWKS must keep answering. */
const CACHED_KINDS: readonly Change['kind'][] = ['client', 'role', 'resource', 'user'];

/** Changes whose NOTIFY failed, kept for the next attempt; beyond this many, one "everything" per kind stands for them. */
const MAX_UNSENT = 100;

export interface ChangeFeedOptions {
  logger?: Logger;
  /**
   * How long cached entries may be served without word from the store: while the LISTEN
   * connection is down, the caches are emptied this long after it went and again every such
   * interval, so no entry is used longer than this after the store last confirmed it.
   */
  maxStalenessMs?: number;
  /**
   * How often the feed checks itself: it sends a NOTIFY to itself through the pool and expects
   * it back on the LISTEN connection; also when changes whose NOTIFY failed are sent again.
   */
  probeMs?: number;
}

const DEFAULT_MAX_STALENESS_MS = 5 * 60_000;
const DEFAULT_PROBE_MS = 5_000;

/**
 * Invalidation feed. Inside one process, listeners are called directly and synchronously;
 * across instances the change travels through PostgreSQL LISTEN/NOTIFY (PGlite: same process).
 *
 * Coherence across a lost connection: NOTIFYs sent while this instance was not listening never
 * arrive, so when LISTEN is restored every cache is revalidated (emptied, reloaded on demand).
 * While it is down, entries age out after `maxStalenessMs`. A change whose NOTIFY fails (the
 * database went away between the write and the NOTIFY) is sent again once it can be. A
 * periodic self-addressed NOTIFY proves the path end to end; when it does not come back the
 * feed treats the connection as lost.
 */
export class ChangeFeed {
  readonly #listeners = new Set<Listener>();
  readonly #origin = randomUUID();
  readonly #maxStalenessMs: number;
  readonly #probeMs: number;
  #unlisten: (() => Promise<void>) | undefined;
  #stale: NodeJS.Timeout | undefined;
  #probe: NodeJS.Timeout | undefined;
  #unsent: Change[] = [];
  /** The probe sent last and not heard back yet. */
  #awaiting: string | undefined;
  #connected = true;

  constructor(private readonly sql: Sql | undefined, private readonly options: ChangeFeedOptions = {}) {
    this.#maxStalenessMs = options.maxStalenessMs ?? DEFAULT_MAX_STALENESS_MS;
    this.#probeMs = options.probeMs ?? DEFAULT_PROBE_MS;
  }

  subscribe(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Applies the change here at once and tells the other instances. Never fails for a NOTIFY
   * the database did not take: the write it announces is done, so the change is kept and sent
   * again by the next probe.
   */
  async publish(change: Change): Promise<void> {
    this.#deliver(change);
    if (!this.sql) return;
    try {
      await this.#send(change);
    } catch (error) {
      this.#keepUnsent(change);
      this.options.logger?.warn({ err: errorFields(error), change: change.kind }, 'change notification not sent; will retry');
    }
  }

  /** Starts receiving other instances' changes. */
  async start(): Promise<void> {
    if (!this.sql || this.#unlisten) return;
    this.#unlisten = await this.sql.listen(CHANNEL, (payload) => this.#receive(payload), (state) => this.#onState(state));
    this.#probe = setInterval(() => void this.#check(), this.#probeMs);
    this.#probe.unref();
  }

  async stop(): Promise<void> {
    if (this.#probe) clearInterval(this.#probe);
    if (this.#stale) clearInterval(this.#stale);
    this.#probe = undefined;
    this.#stale = undefined;
    await this.#unlisten?.();
    this.#unlisten = undefined;
  }

  /** Empties every cache of the given kinds (all of them by default). */
  revalidate(kinds: readonly Change['kind'][] = ALL_KINDS): void {
    for (const kind of kinds) this.#deliver({ kind });
  }

  #receive(payload: string): void {
    let message: Change & { origin?: string; probe?: string };
    try {
      message = JSON.parse(payload) as Change & { origin?: string; probe?: string };
    } catch {
      return; // A malformed payload is not ours to act on.
    }
    const { origin, probe, ...change } = message;
    if (probe !== undefined) {
      if (origin === this.#origin && probe === this.#awaiting) this.#awaiting = undefined;
      return;
    }
    if (origin !== this.#origin && ALL_KINDS.includes(change.kind)) this.#deliver(change);
  }

  #onState(state: ListenerState): void {
    if (state === 'lost') {
      this.#connected = false;
      this.#awaiting = undefined;
      // Entries were confirmed until now; each period without LISTEN ages them out once more.
      this.#stale ??= setInterval(() => {
        this.options.logger?.warn({ maxStalenessMs: this.#maxStalenessMs }, 'no word from the database for the cache staleness limit; cached entries dropped');
        this.revalidate(CACHED_KINDS);
      }, this.#maxStalenessMs);
      this.#stale.unref();
      return;
    }
    this.#connected = true;
    if (this.#stale) clearInterval(this.#stale);
    this.#stale = undefined;
    // Whatever was announced while nobody listened is unknown: reload everything on demand.
    this.revalidate();
    void this.#flushUnsent();
  }

  async #check(): Promise<void> {
    if (!this.sql || !this.#connected) return;
    if (this.#awaiting !== undefined) {
      // The previous probe never came back over LISTEN: changes may be lost the same way.
      this.options.logger?.warn('change feed probe not received; revalidating caches');
      this.#awaiting = undefined;
      this.revalidate();
    }
    await this.#flushUnsent();
    const probe = randomUUID();
    // Awaited before it is sent: the LISTEN session may hear the probe before this one hears
    // its NOTIFY complete, and a probe heard while not yet awaited would count as lost.
    this.#awaiting = probe;
    try {
      await this.sql.notify(CHANNEL, JSON.stringify({ origin: this.#origin, probe }));
    } catch {
      // The database is away; the LISTEN connection will say so too.
      if (this.#awaiting === probe) this.#awaiting = undefined;
    }
  }

  async #flushUnsent(): Promise<void> {
    while (this.#unsent.length) {
      const change = this.#unsent[0]!;
      try {
        await this.#send(change);
      } catch {
        return;
      }
      this.#unsent.shift();
    }
  }

  #send(change: Change): Promise<void> {
    return this.sql!.notify(CHANNEL, JSON.stringify({ ...change, origin: this.#origin }));
  }

  #keepUnsent(change: Change): void {
    this.#unsent.push(change);
    if (this.#unsent.length > MAX_UNSENT) this.#unsent = ALL_KINDS.map((kind) => ({ kind }));
  }

  #deliver(change: Change): void {
    for (const listener of this.#listeners) listener(change);
  }
}
