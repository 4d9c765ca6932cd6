import type { Adapter, AdapterPayload } from 'oidc-provider';
import type { PrismaClient } from './store.ts';
import { PrismaAdapter } from './oidc-artifacts.ts';

const MODEL = 'ReplayDetection';
/** How long a claimed id is held if the request dies before oidc-provider records the real expiry. */
const CLAIM_SECONDS = 3600;

/**
 * Storage for oidc-provider's `ReplayDetection` model (private_key_jwt assertion `jti`s, DPoP
 * proofs). oidc-provider checks uniqueness as `find(id)` then `upsert(id)`; two instances
 * receiving the same assertion at once would both find nothing and both accept it. Here
 * `find` claims the id with one atomic insert, so exactly one request sees it as new
 * (RFC 7523 §3 item 7: the jti must only be used once); `upsert` then sets the real expiry.
 */
export class ReplayDetectionAdapter implements Adapter {
  readonly #rows: PrismaAdapter;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly now: () => Date,
  ) {
    this.#rows = new PrismaAdapter(prisma, MODEL, now);
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    const now = this.now();
    const claimUntil = new Date(now.getTime() + CLAIM_SECONDS * 1000);
    // One statement on the hot path (every DPoP proof, every client assertion): insert the id,
    // or take over the row of an earlier, expired use; a row still live answers "seen".
    const claimed = await this.prisma.$executeRaw`
      INSERT INTO oidc_artifacts (model, id, payload, expires_at)
      VALUES (${MODEL}, ${id}, ${JSON.stringify({ jti: id })}::jsonb, ${claimUntil})
      ON CONFLICT (model, id) DO UPDATE SET payload = EXCLUDED.payload, expires_at = EXCLUDED.expires_at
      WHERE oidc_artifacts.expires_at IS NOT NULL AND oidc_artifacts.expires_at <= ${now}`;
    return claimed === 1 ? undefined : { jti: id };
  }

  upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    return this.#rows.upsert(id, payload, expiresIn);
  }

  destroy(id: string): Promise<void> {
    return this.#rows.destroy(id);
  }

  async consume(): Promise<void> {}
  /** Nothing of this model is ever consumed. */
  async consumeOnce(): Promise<boolean> { return true; }
  async findByUid(): Promise<undefined> { return undefined; }
  async findByUserCode(): Promise<undefined> { return undefined; }
  async revokeByGrantId(): Promise<void> {}
}
