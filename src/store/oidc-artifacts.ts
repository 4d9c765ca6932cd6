import type { Adapter, AdapterPayload } from 'oidc-provider';
import type { PrismaClient } from './store.ts';
import { deleteOlderThan } from './purge.ts';

/**
 * oidc-provider's storage contract on Prisma: every model (Session, Grant, AuthorizationCode,
 * RefreshToken, Interaction, ...) is a row of `oidc_artifacts` keyed by (model, id). Expired
 * rows are invisible on read and deleted in the background by `purgeExpiredArtifacts`. The
 * payload's accountId and clientId are copied into indexed columns for oidc-grants.ts.
 */
/**
 * Models whose expired rows must stay readable for a while: oidc-provider checks their `exp`
 * itself and answers an expired device code with `expired_token` (RFC 8628 §3.5) at the token
 * endpoint and "code expired" on the verification page, which it can only do if it still
 * finds them. Seconds past expiry until the row is invisible and purged.
 */
const KEPT_AFTER_EXPIRY: Record<string, number> = { DeviceCode: 3600 };

export class PrismaAdapter implements Adapter {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly model: string,
    private readonly now: () => Date,
  ) {}

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    const expiresAt = expiresIn ? new Date(this.now().getTime() + (expiresIn + (KEPT_AFTER_EXPIRY[this.model] ?? 0)) * 1000) : null;
    const data = {
      payload: payload as object,
      grantId: payload.grantId ?? null,
      userCode: payload.userCode ?? null,
      uid: payload.uid ?? null,
      accountId: payload.accountId ?? null,
      clientId: payload.clientId ?? null,
      expiresAt,
      consumedAt: payload.consumed ? new Date(Number(payload.consumed) * 1000) : null,
    };
    await this.prisma.oidcArtifact.upsert({
      where: { model_id: { model: this.model, id } },
      create: { model: this.model, id, ...data },
      update: data,
    });
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    return this.live(await this.prisma.oidcArtifact.findUnique({ where: { model_id: { model: this.model, id } } }));
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    return this.live(await this.prisma.oidcArtifact.findFirst({ where: { model: this.model, userCode } }));
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    return this.live(await this.prisma.oidcArtifact.findFirst({ where: { model: this.model, uid } }));
  }

  async consume(id: string): Promise<void> {
    await this.consumeOnce(id);
  }

  /**
   * Marks the artifact consumed unless it already is, in one conditional write
   * (`UPDATE … WHERE consumed_at IS NULL`): of any number of concurrent calls exactly one gets
   * true. False when it was already consumed or is gone (src/oidc/single-use.ts fails the request).
   */
  async consumeOnce(id: string): Promise<boolean> {
    const consumedAt = this.now();
    const row = await this.prisma.oidcArtifact.findUnique({ where: { model_id: { model: this.model, id } } });
    if (!row || row.consumedAt) return false;
    const payload = { ...(row.payload as object), consumed: Math.floor(consumedAt.getTime() / 1000) };
    const { count } = await this.prisma.oidcArtifact.updateMany({
      where: { model: this.model, id, consumedAt: null },
      data: { consumedAt, payload },
    });
    return count === 1;
  }

  async destroy(id: string): Promise<void> {
    await this.prisma.oidcArtifact.deleteMany({ where: { model: this.model, id } });
  }

  /** Removes every artifact of the grant, whatever its model (codes, tokens, the grant itself). */
  async revokeByGrantId(grantId: string): Promise<void> {
    await this.prisma.oidcArtifact.deleteMany({ where: { grantId } });
  }

  private live(row: { payload: unknown; expiresAt: Date | null; consumedAt: Date | null } | null): AdapterPayload | undefined {
    if (!row) return undefined;
    if (row.expiresAt && row.expiresAt.getTime() <= this.now().getTime()) return undefined;
    const payload = row.payload as AdapterPayload;
    if (row.consumedAt && payload.consumed === undefined) payload.consumed = Math.floor(row.consumedAt.getTime() / 1000);
    return payload;
  }
}

/** Deletes expired artifacts; returns how many. */
export async function purgeExpiredArtifacts(prisma: PrismaClient, now: Date): Promise<number> {
  return deleteOlderThan(prisma, 'oidc_artifacts', now);
}
