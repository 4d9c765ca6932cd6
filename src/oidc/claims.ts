import type { Configuration, KoaContextWithOIDC } from 'oidc-provider';
import type { ClientService } from '../identity/clients/index.ts';
import type { RoleService } from '../identity/roles.ts';
import { exchangedClaimsOf } from './grants/token-exchange-claims.ts';

export interface ClaimDeps {
  clients: ClientService;
  /** Roles per API: filters the roles a token carries to the global ones and its API's. */
  roles?: Pick<RoleService, 'rolesFor'>;
  /** Role names of a user account; absent until user identities exist. */
  userRoles?: (accountId: string) => Promise<string[]>;
}

/** The OIDC scope a third-party client needs, and the user's consent to, to learn the user's roles. */
export const ROLES_SCOPE = 'roles';

/**
 * The one place that decides what `roles` a token carries: a client's own roles for client
 * credentials; for a user, the user's roles when the client is first-party or the
 * authorization this token comes from includes the `roles` scope (which a third-party client
 * only obtains through the user's consent). Undefined means no `roles` claim at all.
 */
export async function rolesFor(
  deps: ClaimDeps,
  subject: { accountId?: string | undefined; clientId?: string | undefined; scopes?: ReadonlySet<string> | undefined },
): Promise<string[] | undefined> {
  if (subject.accountId) {
    const client = subject.clientId ? await deps.clients.record(subject.clientId) : undefined;
    if (!client?.firstParty && !subject.scopes?.has(ROLES_SCOPE)) return undefined;
    return deps.userRoles ? deps.userRoles(subject.accountId) : [];
  }
  if (subject.clientId) return (await deps.clients.record(subject.clientId))?.roles ?? [];
  return [];
}

interface ScopeCarrier {
  scope?: unknown;
}

function scopeSet(value: unknown): Set<string> {
  return new Set(typeof value === 'string' ? value.split(' ').filter(Boolean) : []);
}

/**
 * The scopes of the authorization an access token is issued under. A JWT access token for an
 * API carries only the API's scopes, so `roles` is read from what the token derives from: the
 * scope the refresh request narrowed to, else the authorization code's, device code's or refresh token's
 * scope (the requested scopes the grant covers), else the token's own (userinfo tokens).
 */
function authorizedScopes(ctx: KoaContextWithOIDC | undefined, token: ScopeCarrier): Set<string> {
  const oidc = ctx?.oidc as { route?: string; params?: { scope?: unknown }; entities?: Record<string, ScopeCarrier | undefined> } | undefined;
  if (oidc?.route === 'token' && typeof oidc.params?.scope === 'string' && oidc.params.scope) return scopeSet(oidc.params.scope);
  const source = oidc?.entities?.AuthorizationCode ?? oidc?.entities?.DeviceCode ?? oidc?.entities?.RefreshToken;
  return scopeSet(source ? source.scope : token.scope);
}

export function claimsConfiguration(deps: ClaimDeps): Partial<Configuration> {
  return {
    async extraTokenClaims(ctx, token) {
      // A token minted by the token-exchange grant: its handler decided the claims.
      const exchanged = exchangedClaimsOf(token);
      if (exchanged) return exchanged;
      const accountId = 'accountId' in token ? (token.accountId as string | undefined) : undefined;
      const scopes = accountId ? authorizedScopes(ctx as KoaContextWithOIDC | undefined, token as ScopeCarrier) : undefined;
      const roles = await rolesFor(deps, { accountId, clientId: token.clientId, scopes });
      // Roles per API: an access token for API X carries the global roles and X's own, never
      // another API's; a token for no API (userinfo) only the global ones.
      const audience = (token as { resourceServer?: { audience?: string } }).resourceServer?.audience;
      // RFC 8693: a user's JWT access token names its grant, so what is exchanged from it dies
      // with the grant (grants/token-exchange.ts). An opaque token is stored with its grant already.
      const grantId = accountId && audience ? (token as { grantId?: unknown }).grantId : undefined;
      const claims = {
        ...(roles ? { roles: deps.roles ? await deps.roles.rolesFor(roles, audience) : roles } : {}),
        ...(typeof grantId === 'string' ? { grant_id: grantId } : {}),
      };
      return Object.keys(claims).length ? claims : undefined;
    },
  };
}
