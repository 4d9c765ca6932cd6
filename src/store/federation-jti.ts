import type { PrismaClient } from './store.ts';

const MODEL = 'FederationJti';

/**
 * The `jti`s of external tokens that authenticated a federated_jwt client, kept until the
 * token expires (RFC 7523 §3 item 7). Claimed with one atomic insert in the shared
 * oidc_artifacts table, so of two instances receiving the same token at once exactly one
 * accepts it; expired rows go with the artifacts' purge.
 */
export class FederationJtis {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly now: () => Date,
  ) {}

  /** True when `id` was not seen before (and is now held until `expiresAt`). */
  async claim(id: string, expiresAt: Date): Promise<boolean> {
    // A leftover of an earlier, expired use may be reclaimed.
    await this.prisma.oidcArtifact.deleteMany({ where: { model: MODEL, id, expiresAt: { lte: this.now() } } });
    const { count } = await this.prisma.oidcArtifact.createMany({
      data: [{ model: MODEL, id, payload: {}, expiresAt }],
      skipDuplicates: true,
    });
    return count === 1;
  }
}
