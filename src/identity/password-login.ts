import { errorFields, type Logger } from '../log/logger.ts';
import { hashPassword, needsRehash, verifyAgainstDummy, verifyPassword } from './passwords.ts';
import { normalizeUsername, type Credentials, type UserService } from './users.ts';

/** Who a login names: the user when the username exists, and the key its attempts are counted under. */
export interface LoginCandidate {
  /** The user id, or `name:<normalized username>` for an unknown one (throttled alike, so no difference shows). */
  account: string;
  user: Credentials | undefined;
}

export type Authentication =
  | { ok: true; userId: string; username: string; rehashed: boolean }
  | { ok: false; reason: 'invalid_credentials' }
  | { ok: false; reason: 'disabled'; userId: string };

/**
 * Password login against the user accounts. An unknown username costs one argon2 verification
 * (against a dummy hash) exactly like a wrong password, so neither the answer nor its timing
 * tells which accounts exist. A disabled account is only reported as such to someone who knew
 * its password.
 */
export class PasswordAuthenticator {
  constructor(
    private readonly users: Pick<UserService, 'credentials' | 'replacePasswordHash'>,
    private readonly logger: Logger,
  ) {}

  async authenticate(username: string, password: string): Promise<Authentication> {
    return this.verify(await this.lookup(username), password);
  }

  /** The account a username names (case-insensitively), before any password is checked. */
  async lookup(username: string): Promise<LoginCandidate> {
    const user = await this.users.credentials(username);
    return { account: user?.id ?? `name:${normalizeUsername(username)}`, user };
  }

  async verify(candidate: LoginCandidate, password: string): Promise<Authentication> {
    const { user } = candidate;
    if (!user) {
      await verifyAgainstDummy(password);
      return { ok: false, reason: 'invalid_credentials' };
    }
    if (!(await verifyPassword(user.passwordHash, password))) return { ok: false, reason: 'invalid_credentials' };
    if (user.disabled) return { ok: false, reason: 'disabled', userId: user.id };
    const rehashed = needsRehash(user.passwordHash) ? await this.#rehash(user.id, user.passwordHash, password) : false;
    return { ok: true, userId: user.id, username: user.username, rehashed };
  }

  /** Upgrades a hash made with weaker parameters (only while it is still the one verified). */
  async #rehash(userId: string, previous: string, password: string): Promise<boolean> {
    try {
      return await this.users.replacePasswordHash(userId, previous, await hashPassword(password));
    } catch (error) {
      // The login itself succeeded; the upgrade is retried on the next one.
      this.logger.warn({ err: errorFields(error), userId }, 'password re-hash failed');
      return false;
    }
  }
}
