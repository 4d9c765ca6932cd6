import type { KoaContextWithOIDC, Provider } from 'oidc-provider';
import type { AuditEvent } from '../../audit/events.ts';
import type { ClientService } from '../../identity/clients/index.ts';
import { audiencesOf, type AccessTokenClaims, type AccessTokenVerifier } from './access-token.ts';
import type { RevocationList } from './revocation-list.ts';

export interface JwtEndpointDeps {
  verifier: AccessTokenVerifier;
  revocations: RevocationList;
  clients: ClientService;
  audit?: { record(event: AuditEvent): void };
}

/**
 * RFC 7662 introspection and RFC 7009 revocation for Keyward's JWT access tokens.
 *
 * oidc-provider stores no JWT access token, so its endpoints answer `unsupported_token_type`
 * for them. This layer lets oidc-provider do everything it does well (body parsing, client
 * authentication with every method, duplicate-parameter checks) and only when it has
 * authenticated the client and then refused the token for being a JWT does it answer instead.
 * Opaque tokens (refresh tokens, ...) never reach this code.
 */
export function installJwtTokenEndpoints(provider: Provider, deps: JwtEndpointDeps): void {
  provider.use(async (ctx, next) => {
    await next();
    const oidc = (ctx as KoaContextWithOIDC).oidc as KoaContextWithOIDC['oidc'] | undefined;
    if (!oidc || (oidc.route !== 'introspection' && oidc.route !== 'revocation')) return;
    const refusedAsJwt = ctx.status === 400 && (ctx.body as { error?: string } | undefined)?.error === 'unsupported_token_type';
    const token = oidc.params?.token;
    if (!refusedAsJwt || !oidc.client || typeof token !== 'string') return;

    const requester = oidc.client.clientId;
    const claims = await deps.verifier.verify(token);
    const visible = claims !== undefined && (await maySee(deps.clients, requester, claims));
    if (oidc.route === 'introspection') {
      ctx.status = 200;
      ctx.body = visible && !(await deps.revocations.isRevoked(claims.jti)) ? introspectionOf(claims) : { active: false };
      return;
    }
    // RFC 7009 §2.2: 200 whether or not there was anything to revoke, so the answer reveals
    // nothing about a token the client may not see.
    if (visible) {
      await deps.revocations.revoke(claims.jti, new Date(claims.exp * 1000));
      deps.audit?.record({
        type: 'token.revoked',
        actor: requester,
        subject: typeof claims.sub === 'string' ? claims.sub : undefined,
        outcome: 'success',
        ip: ctx.ip,
        details: { jti: claims.jti, client_id: claims.client_id, aud: claims.aud },
      });
    }
    ctx.status = 200;
    ctx.body = '';
  });
}

/**
 * Who may introspect or revoke a token: the client it was issued to, and an API's own client
 * (`resource_server`) for tokens addressed to that API. Everyone else learns nothing.
 */
async function maySee(clients: ClientService, requester: string, claims: AccessTokenClaims): Promise<boolean> {
  if (claims.client_id === requester) return true;
  const api = (await clients.record(requester))?.resourceServer;
  return !!api && audiencesOf(claims).includes(api);
}

/** RFC 7662 §2.2 response members for an active token, plus Keyward's `roles`. */
function introspectionOf(claims: AccessTokenClaims): Record<string, unknown> {
  const { iss, sub, aud, exp, iat, nbf, jti, client_id: clientId, scope, roles } = claims;
  return {
    active: true,
    token_type: 'Bearer',
    iss, sub, aud, exp, iat, nbf, jti,
    client_id: clientId,
    scope,
    roles,
  };
}
