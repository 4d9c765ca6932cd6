import { pageOf, type Page, type PageRequest } from '../domain/page.ts';
import type { PrismaClient } from '../store/store.ts';

export interface AuditFilter {
  type?: string | undefined;
  actor?: string | undefined;
  /** Only events at or after this instant. */
  since?: Date | undefined;
}

/** A stored audit event as the admin API returns it. */
export interface AuditRecord {
  id: string;
  at: string;
  type: string;
  actor: string | null;
  subject: string | null;
  outcome: string;
  ip: string | null;
  details: Record<string, unknown>;
}

type Row = Awaited<ReturnType<PrismaClient['auditEvent']['findMany']>>[number];

function toRecord(row: Row): AuditRecord {
  return {
    id: row.id.toString(),
    at: row.at.toISOString(),
    type: row.type,
    actor: row.actor,
    subject: row.subject,
    outcome: row.outcome,
    ip: row.ip,
    details: (row.details ?? {}) as Record<string, unknown>,
  };
}

/** Reads the audit trail for operators (writer.ts appends to it). */
export class AuditQuery {
  constructor(private readonly prisma: PrismaClient) {}

  /** Events newest first; `after` is the id of the last event already seen. */
  async find(filter: AuditFilter, page: PageRequest): Promise<Page<AuditRecord>> {
    const rows = await this.prisma.auditEvent.findMany({
      where: {
        ...(filter.type ? { type: filter.type } : {}),
        ...(filter.actor ? { actor: filter.actor } : {}),
        ...(filter.since ? { at: { gte: filter.since } } : {}),
        ...(page.after ? { id: { lt: BigInt(page.after) } } : {}),
      },
      orderBy: { id: 'desc' },
      take: page.limit + 1,
    });
    return pageOf(rows, page.limit, (row) => row.id.toString(), toRecord);
  }
}
