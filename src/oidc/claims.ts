import type { Configuration } from 'oidc-provider';
import type { ClientService } from '../identity/clients/index.ts';

export interface ClaimDeps {
  clients: ClientService;
  /** Role names of a user account; absent until user identities exist. */
  userRoles?: (accountId: string) => Promise<string[]>;
}

/** The one place that decides what `roles` a token carries. */
export async function rolesFor(deps: ClaimDeps, subject: { accountId?: string | undefined; clientId?: string | undefined }): Promise<string[]> {
  if (subject.accountId) return deps.userRoles ? deps.userRoles(subject.accountId) : [];
  if (subject.clientId) return (await deps.clients.record(subject.clientId))?.roles ?? [];
  return [];
}

export function claimsConfiguration(deps: ClaimDeps): Partial<Configuration> {
  return {
    async extraTokenClaims(_ctx, token) {
      const accountId = 'accountId' in token ? (token.accountId as string | undefined) : undefined;
      return { roles: await rolesFor(deps, { accountId, clientId: token.clientId }) };
    },
  };
}
