/**
 * Asymmetric JWS algorithms only. `none` would accept an unsigned token; an HMAC algorithm
 * would let a forger use the published public key as the shared secret (the classic algorithm
 * confusion), so neither can ever be configured.
 */
export const ASYMMETRIC_ALGS = ['ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'EdDSA', 'Ed25519'] as const;
export type AsymmetricAlg = (typeof ASYMMETRIC_ALGS)[number];

/** What Keyward signs access tokens with (keys/algorithms.ts in Keyward, restated: this module imports nothing of it). */
export const KEYWARD_ALGS: readonly AsymmetricAlg[] = ['ES256', 'RS256', 'EdDSA'];

/** Algorithms accepted for DPoP proofs (RFC 9449 §4.2: asymmetric; the client's key decides). */
export const DPOP_ALGS: readonly AsymmetricAlg[] = ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA', 'Ed25519'];

export function asymmetricOnly(algs: readonly string[]): AsymmetricAlg[] {
  const refused = algs.filter((a) => !(ASYMMETRIC_ALGS as readonly string[]).includes(a));
  if (refused.length) throw new TypeError(`keyward/verify: refusing algorithm(s) ${refused.join(', ')}; only asymmetric JWS algorithms are accepted`);
  if (!algs.length) throw new TypeError('keyward/verify: at least one algorithm is required');
  return algs as AsymmetricAlg[];
}
