import type { KoaContextWithOIDC } from 'oidc-provider';

/** The scopes a token request names, or undefined when it has no `scope` parameter. */
export function requestedScopes(ctx: KoaContextWithOIDC): string[] | undefined {
  const { scope } = ctx.oidc.params as { scope?: unknown };
  return typeof scope === 'string' && scope ? scope.split(' ').filter(Boolean) : undefined;
}

/**
 * Makes oidc-provider see `granted` as the requested scope of a client-credentials request.
 * Its handler (lib/actions/grants/client_credentials.js) calls `getResourceServerInfo`
 * (via resolveRequestedResources) before `validateClientScope` (lib/helpers/grant_authorization.js),
 * which reads `ctx.oidc.params.scope` and refuses any OIDC scope outside the client's `scope`
 * metadata; the token's scope is then requested ∩ the resource server's scope. Narrowing the
 * parameter from inside `getResourceServerInfo`, the only callback that runs in between, is
 * how Keyward's rule drops (not refuses) what it does not grant: oidc-provider has no scope
 * hook for client credentials, and ctx.oidc does not exist yet in a `provider.use` middleware
 * before the route runs.
 */
export function narrowRequestedScope(ctx: KoaContextWithOIDC, granted: readonly string[]): void {
  (ctx.oidc.params as { scope?: unknown }).scope = granted.join(' ');
}
