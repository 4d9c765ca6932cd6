/**
 * Revoked JWT access tokens by `jti`, shared by every instance (src/store/revoked-tokens.ts
 * keeps them). The token endpoints add to it; every verifier of Keyward's JWTs consults it.
 */
export interface RevocationList {
  isRevoked(jti: string): Promise<boolean>;
  /** Idempotent: revoking a revoked token again is not an error (RFC 7009 §2.2). */
  revoke(jti: string, expiresAt: Date): Promise<void>;
}
