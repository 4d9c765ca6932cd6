import { errors, type Configuration } from 'oidc-provider';

/** The longest a client assertion may be valid for, from the moment it is presented. */
export const MAX_ASSERTION_LIFETIME_SECONDS = 300;

/**
 * RFC 7523 §3 client assertions (private_key_jwt), beyond what oidc-provider checks: the
 * assertion names one audience (oidc-provider accepts an `aud` array as long as one entry is
 * this server, so an assertion minted for several servers would work at each of them), and it
 * expires within MAX_ASSERTION_LIFETIME_SECONDS (a one-year assertion is a long-lived
 * credential; RFC 7523 §3 item 4 lets the server reject an `exp` unreasonably far in the future).
 */
export function clientAssertionConfiguration(now: () => Date): Partial<Configuration> {
  return {
    assertJwtClientAuthClaimsAndHeader: (_ctx, claims) => {
      // oidc-provider has already required an accepted audience among the values.
      const aud: unknown = claims.aud;
      if (Array.isArray(aud) && aud.length !== 1) {
        throw new errors.InvalidClientAuth('audience (aud) must be this server alone');
      }
      const exp = claims.exp;
      if (typeof exp !== 'number' || exp - now().getTime() / 1000 > MAX_ASSERTION_LIFETIME_SECONDS) {
        throw new errors.InvalidClientAuth(`client_assertion must expire within ${MAX_ASSERTION_LIFETIME_SECONDS} seconds`);
      }
    },
  };
}
