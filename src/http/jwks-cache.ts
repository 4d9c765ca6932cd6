import Router from '@koa/router';
import type Koa from 'koa';

/**
 * `Cache-Control` on the JWKS, which oidc-provider serves without one. A next key is
 * activated by hand only once it has been published for this max-age, so a consumer's cached
 * copy then always holds it (see keys/lifecycle.ts). `onFetch` notes each fetch for the
 * readiness view; it must not do I/O (keys/consumers.ts batches the writes).
 */
export function jwksCacheRoutes(maxAgeSeconds: number, onFetch?: (ctx: Koa.Context) => void, path = '/jwks'): Router {
  const router = new Router();
  router.get(path, async (ctx, next) => {
    // Set on the raw response: oidc-provider writes the body itself and keeps headers already set.
    ctx.set('Cache-Control', `public, max-age=${maxAgeSeconds}`);
    await next();
    if (ctx.status === 200) onFetch?.(ctx);
  });
  return router;
}

/**
 * `Cache-Control` on the discovery documents (OpenID Connect Discovery 1.0 §4, RFC 8414 §3),
 * which oidc-provider serves without one. They are the same for every requester (every URL
 * in them derives from the issuer, see oidc/overrides/issuer-origin.ts), so shared caches may
 * keep them; an hour bounds how long a configuration change (e.g. a new signing algorithm)
 * takes to reach relying parties.
 */
export function discoveryCacheRoutes(maxAgeSeconds = 3600): Router {
  const router = new Router();
  for (const path of ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server']) {
    router.get(path, async (ctx, next) => {
      ctx.set('Cache-Control', `public, max-age=${maxAgeSeconds}`);
      await next();
    });
  }
  return router;
}
