import type { Adapter, AdapterPayload } from 'oidc-provider';
import type { PrismaClient } from './store.ts';
import { PrismaAdapter } from './oidc-artifacts.ts';

const MODEL = 'ReplayDetection';
/**
 * How long `find` holds a claimed id. oidc-provider then asks for the id's real lifetime in
 * `upsert`: for a DPoP proof (its 300-second window) and any assertion expiring sooner than
 * the claim, the claim already holds long enough and no second write is made; only a longer
 * lifetime extends it. Holding an id past its real expiry refuses nothing valid: the proof or
 * assertion is itself expired by then.
 */
export const CLAIM_SECONDS = 600;
/** Margin between the claim's `now` and oidc-provider's (both read the clock, a request apart). */
const CLAIM_MARGIN_SECONDS = 30;

/**
 * Storage for oidc-provider's `ReplayDetection` model (private_key_jwt assertion `jti`s, DPoP
 * proofs). oidc-provider checks uniqueness as `find(id)` then `upsert(id)`; two instances
 * receiving the same assertion at once would both find nothing and both accept it. Here
 * `find` claims the id with one atomic insert, so exactly one request sees it as new
 * (RFC 7523 §3 item 7: the jti must only be used once); `upsert` extends the claim only for
 * ids that live longer than it, so a DPoP proof costs one statement.
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

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    if (expiresIn <= CLAIM_SECONDS - CLAIM_MARGIN_SECONDS) return;
    await this.#rows.upsert(id, payload, expiresIn);
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
