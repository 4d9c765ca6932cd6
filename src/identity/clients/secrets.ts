import type { PrismaClient } from '../../store/store.ts';
import type { ChangeFeed } from '../../store/changes.ts';
import { Invalid, NotFound } from '../../domain/errors.ts';
import type { SecretHasher } from '../secrets.ts';
import { isConfidential, parseStoredMetadata, type AuthMethod } from './metadata.ts';
import type { ClientRecord } from './rows.ts';

/** A client holds at most this many live secrets: the newest and the one it replaces. */
const MAX_SECRETS = 2;

/** Client secrets: constant-time verification, rotation with an overlap, replacement. */
export class ClientSecrets {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly hasher: SecretHasher,
    private readonly changes: ChangeFeed,
    private readonly now: () => Date,
  ) {}

  /**
   * The first secret of a new client: the given one (only the bootstrap admin brings its own) or a
   * generated one; none for a client that does not authenticate with a secret.
   */
  initial(method: AuthMethod, given: string | undefined): { secret: string; row: { hash: string; createdAt: Date } } | undefined {
    if (!isConfidential(method)) return undefined;
    const secret = given ?? this.hasher.generate();
    return { secret, row: { hash: this.hasher.hash(secret), createdAt: this.now() } };
  }

  /** Constant-time check of a presented secret against every unexpired secret of the client. */
  verify(record: ClientRecord | undefined, secret: string): boolean {
    if (!record || record.disabled) return false;
    const now = this.now().getTime();
    let ok = false;
    for (const stored of record.secrets) {
      const unexpired = stored.expiresAt === null || stored.expiresAt.getTime() > now;
      // Evaluate every secret so the time taken does not reveal which one matched.
      if (this.hasher.matches(secret, stored.hash) && unexpired) ok = true;
    }
    return ok;
  }

  /**
   * Issues a new secret. Existing secrets stay valid until `previousExpiresInSeconds` from now
   * (0 revokes them at once); secrets already expired are deleted. One transaction, trim
   * included: no reader sees the new secret beside more than one previous one, and a failure
   * leaves the secrets as they were.
   */
  async rotate(clientId: string, previousExpiresInSeconds: number): Promise<{ client_secret: string; previous_secret_expires_at: string }> {
    const now = this.now();
    const previousExpiresAt = new Date(now.getTime() + previousExpiresInSeconds * 1000);
    const secret = this.hasher.generate();
    const hash = this.hasher.hash(secret);
    await this.prisma.$transaction(async (tx) => {
      const client = await tx.client.findUnique({ where: { clientId }, select: { metadata: true } });
      if (!client) throw new NotFound(`client ${clientId} does not exist`);
      if (!isConfidential(parseStoredMetadata(client.metadata).token_endpoint_auth_method)) {
        throw new Invalid(`client ${clientId} does not authenticate with a client secret`);
      }
      await tx.clientSecret.deleteMany({ where: { clientId, expiresAt: { lte: now } } });
      await tx.clientSecret.updateMany({
        where: { clientId, OR: [{ expiresAt: null }, { expiresAt: { gt: previousExpiresAt } }] },
        data: { expiresAt: previousExpiresAt },
      });
      await tx.clientSecret.create({ data: { clientId, hash, createdAt: now } });
      const live = await tx.clientSecret.findMany({ where: { clientId }, orderBy: { createdAt: 'desc' }, select: { id: true } });
      const extra = live.slice(MAX_SECRETS).map((s) => s.id);
      if (extra.length) await tx.clientSecret.deleteMany({ where: { id: { in: extra } } });
    });
    await this.changes.publish({ kind: 'client', id: clientId });
    return { client_secret: secret, previous_secret_expires_at: previousExpiresAt.toISOString() };
  }

  /** Replaces the stored secrets with the given one (bootstrap from the environment). */
  async set(clientId: string, secret: string): Promise<void> {
    await this.prisma.$transaction([
      this.prisma.clientSecret.deleteMany({ where: { clientId } }),
      this.prisma.clientSecret.create({ data: { clientId, hash: this.hasher.hash(secret), createdAt: this.now() } }),
    ]);
    await this.changes.publish({ kind: 'client', id: clientId });
  }
}
