import type { PrismaClient } from './store.ts';
import { deleteOlderThan } from './purge.ts';

/** What an exchanged token derives from (RFC 8693): its chain of subject tokens and the user grant at its root. */
export interface ExchangeLink {
  /** jti of the exchanged token. */
  jti: string;
  /** jti of every token it derives from, the direct subject token first. */
  subjectJtis: string[];
  /** The user's grant the chain's first token came from; absent for a client's own token. */
  grantId?: string | undefined;
  expiresAt: Date;
}

/**
 * Links from exchanged JWT access tokens to what they derive from, in the store so every
 * instance sees them. A row lives as long as its token and is purged with the expired ones.
 */
export class TokenExchanges {
  constructor(private readonly prisma: PrismaClient) {}

  async record(link: ExchangeLink): Promise<void> {
    await this.prisma.tokenExchange.create({
      data: {
        jti: link.jti,
        subjectJtis: link.subjectJtis,
        grantId: link.grantId ?? null,
        expiresAt: link.expiresAt,
      },
    });
  }

  /** The link of an exchanged token; undefined for a token that was not exchanged. */
  async find(jti: string): Promise<ExchangeLink | undefined> {
    const row = await this.prisma.tokenExchange.findUnique({ where: { jti } });
    if (!row) return undefined;
    return {
      jti: row.jti,
      subjectJtis: row.subjectJtis,
      ...(row.grantId ? { grantId: row.grantId } : {}),
      expiresAt: row.expiresAt,
    };
  }

  /** Whether any of the given tokens is on the revocation list (src/store/revoked-tokens.ts). */
  async anyRevoked(jtis: readonly string[]): Promise<boolean> {
    if (!jtis.length) return false;
    return (await this.prisma.revokedToken.count({ where: { jti: { in: [...jtis] } } })) > 0;
  }

  /** Whether the grant still exists (oidc-provider deletes it when it is revoked) and has not expired. */
  async grantLive(grantId: string, now: Date): Promise<boolean> {
    const count = await this.prisma.oidcArtifact.count({
      where: { model: 'Grant', id: grantId, OR: [{ expiresAt: null }, { expiresAt: { gt: now } }] },
    });
    return count > 0;
  }
}

/** Deletes links of tokens that have expired; returns how many. */
export async function purgeTokenExchanges(prisma: PrismaClient, now: Date): Promise<number> {
  return deleteOlderThan(prisma, 'token_exchanges', now);
}
