import type { KoaContextWithOIDC } from 'oidc-provider';

const CLIENT_AUTH_ROUTES = new Set(['token', 'introspection', 'revocation']);

/**
 * RFC 9110 §15.5.2: every 401 carries a `WWW-Authenticate` challenge. oidc-provider adds its
 * `Basic` challenge only when the client used the Authorization header (`setWWWAuthenticateHeader`,
 * lib/shared/client_auth.js), so a failed client_secret_post or private_key_jwt gets one here.
 */
export function addClientChallenge(ctx: KoaContextWithOIDC, oidc: KoaContextWithOIDC['oidc'], issuer: string): void {
  if (ctx.status !== 401 || !CLIENT_AUTH_ROUTES.has(oidc.route) || ctx.response.get('WWW-Authenticate')) return;
  const error = (ctx.body as { error?: string } | undefined)?.error ?? 'invalid_client';
  ctx.set('WWW-Authenticate', `Basic realm="${issuer}", error="${error}"`);
}
