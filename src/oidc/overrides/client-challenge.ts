import type { KoaContextWithOIDC, Provider } from 'oidc-provider';
import { oidcOf } from './context.ts';

const CLIENT_AUTH_ROUTES = new Set(['token', 'introspection', 'revocation']);

/**
 * RFC 9110 §15.5.2: every 401 carries a `WWW-Authenticate` challenge. oidc-provider adds its
 * `Basic` challenge only when the client used the Authorization header (`setWWWAuthenticateHeader`,
 * lib/shared/client_auth.js), so a failed client_secret_post or private_key_jwt gets one here.
 */
export function installClientChallenge(provider: Provider): void {
  provider.use(async (ctx, next) => {
    await next();
    const route = oidcOf(ctx as KoaContextWithOIDC)?.route;
    if (!route || !CLIENT_AUTH_ROUTES.has(route)) return;
    if (ctx.status === 401 && !ctx.response.get('WWW-Authenticate')) {
      const error = (ctx.body as { error?: string } | undefined)?.error ?? 'invalid_client';
      ctx.set('WWW-Authenticate', `Basic realm="${provider.issuer}", error="${error}"`);
    }
  });
}
