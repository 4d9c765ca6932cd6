import type { PrismaClient } from './store.ts';
import { deleteOlderThan } from './purge.ts';
import type { Sql } from './sql.ts';

/**
 * Revoked JWT access tokens by `jti`, in the store so every instance sees them. A row is kept
 * until the token would have expired anyway, then purged: an expired JWT fails verification on
 * its own, so the list stays as small as the set of live revoked tokens.
 */
export class RevokedTokens {
  constructor(private readonly prisma: PrismaClient, private readonly sql: Sql) {}

  /**
   * Every verification asks this (introspection, the admin API): one indexed lookup in plain
   * SQL, without Prisma's query compiler and result mapping in between.
   */
  async isRevoked(jti: string): Promise<boolean> {
    return (await this.sql.query('SELECT 1 FROM revoked_tokens WHERE jti = $1', [jti])).length > 0;
  }

  /** Idempotent: revoking a revoked token again is not an error (RFC 7009 §2.2). */
  async revoke(jti: string, expiresAt: Date): Promise<void> {
    await this.prisma.revokedToken.upsert({ where: { jti }, create: { jti, expiresAt }, update: {} });
  }
}

/** Deletes revocation entries of tokens that have expired; returns how many. */
export async function purgeRevokedTokens(prisma: PrismaClient, now: Date): Promise<number> {
  return deleteOlderThan(prisma, 'revoked_tokens', now);
}
