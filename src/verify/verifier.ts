import { errors, jwtVerify, type JWTPayload } from 'jose';
import { asymmetricOnly, KEYWARD_ALGS } from './algorithms.ts';
import { checkBinding, type CertificateInput, type Confirmation, type DpopInput } from './binding.ts';
import { InvalidToken, KeySetUnavailable } from './errors.ts';
import { JwksCache, type JwksOptions } from './jwks.ts';

/** The claims of a verified Keyward access token (RFC 9068 §2.2, plus Keyward's `roles`). */
export interface AccessTokenClaims extends JWTPayload {
  iss: string;
  sub: string;
  aud: string | string[];
  exp: number;
  iat: number;
  jti: string;
  client_id: string;
  /** Space-separated granted scopes (RFC 9068 §2.2.3); absent when none were granted. */
  scope?: string;
  /** Keyward's roles of the subject (client roles for client credentials, user roles otherwise). */
  roles?: string[];
  cnf?: Confirmation;
}

export interface VerifierOptions {
  /** The issuer exactly as in the tokens' `iss` and discovery (e.g. https://id.example.com). */
  issuer: string;
  /** This API's identifier (the resource the tokens were asked for); any of a list is accepted. */
  audience: string | readonly string[];
  /** Accepted signature algorithms (default ES256, RS256, EdDSA); asymmetric only. */
  algorithms?: readonly string[];
  /** Leeway for exp, nbf and iat against this machine's clock, in seconds (default 0). */
  clockTolerance?: number;
  /** Key-set options beyond the issuer (jwksUri, cooldown, cache lifetimes, fetch). */
  jwks?: Omit<JwksOptions, 'issuer' | 'now'>;
  /** DPoP proof age window and replay check (RFC 9449 §11.1). */
  dpop?: { maxAgeSeconds?: number; jtiUnused?: (jti: string, expiresAt: Date) => boolean | Promise<boolean> };
  now?: () => Date;
}

/** What a request presented besides the token, for tokens bound by `cnf`. */
export interface VerifyInput {
  dpop?: DpopInput | undefined;
  certificate?: CertificateInput | undefined;
}

export interface Verifier {
  /** The token's claims, or a VerifyError (RFC 6750 code), or KeySetUnavailable when nothing can be verified. */
  verify(token: string, input?: VerifyInput): Promise<AccessTokenClaims>;
  readonly jwks: JwksCache;
  readonly issuer: string;
}

/** RFC 9068 §2.2: every JWT access token carries these. */
const REQUIRED_CLAIMS = ['iss', 'exp', 'aud', 'sub', 'client_id', 'iat', 'jti'];

export function createVerifier(options: VerifierOptions): Verifier {
  if (!options.issuer) throw new TypeError('keyward/verify: issuer is required');
  const audience = typeof options.audience === 'string' ? [options.audience] : [...options.audience];
  if (!audience.length || audience.some((a) => !a)) throw new TypeError('keyward/verify: audience is required (this API\'s resource identifier)');
  const algorithms = asymmetricOnly(options.algorithms ?? KEYWARD_ALGS);
  const now = options.now ?? (() => new Date());
  const clockTolerance = options.clockTolerance ?? 0;
  const jwks = new JwksCache({ ...options.jwks, issuer: options.issuer, now });
  const binding = {
    dpopMaxAgeSeconds: options.dpop?.maxAgeSeconds ?? 300,
    clockToleranceSeconds: clockTolerance,
    now,
    dpopJtiUnused: options.dpop?.jtiUnused,
  };

  return {
    jwks,
    issuer: options.issuer,
    async verify(token, input = {}) {
      if (typeof token !== 'string' || !token) throw new InvalidToken('no access token');
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, jwks.getKey, {
          issuer: options.issuer,
          audience,
          algorithms,
          // RFC 9068 §4: an ID token or any other JWT from the same issuer is not an access token.
          typ: 'at+jwt',
          clockTolerance,
          currentDate: now(),
          requiredClaims: REQUIRED_CLAIMS,
        }));
      } catch (error) {
        if (error instanceof KeySetUnavailable) throw error;
        throw new InvalidToken(describe(error), { cause: error });
      }
      if (typeof payload.client_id !== 'string' || typeof payload.jti !== 'string' || typeof payload.sub !== 'string') {
        throw new InvalidToken('sub, client_id and jti must be strings');
      }
      if (payload.scope !== undefined && typeof payload.scope !== 'string') throw new InvalidToken('scope must be a string');
      if (payload.roles !== undefined && !(Array.isArray(payload.roles) && payload.roles.every((r) => typeof r === 'string'))) {
        throw new InvalidToken('roles must be a list of strings');
      }
      const claims = payload as AccessTokenClaims;
      await checkBinding(token, claims.cnf, input, binding);
      return claims;
    },
  };
}

/** A short reason for error_description; never the token or any claim value. */
function describe(error: unknown): string {
  if (error instanceof errors.JWTExpired) return 'the token has expired';
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'typ') return 'not an access token (typ must be at+jwt)';
    return `the ${error.claim} claim is invalid or missing`;
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return 'the signature algorithm is not accepted';
  if (error instanceof errors.JWKSNoMatchingKey) return 'signed by an unknown key';
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'the signature is invalid';
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) return 'malformed token';
  if (error instanceof errors.JOSENotSupported) return 'unsupported token';
  return 'the token could not be verified';
}
