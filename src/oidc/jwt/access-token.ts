import { createLocalJWKSet, errors, jwtVerify, type JWK, type JWTPayload } from 'jose';
import { SIGNING_ALGS } from '../../keys/algorithms.ts';
import { publicJwk } from '../../keys/jwk.ts';

/** The claims of a verified RFC 9068 access token that introspection and revocation use. */
export interface AccessTokenClaims extends JWTPayload {
  jti: string;
  exp: number;
  client_id: string;
}

/** Staged and retiring keys carry `key_ops: ['verify']`, active ones none: verification uses them all alike. */
function verificationKey(jwk: JWK): JWK {
  const { key_ops: _keyOps, ...key } = publicJwk(jwk);
  return key;
}

/**
 * Verifies Keyward's own JWT access tokens against the key set the provider was built with
 * (the provider is rebuilt when keys change, so this is always the current set): signature by
 * a published key, `typ: at+jwt` (RFC 9068 §4), our issuer, not expired.
 */
export class AccessTokenVerifier {
  readonly #keys: ReturnType<typeof createLocalJWKSet>;

  constructor(
    private readonly issuer: string,
    keys: readonly JWK[],
    private readonly now: () => Date,
  ) {
    this.#keys = createLocalJWKSet({ keys: keys.map(verificationKey) });
  }

  /** The token's claims, or undefined for anything forged, foreign, malformed or expired. */
  async verify(token: string): Promise<AccessTokenClaims | undefined> {
    try {
      return await this.verifyOrThrow(token);
    } catch {
      return undefined;
    }
  }

  /**
   * The token's claims, or jose's error saying what is wrong (for callers that explain it,
   * such as the admin API's 401s). `audience` and `requiredClaims` add to the checks above.
   */
  async verifyOrThrow(token: string, extra: { audience?: string; requiredClaims?: string[] } = {}): Promise<AccessTokenClaims> {
    const { payload } = await jwtVerify(token, this.#keys, {
      issuer: this.issuer,
      typ: 'at+jwt',
      algorithms: [...SIGNING_ALGS],
      currentDate: this.now(),
      requiredClaims: ['jti', 'exp', 'client_id', ...(extra.requiredClaims ?? [])],
      ...(extra.audience ? { audience: extra.audience } : {}),
    });
    if (typeof payload.jti !== 'string' || typeof payload.client_id !== 'string') {
      throw new errors.JWTClaimValidationFailed('jti and client_id must be strings', payload, 'client_id', 'invalid');
    }
    return payload as AccessTokenClaims;
  }
}

/** The audiences of a token as a list. */
export function audiencesOf(claims: JWTPayload): string[] {
  if (typeof claims.aud === 'string') return [claims.aud];
  return Array.isArray(claims.aud) ? claims.aud : [];
}
