import Router from '@koa/router';

/**
 * `Cache-Control` on the JWKS, which oidc-provider serves without one. The max-age must not
 * exceed the staging lead of new signing keys: a consumer's cached copy then always expires
 * before a key it has not seen starts signing (see keys/lifecycle.ts).
 */
export function jwksCacheRoutes(maxAgeSeconds: number, path = '/jwks'): Router {
  const router = new Router();
  router.get(path, async (ctx, next) => {
    // Set on the raw response: oidc-provider writes the body itself and keeps headers already set.
    ctx.set('Cache-Control', `public, max-age=${maxAgeSeconds}`);
    await next();
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
