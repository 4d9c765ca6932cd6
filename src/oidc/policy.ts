import type { Configuration } from 'oidc-provider';

/** Signing algorithms offered for tokens we sign: never `none`, never HS*. */
export const TOKEN_SIGNING_ALGS = ['ES256', 'RS256', 'EdDSA'] as const;

/**
 * The security baseline (RFC 9700): what flows exist, PKCE, algorithms, lifetimes.
 * Everything protocol-level that is a policy choice rather than a data lookup lives here.
 */
export function policyConfiguration(): Partial<Configuration> {
  return {
    responseTypes: ['code'],
    pkce: { required: () => true },
    enabledJWA: {
      idTokenSigningAlgValues: [...TOKEN_SIGNING_ALGS],
      userinfoSigningAlgValues: [...TOKEN_SIGNING_ALGS],
      introspectionSigningAlgValues: [...TOKEN_SIGNING_ALGS],
      authorizationSigningAlgValues: [...TOKEN_SIGNING_ALGS],
      clientAuthSigningAlgValues: ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA'],
      requestObjectSigningAlgValues: ['ES256', 'RS256', 'PS256', 'EdDSA'],
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
    },
    ttl: {
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? 3600,
      ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? 600,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 3600,
      Grant: 14 * 86_400,
      Session: 14 * 86_400,
    },
  };
}
