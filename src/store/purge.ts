import type { PrismaClient } from './generated/client.ts';

/** The tables purged by age, and the column that dates their rows. */
const PURGEABLE = {
  audit_events: 'at',
  oidc_artifacts: 'expires_at',
  revoked_tokens: 'expires_at',
  token_exchanges: 'expires_at',
} as const;

const BATCH = 5_000;
/** One purge run stops after this many batches; the next run goes on. */
const MAX_BATCHES = 200;

/**
 * Deletes the rows of `table` dated before `before`, a bounded batch per statement: every
 * statement must finish within the statement timeout (KEYWARD_DB_STATEMENT_TIMEOUT), and a
 * table grown large while purging was off would otherwise never be purged again.
 */
export async function deleteOlderThan(prisma: PrismaClient, table: keyof typeof PURGEABLE, before: Date): Promise<number> {
  const column = PURGEABLE[table];
  let total = 0;
  for (let batch = 0; batch < MAX_BATCHES; batch++) {
    // Identifiers come from the constant above, never from input.
    const count = await prisma.$executeRawUnsafe(
      `DELETE FROM ${table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM ${table} WHERE ${column} < $1 LIMIT ${BATCH}))`, before,
    );
    total += count;
    if (count < BATCH) break;
  }
  return total;
}
