import type { KoaContextWithOIDC } from 'oidc-provider';
import { DEVICE_CODE_GRANT } from '../../identity/clients/metadata.ts';
import { oidcOf } from './context.ts';

/** The grant type a request on `route` uses: its parameter at the token endpoint, the device grant at device authorization. */
function grantTypeOf(oidc: KoaContextWithOIDC['oidc'] | undefined): unknown {
  if (oidc?.route === 'token') return oidc.params?.grant_type;
  return oidc?.route === 'device_authorization' ? DEVICE_CODE_GRANT : undefined;
}

/**
 * True when oidc-provider refused an authenticated client for using a grant type it is not
 * registered for. oidc-provider's `allowedGrantTypeCheck` (lib/actions/token.js) and
 * `checkClientGrantType` (lib/actions/authorization/client.js, on device_authorization) throw
 * `invalid_request` exactly when `client.grantTypeAllowed` is false, after client
 * authentication (and at the token endpoint after the grant type was found supported).
 */
function grantTypeRefusal(ctx: KoaContextWithOIDC, error: string | undefined): boolean {
  const oidc = oidcOf(ctx);
  const grantType = grantTypeOf(oidc);
  return error === 'invalid_request'
    && !!oidc?.client
    && typeof grantType === 'string'
    && !oidc.client.grantTypeAllowed(grantType);
}

/**
 * The OAuth error code the client is answered for a token-endpoint failure whose error
 * oidc-provider reported as `error`. The one place that decides the RFC 6749 §5.2
 * `unauthorized_client` rewrite: the rewrite below and token auditing both read it (the
 * audit's `grant.error` event fires before the rewrite has happened).
 */
export function tokenErrorAnswered(ctx: KoaContextWithOIDC, error: string | undefined): string | undefined {
  return grantTypeRefusal(ctx, error) ? 'unauthorized_client' : error;
}

/**
 * RFC 6749 §5.2 (and RFC 8628 §3.2, which uses its error codes): a client using a grant type it is not registered for gets
 * `unauthorized_client`; oidc-provider answers `invalid_request` and offers no hook or
 * error override for that check, so the rendered body is replaced afterwards.
 */
export function answerUnauthorizedClient(ctx: KoaContextWithOIDC, oidc: KoaContextWithOIDC['oidc']): void {
  if (ctx.status !== 400) return;
  const body = ctx.body as { error?: string } | undefined;
  if (tokenErrorAnswered(ctx, body?.error) !== 'unauthorized_client') return;
  ctx.body = {
    error: 'unauthorized_client',
    error_description: `this client may not use the ${String(grantTypeOf(oidc))} grant type`,
  };
}
