import pg from 'pg';
import { errorFields, type Logger } from '../log/logger.ts';

export type ListenerState = 'lost' | 'restored';

export interface SupervisedListenerOptions {
  /** Opens a connection of its own: a pooled one would lose its error listener at checkout. */
  connect: () => pg.Client;
  channel: string;
  onPayload: (payload: string) => void;
  /** `lost` once when the connection goes, `restored` once it listens again (NOTIFYs in between are gone). */
  onState: (state: ListenerState) => void;
  logger: Logger | undefined;
  /** First reconnect delay; doubles per failed attempt up to `maxBackoffMs`. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** How often an idle connection is probed (a dead TCP peer sends no error). */
  heartbeatMs?: number;
}

/**
 * One LISTEN connection that never takes the process down: an error or end releases it, is
 * logged once, and a new connection is opened with capped exponential backoff until it
 * listens again. A heartbeat query finds connections that died without a word.
 */
export class SupervisedListener {
  #client: pg.Client | undefined;
  #stopped = false;
  #attempt = 0;
  #retry: NodeJS.Timeout | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #reconnects = 0;

  constructor(private readonly options: SupervisedListenerOptions) {}

  /** Listens, or throws when the first connection fails (start-up needs the store anyway). */
  async start(): Promise<void> {
    this.#client = await this.#open();
    const every = this.options.heartbeatMs ?? 5_000;
    this.#heartbeat = setInterval(() => this.#probe(), every);
    this.#heartbeat.unref();
  }

  /** Connections re-established after a loss, for /metrics. */
  get reconnects(): number {
    return this.#reconnects;
  }

  get listening(): boolean {
    return this.#client !== undefined;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#retry) clearTimeout(this.#retry);
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    const client = this.#client;
    this.#client = undefined;
    if (client) {
      await client.query(`UNLISTEN ${this.options.channel}`).catch(() => undefined);
      await client.end().catch(() => undefined);
    }
  }

  async #open(): Promise<pg.Client> {
    const client = this.options.connect();
    // Until this connection is ours, an error only fails the attempt (the await below throws).
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query(`LISTEN ${this.options.channel}`);
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    client.on('notification', (message) => {
      if (message.channel === this.options.channel) this.options.onPayload(message.payload ?? '');
    });
    client.on('error', (error) => this.#lost(client, error));
    client.on('end', () => this.#lost(client, undefined));
    return client;
  }

  #probe(): void {
    const client = this.#client;
    if (!client) return;
    client.query('SELECT 1').catch((error: Error) => this.#lost(client, error));
  }

  #lost(client: pg.Client, error: Error | undefined): void {
    if (this.#client !== client || this.#stopped) return;
    this.#client = undefined;
    client.removeAllListeners('notification');
    client.end().catch(() => undefined);
    this.options.logger?.warn({ ...(error ? { err: errorFields(error) } : {}), channel: this.options.channel }, 'LISTEN connection lost; reconnecting');
    this.options.onState('lost');
    this.#attempt = 0;
    this.#schedule();
  }

  #schedule(): void {
    if (this.#stopped) return;
    const base = this.options.backoffMs ?? 250;
    const cap = this.options.maxBackoffMs ?? 2_000;
    const delay = Math.min(cap, base * 2 ** this.#attempt);
    this.#attempt += 1;
    this.#retry = setTimeout(() => void this.#reconnect(), delay);
    this.#retry.unref();
  }

  async #reconnect(): Promise<void> {
    if (this.#stopped) return;
    let client: pg.Client;
    try {
      client = await this.#open();
    } catch (error) {
      this.options.logger?.debug({ err: errorFields(error), attempt: this.#attempt }, 'LISTEN reconnect failed');
      this.#schedule();
      return;
    }
    if (this.#stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.#client = client;
    this.#reconnects += 1;
    this.options.logger?.info({ channel: this.options.channel, attempts: this.#attempt }, 'LISTEN connection restored');
    this.options.onState('restored');
  }
}
