import { errorFields, type Logger } from '../log/logger.ts';
import { deleteOlderThan } from '../store/purge.ts';
import type { PrismaClient } from '../store/store.ts';

/** Deletes audit events older than `retentionMs`; returns how many went. */
export async function purgeAuditEvents(prisma: PrismaClient, now: Date, retentionMs: number): Promise<number> {
  return deleteOlderThan(prisma, 'audit_events', new Date(now.getTime() - retentionMs));
}

export interface AuditRetentionOptions {
  prisma: PrismaClient;
  logger: Logger;
  now: () => Date;
  retentionMs: number;
  /** How often to purge; every instance may purge, the delete is idempotent. */
  intervalMs?: number;
}

/**
 * Enforces KEYWARD_AUDIT_RETENTION: purges once at start and then periodically.
 * Returns the function that stops it and waits for a purge in progress (the store closes next).
 */
export function startAuditRetention(options: AuditRetentionOptions): () => Promise<void> {
  let running: Promise<void> = Promise.resolve();
  const run = () => {
    running = purgeAuditEvents(options.prisma, options.now(), options.retentionMs)
      .then((count) => { if (count) options.logger.info({ purged: count }, 'audit events past retention purged'); })
      .catch((error: unknown) => options.logger.warn({ err: errorFields(error) }, 'audit purge failed'));
  };
  const timer = setInterval(run, options.intervalMs ?? 60 * 60_000);
  timer.unref();
  run();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
