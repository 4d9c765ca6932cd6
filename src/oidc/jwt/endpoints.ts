import type { AuditEvent } from '../../audit/events.ts';
import type { ClientService } from '../../identity/clients/index.ts';
import { audiencesOf, type AccessTokenClaims, type AccessTokenVerifier } from './access-token.ts';
import type { RevocationList } from './revocation-list.ts';
import { maySee } from '../token-visibility.ts';

export interface JwtEndpointDeps {
  verifier: AccessTokenVerifier;
  revocations: RevocationList;
  clients: ClientService;
  audit?: { record(event: AuditEvent): void };
  /** RFC 8693: whether an exchanged token died with a token of its chain or its user's grant. */
  revokedThroughChain?: (token: { jti: string; act?: unknown }) => Promise<boolean>;
}

/** An introspection or revocation request for a JWT, from a client oidc-provider authenticated. */
export interface JwtTokenRequest {
  requester: string;
  token: string;
  ip: string;
}

/**
 * RFC 7662 introspection and RFC 7009 revocation for Keyward's JWT access tokens, which
 * oidc-provider does not store and so cannot answer for. oidc-provider still parses the
 * request and authenticates the client; overrides/jwt-token-refusal.ts hands the request here.
 */
export class JwtTokenEndpoints {
  constructor(private readonly deps: JwtEndpointDeps) {}

  /** The RFC 7662 response body. */
  async introspect(request: JwtTokenRequest): Promise<Record<string, unknown>> {
    const claims = await this.#visible(request);
    if (!claims || await this.deps.revocations.isRevoked(claims.jti)) return { active: false };
    if (await this.deps.revokedThroughChain?.(claims)) return { active: false };
    return introspectionOf(claims);
  }

  /**
   * Revokes the token if the requester may see it. RFC 7009 §2.2: the answer is 200 either
   * way, so it reveals nothing about a token the client may not see.
   */
  async revoke(request: JwtTokenRequest): Promise<void> {
    const claims = await this.#visible(request);
    if (!claims) return;
    await this.deps.revocations.revoke(claims.jti, new Date(claims.exp * 1000));
    this.deps.audit?.record({
      type: 'token.revoked',
      actor: request.requester,
      subject: typeof claims.sub === 'string' ? claims.sub : undefined,
      outcome: 'success',
      ip: request.ip,
      details: { jti: claims.jti, client_id: claims.client_id, aud: claims.aud },
    });
  }

  async #visible({ requester, token }: JwtTokenRequest): Promise<AccessTokenClaims | undefined> {
    const claims = await this.deps.verifier.verify(token);
    if (claims === undefined) return undefined;
    return (await maySee(this.deps.clients, requester, { clientId: claims.client_id, audiences: audiencesOf(claims) })) ? claims : undefined;
  }
}

/** RFC 7662 §2.2 response members for an active token, plus Keyward's `roles`. */
function introspectionOf(claims: AccessTokenClaims): Record<string, unknown> {
  const { iss, sub, aud, exp, iat, nbf, jti, client_id: clientId, scope, roles, cnf, act } = claims;
  const dpopBound = typeof cnf === 'object' && cnf !== null && 'jkt' in cnf;
  return {
    active: true,
    // RFC 9449 §6.2, RFC 8705 §3.2: a bound token says so, and what it is bound to.
    token_type: dpopBound ? 'DPoP' : 'Bearer',
    ...(cnf ? { cnf } : {}),
    iss, sub, aud, exp, iat, nbf, jti,
    client_id: clientId,
    scope,
    roles,
    // RFC 8693 §4.1: the actor chain of an exchanged token.
    act,
  };
}
