import type { KoaContextWithOIDC } from 'oidc-provider';

/**
 * `ctx.oidc` as a `provider.use` middleware sees it after `next()`: oidc-provider defines it
 * only inside a matched route (`ensureOIDC`, lib/helpers/initialize_app.js), so it is absent
 * for unknown paths although the type says otherwise.
 */
export function oidcOf(ctx: KoaContextWithOIDC): KoaContextWithOIDC['oidc'] | undefined {
  return ctx.oidc;
}
