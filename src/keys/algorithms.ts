/**
 * Signing algorithms Keyward holds keys for and signs tokens with. `none` and HS* are never
 * offered: a symmetric algorithm would turn a client's secret marker into key material.
 */
export const SIGNING_ALGS = ['ES256', 'RS256', 'EdDSA'] as const;
export type SigningAlg = (typeof SIGNING_ALGS)[number];
