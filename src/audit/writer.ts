import type { Logger } from '../log/logger.ts';
import type { PrismaClient } from '../store/store.ts';
import type { AuditEvent } from './events.ts';

export interface AuditWriterOptions {
  /** Flush at least this often. */
  intervalMs?: number;
  /** Flush as soon as this many events are waiting. */
  batchSize?: number;
}

interface Buffered {
  type: AuditEvent['type'];
  actor: string;
  subject: string;
  outcome: AuditEvent['outcome'];
  ip: string;
  details: Record<string, unknown>;
  at: Date;
}

/**
 * Buffers audit events and writes them in batches, off the request path. Each event is also
 * a JSON log line at once. `stop()` flushes what is left, so a graceful shutdown loses nothing.
 */
export class AuditWriter {
  #buffer: Buffered[] = [];
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();
  readonly #intervalMs: number;
  readonly #batchSize: number;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly logger: Logger,
    private readonly now: () => Date,
    options: AuditWriterOptions = {},
  ) {
    this.#intervalMs = options.intervalMs ?? 1000;
    this.#batchSize = options.batchSize ?? 200;
  }

  start(): void {
    this.#timer ??= setInterval(() => void this.flush(), this.#intervalMs);
    this.#timer.unref();
  }

  record(event: AuditEvent): void {
    const full: Buffered = {
      type: event.type,
      actor: event.actor ?? '',
      subject: event.subject ?? '',
      outcome: event.outcome,
      ip: event.ip ?? '',
      details: event.details ?? {},
      at: event.at ?? this.now(),
    };
    this.#buffer.push(full);
    this.logger.info({ audit: { ...full, at: full.at.toISOString() } }, `audit ${event.type}`);
    if (this.#buffer.length >= this.#batchSize) void this.flush();
  }

  /** Writes everything buffered so far; concurrent calls queue behind each other. */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(async () => {
      while (this.#buffer.length) {
        const batch = this.#buffer.splice(0, this.#batchSize);
        try {
          await this.prisma.auditEvent.createMany({
            data: batch.map((e) => ({
              type: e.type,
              actor: e.actor || null,
              subject: e.subject || null,
              outcome: e.outcome,
              ip: e.ip || null,
              details: e.details as object,
              at: e.at,
            })),
          });
        } catch (error) {
          // Keep the events for the next attempt rather than lose them.
          this.#buffer.unshift(...batch);
          this.logger.error({ err: (error as Error).message }, 'audit batch write failed; will retry');
          return;
        }
      }
    });
    return this.#flushing;
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.flush();
  }
}
