import type { Account, Configuration } from 'oidc-provider';
import type { AccountRecord } from '../identity/users.ts';

/**
 * Which claims each scope releases (OIDC Core §5.4, plus Keyward's `roles`). oidc-provider
 * filters the account's claims by the granted scopes for the ID token and userinfo.
 */
export const SCOPE_CLAIMS = {
  openid: ['sub'],
  email: ['email', 'email_verified'],
  profile: ['name', 'preferred_username'],
  roles: ['roles'],
} as const;

/** What findAccount needs of identity/users.ts. */
export interface AccountSource {
  /** Undefined for an unknown, malformed or disabled id. */
  account(id: string): Promise<AccountRecord | undefined>;
  rolesOf(id: string): Promise<string[]>;
}

/**
 * The user side of oidc-provider: `findAccount` (sub = user id) and the scope → claims map.
 * A disabled or deleted user is not found, which makes oidc-provider refuse their refresh
 * tokens, userinfo and existing sessions.
 */
export function accountConfiguration(users: AccountSource): Partial<Configuration> {
  return {
    claims: Object.fromEntries(Object.entries(SCOPE_CLAIMS).map(([scope, claims]) => [scope, [...claims]])),
    // oidc-provider's default (true) leaves scope claims out of the ID token whenever an access
    // token for userinfo is issued alongside it. Keyward's contract is that the ID token itself
    // carries `roles`, `email` and `name` when their scopes are granted, so RPs need no userinfo call.
    conformIdTokenClaims: false,
    async findAccount(_ctx, sub): Promise<Account | undefined> {
      const user = await users.account(sub);
      if (!user) return undefined;
      return {
        accountId: user.id,
        async claims() {
          return {
            sub: user.id,
            preferred_username: user.username,
            ...(user.name ? { name: user.name } : {}),
            ...(user.email ? { email: user.email, email_verified: user.emailVerified } : {}),
            roles: await users.rolesOf(user.id),
          };
        },
      };
    },
  };
}
