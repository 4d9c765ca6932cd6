import { LRUCache } from 'lru-cache';
import { storableText } from '../domain/text.ts';
import { errorFields, requestIdField, type Logger } from '../log/logger.ts';
import type { Sql } from '../store/sql.ts';
import type { AuditEvent } from './events.ts';

export interface AuditWriterOptions {
  /** Flush at least this often. */
  intervalMs?: number;
  /** Flush as soon as this many events are waiting. */
  batchSize?: number;
  /** Most events held while the store does not take them; beyond it the oldest are dropped (counted). */
  maxBuffered?: number;
  /** Repeats of one failure from one source within this window become one summary event. */
  repeatWindowMs?: number;
  /** Distinct repeating failures tracked at once; the least recent is summarized early beyond it. */
  maxRepeatKeys?: number;
  /**
   * Level of the log line each event also becomes: `debug` (default: seen with LOG_LEVEL=debug
   * only; the trail is the table) or `info` (asked for with KEYWARD_AUDIT_LOG=info).
   */
  logLevel?: 'debug' | 'info';
}

/** What operators watch: events waiting, and events lost (and why). */
export interface AuditStats {
  buffered: number;
  dropped: { overflow: number; unstorable: number };
}

/**
 * One statement per batch with array parameters. Measured: Prisma's createMany of 200 rows
 * cost 170-400 ms of CPU on the event loop, this 7-25 ms — it matters on the token endpoint.
 */
const INSERT_BATCH = `
  INSERT INTO audit_events (type, actor, subject, outcome, ip, details, at)
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[], $7::timestamptz[])`;

interface Buffered {
  type: AuditEvent['type'];
  actor: string;
  subject: string;
  outcome: AuditEvent['outcome'];
  ip: string;
  details: Record<string, unknown>;
  at: Date;
  requestId?: string | undefined;
}

/** Bounds of what one event may hold: ids and names are short, and no input is kept whole. */
const MAX_ID = 128;
const MAX_IP = 64;
const MAX_DETAIL_TEXT = 256;
const MAX_DETAIL_ITEMS = 32;
const MAX_DETAIL_DEPTH = 4;

/** Any value made storable and bounded (strings cut, arrays and objects capped, depth limited). */
function boundedValue(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return storableText(value, MAX_DETAIL_TEXT);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) return value;
  if (depth >= MAX_DETAIL_DEPTH) return '[nested too deep]';
  if (Array.isArray(value)) return value.slice(0, MAX_DETAIL_ITEMS).map((item) => boundedValue(item, depth + 1));
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).slice(0, MAX_DETAIL_ITEMS)
      .map(([key, item]) => [storableText(key, 64), boundedValue(item, depth + 1)]));
  }
  return String(value as bigint);
}

/**
 * SQLSTATE classes that name the data, not the connection: 22 data exception (NUL in text,
 * untranslatable character), 23 integrity, 54 program limit (a value too large). A batch failing
 * with one of these holds a bad event; any other failure (the store is away) is retried whole.
 */
function isDataError(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && /^(22|23|54)[0-9A-Z]{3}$/.test(code);
}

const CATEGORY: Record<AuditEvent['type'], string> = {
  'admin.change': 'iam',
  'client.bootstrap': 'iam',
  'login.success': 'authentication',
  'login.failure': 'authentication',
  'login.locked': 'authentication',
  'token.issued': 'authentication',
  'token.revoked': 'authentication',
  'token.exchanged': 'authentication',
  'key.transition': 'configuration',
  'device.requested': 'authentication',
  'device.code_entered': 'authentication',
  'device.approved': 'authentication',
  'device.denied': 'authentication',
};

/** The audit event as an Elastic Common Schema log line (custom fields under `keyward.audit`). */
function ecsFields(event: Buffered): Record<string, unknown> {
  return {
    event: { kind: 'event', dataset: 'keyward.audit', category: [CATEGORY[event.type]], action: event.type, outcome: event.outcome, created: event.at.toISOString() },
    ...(event.actor ? { user: { id: event.actor } } : {}),
    ...(event.ip ? { client: { ip: event.ip } } : {}),
    ...requestIdField(event.requestId),
    keyward: { audit: { subject: event.subject || undefined, details: event.details } },
  };
}

type Observer = (event: AuditEvent) => void;

interface Repeat {
  event: Buffered;
  /** Occurrences after the first (which was recorded at once). */
  repeats: number;
  windowEnds: number;
}

/**
 * Buffers audit events and writes them in batches, off the request path. Each event is also
 * an ECS JSON log line at once when its level (`logLevel`, default `debug`) is enabled. `stop()` flushes what is left, so a graceful shutdown loses nothing.
 *
 * Nothing an event holds can stop the trail: every field is made storable and bounded when it is
 * recorded, a batch the store refuses for its data is split until the bad event is isolated (and
 * then written without its details, or dropped and counted), and the buffer is capped.
 */
export class AuditWriter {
  #buffer: Buffered[] = [];
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();
  readonly #intervalMs: number;
  readonly #batchSize: number;
  readonly #maxBuffered: number;
  readonly #repeatWindowMs: number;
  readonly #logLevel: 'debug' | 'info';
  readonly #repeats: LRUCache<string, Repeat>;
  readonly #observers = new Set<Observer>();
  readonly #dropped = { overflow: 0, unstorable: 0 };
  #overflowing = false;
  /** The last batch failed (the store is away): wait for the timer instead of retrying per event, log once. */
  #failing = false;

  constructor(
    private readonly sql: Sql,
    private readonly logger: Logger,
    private readonly now: () => Date,
    options: AuditWriterOptions = {},
  ) {
    this.#intervalMs = options.intervalMs ?? 1000;
    this.#batchSize = options.batchSize ?? 200;
    this.#maxBuffered = options.maxBuffered ?? 50_000;
    this.#repeatWindowMs = options.repeatWindowMs ?? 60_000;
    this.#logLevel = options.logLevel ?? 'debug';
    this.#repeats = new LRUCache<string, Repeat>({
      max: options.maxRepeatKeys ?? 10_000,
      // Evicted early (too many distinct sources at once) or ended: its count is written either way.
      dispose: (repeat) => this.#summarize(repeat),
    });
  }

  start(): void {
    this.#timer ??= setInterval(() => void this.flush(), this.#intervalMs);
    this.#timer.unref();
  }

  /** Called with every event as it is recorded, repeats included (metrics). */
  observe(observer: Observer): () => void {
    this.#observers.add(observer);
    return () => this.#observers.delete(observer);
  }

  stats(): AuditStats {
    return { buffered: this.#buffer.length, dropped: { ...this.#dropped } };
  }

  record(event: AuditEvent): void {
    this.#enqueue(this.#bounded(event));
    for (const observer of this.#observers) observer(event);
  }

  /**
   * Records a failure an unauthenticated caller can repeat at will (client authentication):
   * the first occurrence per `key` (e.g. client id and IP) within the repeat window is recorded
   * at once, the rest become one summary event with `details.repeats` when the window ends.
   */
  recordRepeatable(event: AuditEvent, key: string): void {
    for (const observer of this.#observers) observer(event);
    const nowMs = this.now().getTime();
    const repeat = this.#repeats.get(key);
    if (repeat && repeat.windowEnds > nowMs) {
      repeat.repeats += 1;
      return;
    }
    if (repeat) this.#repeats.delete(key);
    const bounded = this.#bounded(event);
    this.#enqueue(bounded);
    this.#repeats.set(key, { event: bounded, repeats: 0, windowEnds: nowMs + this.#repeatWindowMs });
  }

  /** Writes everything buffered so far; concurrent calls queue behind each other. */
  flush(): Promise<void> {
    this.#endRepeatWindows();
    this.#flushing = this.#flushing.then(async () => {
      while (this.#buffer.length) {
        const batch = this.#buffer.splice(0, this.#batchSize);
        const failure = await this.#write(batch);
        if (failure) {
          // The store is away: keep the events for the next attempt rather than lose them.
          this.#buffer.unshift(...failure.unwritten);
          this.#cap();
          const { error } = failure;
          if (!this.#failing) this.logger.error({ err: errorFields(error) }, 'audit batch write failed; will retry');
          this.#failing = true;
          return;
        }
      }
      if (this.#failing) this.logger.info('audit writes resumed');
      this.#failing = false;
      if (this.#overflowing) {
        this.#overflowing = false;
        this.logger.warn({ dropped: this.#dropped.overflow }, 'audit buffer drained; events are written again');
      }
    });
    return this.#flushing;
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#repeats.clear();
    await this.flush();
  }

  /**
   * Writes a batch; when the store refuses it for its data, halves it until the refused event
   * is alone, which is then written without its details, or dropped and counted. Any other
   * failure (the store is away) answers the events not written yet.
   */
  async #write(batch: Buffered[]): Promise<{ error: unknown; unwritten: Buffered[] } | undefined> {
    try {
      await this.#insert(batch);
      return undefined;
    } catch (error) {
      if (!isDataError(error)) return { error, unwritten: batch };
      if (batch.length === 1) return this.#writeAlone(batch[0]!, error);
      const half = Math.ceil(batch.length / 2);
      const first = await this.#write(batch.slice(0, half));
      if (first) return { error: first.error, unwritten: [...first.unwritten, ...batch.slice(half)] };
      return this.#write(batch.slice(half));
    }
  }

  async #writeAlone(event: Buffered, error: unknown): Promise<{ error: unknown; unwritten: Buffered[] } | undefined> {
    const code = (error as { code?: unknown }).code;
    try {
      await this.#insert([{ ...event, details: { unstorable: true, error_code: code } }]);
      this.logger.error({ audit: { type: event.type }, err: { code } }, 'audit event refused by the store; written without its details');
    } catch (again) {
      if (!isDataError(again)) return { error: again, unwritten: [event] };
      this.#dropped.unstorable += 1;
      this.logger.error({ audit: { type: event.type }, err: { code } }, 'audit event refused by the store; dropped');
    }
    return undefined;
  }

  #insert(batch: Buffered[]): Promise<unknown> {
    return this.sql.query(INSERT_BATCH, [
      batch.map((e) => e.type),
      batch.map((e) => e.actor || null),
      batch.map((e) => e.subject || null),
      batch.map((e) => e.outcome),
      batch.map((e) => e.ip || null),
      batch.map((e) => JSON.stringify(e.details)),
      batch.map((e) => e.at.toISOString()),
    ]);
  }

  #bounded(event: AuditEvent): Buffered {
    return {
      type: event.type,
      actor: storableText(event.actor ?? '', MAX_ID),
      subject: storableText(event.subject ?? '', MAX_ID),
      outcome: event.outcome,
      ip: storableText(event.ip ?? '', MAX_IP),
      details: boundedValue(event.details ?? {}, 0) as Record<string, unknown>,
      at: event.at ?? this.now(),
      ...(event.requestId ? { requestId: event.requestId.slice(0, MAX_ID) } : {}),
    };
  }

  #enqueue(event: Buffered): void {
    this.#buffer.push(event);
    // Checked first: the ECS object is not even built when the line would be dropped.
    if (this.logger.isLevelEnabled(this.#logLevel)) this.logger[this.#logLevel](ecsFields(event), `audit ${event.type}`);
    this.#cap();
    if (this.#buffer.length >= this.#batchSize && !this.#failing) void this.flush();
  }

  /** Drops the oldest events beyond the cap; one error line per episode, every drop counted. */
  #cap(): void {
    const excess = this.#buffer.length - this.#maxBuffered;
    if (excess <= 0) return;
    this.#buffer.splice(0, excess);
    this.#dropped.overflow += excess;
    if (!this.#overflowing) {
      this.#overflowing = true;
      this.logger.error({ max: this.#maxBuffered }, 'audit buffer full; dropping the oldest events until the store takes them again');
    }
  }

  #endRepeatWindows(): void {
    const nowMs = this.now().getTime();
    for (const [key, repeat] of this.#repeats.entries()) {
      if (repeat.windowEnds <= nowMs) this.#repeats.delete(key);
    }
  }

  #summarize(repeat: Repeat): void {
    if (!repeat.repeats) return;
    const at = this.now();
    this.#enqueue({ ...repeat.event, at, details: { ...repeat.event.details, repeats: repeat.repeats, since: repeat.event.at.toISOString() } });
  }
}
