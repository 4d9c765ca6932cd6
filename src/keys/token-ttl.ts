import { policyConfiguration } from '../oidc/policy.ts';
import type { PrismaClient } from '../store/store.ts';

/**
 * The longest lifetime, in seconds, of any token a signing key may have signed: an ID token or
 * a JWT access token for the resource server with the longest TTL. A replaced key must stay
 * published at least this long. Read from the store each time, so a new resource server with a
 * longer TTL lengthens retirement from then on.
 */
export async function longestTokenTtlSeconds(prisma: PrismaClient): Promise<number> {
  const idToken = policyConfiguration().ttl?.IdToken;
  const { _max } = await prisma.resourceServer.aggregate({ _max: { accessTokenTtl: true } });
  return Math.max(typeof idToken === 'number' ? idToken : 3600, _max.accessTokenTtl ?? 0);
}
