import { hashPassword, needsRehash, verifyAgainstDummy, verifyPassword } from '../identity/passwords.ts';
import type { Logger } from '../log/logger.ts';
import type { PrismaClient } from '../store/store.ts';

export type Authentication =
  | { ok: true; userId: string; username: string; rehashed: boolean }
  | { ok: false; reason: 'invalid_credentials' }
  | { ok: false; reason: 'disabled'; userId: string };

/**
 * Password login against the user table. An unknown username costs one argon2 verification
 * (against a dummy hash) exactly like a wrong password, so neither the answer nor its timing
 * tells which accounts exist. A disabled account is only reported as such to someone who knew
 * its password.
 */
export class PasswordAuthenticator {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly logger: Logger,
  ) {}

  async authenticate(username: string, password: string): Promise<Authentication> {
    const user = await this.prisma.user.findUnique({
      where: { username },
      select: { id: true, username: true, passwordHash: true, disabled: true },
    });
    if (!user) {
      await verifyAgainstDummy(password);
      return { ok: false, reason: 'invalid_credentials' };
    }
    if (!(await verifyPassword(user.passwordHash, password))) return { ok: false, reason: 'invalid_credentials' };
    if (user.disabled) return { ok: false, reason: 'disabled', userId: user.id };
    const rehashed = needsRehash(user.passwordHash) ? await this.#rehash(user.id, user.passwordHash, password) : false;
    return { ok: true, userId: user.id, username: user.username, rehashed };
  }

  /**
   * Upgrades a hash made with weaker parameters; only if the hash is still the one we
   * verified, so a concurrent password change by an admin is never overwritten.
   */
  async #rehash(userId: string, previous: string, password: string): Promise<boolean> {
    try {
      const { count } = await this.prisma.user.updateMany({
        where: { id: userId, passwordHash: previous },
        data: { passwordHash: await hashPassword(password) },
      });
      return count === 1;
    } catch (error) {
      // The login itself succeeded; the upgrade is retried on the next one.
      this.logger.warn({ err: (error as Error).message, userId }, 'password re-hash failed');
      return false;
    }
  }
}
