import type { AdapterPayload } from 'oidc-provider';
import type { PrismaClient } from './store.ts';

/** Grants as oidc-provider stored them, looked up by person and client (columns filled by PrismaAdapter). */
export class OidcGrants {
  constructor(private readonly prisma: PrismaClient) {}

  /** The live grants of `accountId` to `clientId`, longest-lived first, at most `limit`. */
  async liveGrants(accountId: string, clientId: string, now: Date, limit = 20): Promise<AdapterPayload[]> {
    const rows = await this.prisma.oidcArtifact.findMany({
      where: { model: 'Grant', accountId, clientId, OR: [{ expiresAt: null }, { expiresAt: { gt: now } }] },
      select: { payload: true },
      take: limit,
      orderBy: { expiresAt: 'desc' },
    });
    return rows.map((row) => row.payload as AdapterPayload);
  }
}
