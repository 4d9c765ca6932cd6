import type Koa from 'koa';

/** oidc-provider's own endpoints, by path prefix, for metric labels. */
const PROVIDER_ROUTES = [
  '/.well-known/openid-configuration', '/.well-known/oauth-authorization-server', '/jwks', '/token/introspection',
  '/token/revocation', '/token', '/auth', '/me', '/session/end', '/request', '/reg', '/device/auth', '/device',
];

/** A low-cardinality route name for a request: the matched router template, or a known prefix. */
export function routeOf(ctx: Koa.Context): string {
  const matched = (ctx as Koa.Context & { _matchedRoute?: string | RegExp })._matchedRoute;
  if (typeof matched === 'string') return matched;
  const path = ctx.path;
  for (const route of PROVIDER_ROUTES) if (path === route || path.startsWith(`${route}/`)) return route;
  return 'other';
}
