import { ID_TOKEN_TTL_SECONDS } from '../config/token-lifetimes.ts';
import type { PrismaClient } from '../store/store.ts';

/**
 * The longest lifetime, in seconds, of any token a signing key may have signed: an ID token or
 * a JWT access token for the resource server with the longest TTL. A replaced key must stay
 * published at least this long. Read from the store each time, so a new resource server with a
 * longer TTL lengthens retirement from then on.
 */
export async function longestTokenTtlSeconds(prisma: PrismaClient): Promise<number> {
  const { _max } = await prisma.resourceServer.aggregate({ _max: { accessTokenTtl: true } });
  return Math.max(ID_TOKEN_TTL_SECONDS, _max.accessTokenTtl ?? 0);
}
