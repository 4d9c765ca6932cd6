import type Router from '@koa/router';
import type Koa from 'koa';

/** oidc-provider's own endpoints, by path prefix, for metric labels. */
const PROVIDER_ROUTES = [
  '/.well-known/openid-configuration', '/.well-known/oauth-authorization-server', '/jwks', '/token/introspection',
  '/token/revocation', '/token', '/auth', '/me', '/session/end', '/request', '/reg', '/device/auth', '/device',
];
const PROVIDER_PREFIXES = PROVIDER_ROUTES.map((route) => `${route}/`);

/** A low-cardinality route name for a request: the matched router template, or a known prefix. */
export function routeOf(ctx: Koa.Context): string {
  const matched = (ctx as Koa.Context & { _matchedRoute?: string | RegExp })._matchedRoute;
  if (typeof matched === 'string') return matched;
  const path = ctx.path;
  for (let i = 0; i < PROVIDER_ROUTES.length; i++) {
    if (path === PROVIDER_ROUTES[i] || path.startsWith(PROVIDER_PREFIXES[i]!)) return PROVIDER_ROUTES[i]!;
  }
  return 'other';
}

/** oidc-provider's busiest endpoints (tokens for services): candidates for the direct path. */
const DIRECT_CANDIDATES = ['/token', '/token/introspection', '/token/revocation'];

/**
 * The provider paths no Keyward router has any layer for (whatever the method): a request for
 * one would try every router in vain, so it is handed to oidc-provider at once. Computed from
 * the routers themselves, so a router that later claims such a path takes it back.
 */
export function directProviderPaths(routers: readonly Router[]): ReadonlySet<string> {
  return new Set(DIRECT_CANDIDATES.filter((path) => routers.every((router) => router.match(path, 'POST').path.length === 0
    && router.match(path, 'GET').path.length === 0)));
}
