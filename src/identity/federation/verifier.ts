import { compactVerify, createLocalJWKSet, decodeJwt, decodeProtectedHeader, errors, type JSONWebKeySet, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { FEDERATION_ALGS } from './input.ts';
import { IssuerKeys, KeysUnavailable } from './issuer-keys.ts';
import { describeMismatch, mismatchOf, type FederatedCredential } from './rules.ts';

/** Why a token did not authenticate with one credential (the dry run lists one per candidate). */
export type FailureReason =
  | 'malformed' | 'alg_not_allowed' | 'issuer_mismatch' | 'jwks_unavailable' | 'unknown_kid' | 'signature_invalid'
  | 'expired' | 'not_yet_valid' | 'iat_missing' | 'too_old' | 'audience_mismatch' | 'subject_mismatch'
  | 'subject_pattern_mismatch' | 'claim_mismatch';

export interface Failure {
  client_id: string;
  credential_id: string;
  reason: FailureReason;
  /** One sentence for people; never quotes the token or its claims' values. */
  detail: string;
}

export interface Match {
  credential: FederatedCredential;
  /** The verified claims of the external token. */
  claims: JWTPayload & { iss: string; sub: string };
}

export interface VerifierOptions {
  /** Keyward's issuer: the audience a credential without `audience` requires. */
  issuer: string;
  /** KEYWARD_FEDERATION_MAX_TOKEN_AGE. */
  maxTokenAgeMs: number;
  /** Tolerated clock difference with the external issuer. */
  clockToleranceSeconds?: number;
  now: () => Date;
  keys: IssuerKeys;
}

/** A token that failed before any credential was looked at (it is not a JWT we would verify). */
class TokenRefused extends Error {
  constructor(readonly reason: FailureReason, detail: string) {
    super(detail);
  }
}

/**
 * Verifies an external JWT against candidate credentials, in order, and returns the first
 * that accepts it, or every candidate's reason. Per candidate: issuer, then the signature with
 * the issuer's keys (inline, jwks_uri or discovery), then lifetime (exp, nbf, iat and the
 * maximum age), then the rule's audience, subject and claims. Only asymmetric algorithms are
 * accepted: `none` and HS* are refused before any key is touched (an HS256 token "signed" with
 * the public JWKS as secret must never verify). jti replay is the caller's (the dry run must
 * not consume one).
 */
export class FederatedTokenVerifier {
  readonly #tolerance: number;
  /** Inline key sets, imported once per stored credential (credentials are cached objects). */
  readonly #inline = new WeakMap<FederatedCredential, JWTVerifyGetKey>();

  constructor(private readonly options: VerifierOptions) {
    this.#tolerance = options.clockToleranceSeconds ?? 30;
  }

  async verify(token: string, candidates: readonly FederatedCredential[]): Promise<{ match: Match | undefined; failures: Failure[] }> {
    const failures: Failure[] = [];
    const fail = (credential: FederatedCredential, reason: FailureReason, detail: string) => {
      failures.push({ client_id: credential.clientId, credential_id: credential.id, reason, detail });
    };
    let header: { alg?: unknown; kid?: unknown };
    let unverified: JWTPayload;
    try {
      [header, unverified] = this.#decode(token);
    } catch (error) {
      const refused = error instanceof TokenRefused ? error : new TokenRefused('malformed', 'not a signed JWT');
      for (const credential of candidates) fail(credential, refused.reason, refused.message);
      return { match: undefined, failures };
    }
    const kid = typeof header.kid === 'string' ? header.kid : undefined;
    for (const credential of candidates) {
      if (unverified.iss !== credential.issuer) {
        fail(credential, 'issuer_mismatch', 'iss is not this credential\'s issuer');
        continue;
      }
      const signed = await this.#signature(token, credential, kid);
      if (signed.failure) {
        fail(credential, signed.failure.reason, signed.failure.detail);
        continue;
      }
      const claims = signed.claims;
      const lifetime = this.#lifetime(claims);
      if (lifetime) {
        fail(credential, lifetime.reason, lifetime.detail);
        continue;
      }
      const mismatch = mismatchOf(credential, claims, this.options.issuer);
      if (mismatch) {
        fail(credential, mismatch.reason, describeMismatch(mismatch));
        continue;
      }
      return { match: { credential, claims: claims as Match['claims'] }, failures };
    }
    return { match: undefined, failures };
  }

  #decode(token: string): [{ alg?: unknown; kid?: unknown }, JWTPayload] {
    if (token.split('.').length !== 3) throw new TokenRefused('malformed', 'not a compact JWS (three dot-separated parts)');
    const header = decodeProtectedHeader(token);
    if (!(FEDERATION_ALGS as readonly unknown[]).includes(header.alg)) {
      throw new TokenRefused('alg_not_allowed', `alg must be one of ${FEDERATION_ALGS.join(', ')} (none and HS* are never accepted)`);
    }
    return [header, decodeJwt(token)];
  }

  async #signature(token: string, credential: FederatedCredential, kid: string | undefined):
    Promise<{ claims: JWTPayload; failure?: undefined } | { failure: { reason: FailureReason; detail: string } }> {
    let keys: JWTVerifyGetKey;
    try {
      keys = credential.jwks
        ? this.#inlineKeys(credential, credential.jwks)
        : await this.options.keys.resolver({ issuer: credential.issuer, jwksUri: credential.jwksUri }, kid);
    } catch (error) {
      const detail = error instanceof KeysUnavailable ? error.message : 'the issuer\'s keys could not be read';
      return { failure: { reason: 'jwks_unavailable', detail } };
    }
    try {
      const { payload } = await compactVerify(token, keys, { algorithms: [...FEDERATION_ALGS] });
      return { claims: JSON.parse(new TextDecoder().decode(payload)) as JWTPayload };
    } catch (error) {
      if (error instanceof errors.JWKSNoMatchingKey) return { failure: { reason: 'unknown_kid', detail: 'no key of the issuer matches the token\'s kid and alg' } };
      if (error instanceof errors.JWKSMultipleMatchingKeys) return { failure: { reason: 'unknown_kid', detail: 'the token names no kid and the issuer has several keys' } };
      return { failure: { reason: 'signature_invalid', detail: 'the signature does not verify with the issuer\'s keys' } };
    }
  }

  #inlineKeys(credential: FederatedCredential, jwks: NonNullable<FederatedCredential['jwks']>): JWTVerifyGetKey {
    let keys = this.#inline.get(credential);
    if (!keys) {
      keys = createLocalJWKSet(jwks as JSONWebKeySet);
      this.#inline.set(credential, keys);
    }
    return keys;
  }

  /** RFC 7523 §3 items 4, 5 and 6: exp required and in the future, nbf passed, iat present and recent. */
  #lifetime(claims: JWTPayload): { reason: FailureReason; detail: string } | undefined {
    const now = this.options.now().getTime() / 1000;
    const tolerance = this.#tolerance;
    if (typeof claims.exp !== 'number') return { reason: 'expired', detail: 'exp is required' };
    if (claims.exp <= now - tolerance) return { reason: 'expired', detail: 'the token has expired' };
    if (claims.nbf !== undefined && (typeof claims.nbf !== 'number' || claims.nbf > now + tolerance)) return { reason: 'not_yet_valid', detail: 'the token is not valid yet (nbf)' };
    if (typeof claims.iat !== 'number') return { reason: 'iat_missing', detail: 'iat is required' };
    if (claims.iat > now + tolerance) return { reason: 'not_yet_valid', detail: 'iat is in the future' };
    const maxAge = this.options.maxTokenAgeMs / 1000;
    if (now - claims.iat > maxAge + tolerance) return { reason: 'too_old', detail: `the token was issued more than ${Math.round(maxAge)} seconds ago (KEYWARD_FEDERATION_MAX_TOKEN_AGE)` };
    return undefined;
  }
}
