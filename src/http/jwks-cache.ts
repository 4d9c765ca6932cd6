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
