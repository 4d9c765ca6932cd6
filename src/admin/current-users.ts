import type { UserService } from '../identity/users.ts';
import type { ChangeFeed } from '../store/changes.ts';

/** A user as the admin API sees them now: undefined when deleted or disabled. */
export interface CurrentUser {
  roles: string[];
}

/**
 * The current state of the users behind admin tokens, so a token stops working the moment its
 * user is disabled, deleted or loses the admin role (issue 10, F9) without a query per request.
 * Each entry lives until the change feed names its user, any user, or any role.
 */
export class CurrentUsers {
  readonly #cache = new Map<string, Promise<CurrentUser | undefined>>();

  constructor(
    private readonly users: Pick<UserService, 'account' | 'rolesOf'>,
    changes: ChangeFeed,
  ) {
    changes.subscribe((change) => {
      if (change.kind === 'user' && change.id) this.#cache.delete(change.id);
      else if (change.kind === 'user' || change.kind === 'role') this.#cache.clear();
    });
  }

  get(userId: string): Promise<CurrentUser | undefined> {
    let pending = this.#cache.get(userId);
    if (!pending) {
      pending = this.#load(userId);
      this.#cache.set(userId, pending);
      pending.catch(() => { if (this.#cache.get(userId) === pending) this.#cache.delete(userId); });
    }
    return pending;
  }

  async #load(userId: string): Promise<CurrentUser | undefined> {
    if (!(await this.users.account(userId))) return undefined;
    return { roles: await this.users.rolesOf(userId) };
  }
}
