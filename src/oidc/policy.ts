import type { Configuration } from 'oidc-provider';
import { ID_TOKEN_TTL_SECONDS } from '../config/token-lifetimes.ts';
import { SIGNING_ALGS } from '../keys/algorithms.ts';

/**
 * The security baseline (RFC 9700): what flows exist, PKCE, algorithms, lifetimes.
 * Everything protocol-level that is a policy choice rather than a data lookup lives here.
 */
export function policyConfiguration(): Partial<Configuration> {
  return {
    responseTypes: ['code'],
    pkce: { required: () => true },
    enabledJWA: {
      idTokenSigningAlgValues: [...SIGNING_ALGS],
      userinfoSigningAlgValues: [...SIGNING_ALGS],
      introspectionSigningAlgValues: [...SIGNING_ALGS],
      authorizationSigningAlgValues: [...SIGNING_ALGS],
      clientAuthSigningAlgValues: ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA'],
      requestObjectSigningAlgValues: ['ES256', 'RS256', 'PS256', 'EdDSA'],
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      revocation: { enabled: true },
    },
    ttl: {
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? 3600,
      ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? 600,
      AuthorizationCode: 60,
      IdToken: ID_TOKEN_TTL_SECONDS,
      Interaction: 3600,
      Grant: 14 * 86_400,
      Session: 14 * 86_400,
      // Absolute lifetime: a rotated refresh token inherits the remaining time of the first one
      // (`iiat`), so a chain of rotations never outlives REFRESH_TOKEN_LIFETIME.
      RefreshToken: (_ctx, token) => Math.max(1, REFRESH_TOKEN_LIFETIME - token.totalLifetime()),
    },
    // RFC 9700 §4.14.2: every refresh rotates (refresh-rotation.ts, which checks the resource
    // first); presenting a used one (reuse) makes oidc-provider revoke the whole grant, so a
    // stolen token dies with the legitimate one (single-use.ts: also when the two race).
    // Exact redirect-URI matching, always stated in the request (no implicit default).
    allowOmittingSingleRegisteredRedirectUri: false,
  };
}

/** Seconds a refresh-token chain may live from the login that started it (= the grant's TTL). */
export const REFRESH_TOKEN_LIFETIME = 14 * 86_400;
