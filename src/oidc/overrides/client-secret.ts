import type { Provider } from 'oidc-provider';

/** What secret verification needs: the registry's constant-time check against stored hashes. */
export interface SecretVerifier {
  verifySecret(clientId: string, secret: string): Promise<boolean>;
}

/**
 * The `client_secret` metadata value of every secret-authenticated client. oidc-provider
 * refuses such a client without one, but Keyward stores only hashes. The value is never
 * compared (see installSecretVerification) and never used as key material, because nothing
 * that would derive a symmetric key from it is enabled: no HS* algorithm, no
 * client_secret_jwt, no symmetric encryption (policy.ts, clients.ts; provider-contract.test.ts).
 */
export const SECRET_PLACEHOLDER = 'keyward:hashed-secret';

/**
 * Routes client_secret_basic / client_secret_post checks to the registry's hashes.
 * `compareClientSecret` is the seam the oidc-provider maintainer points to for hashed secrets
 * (panva/node-oidc-provider#631) and is typed in @types/oidc-provider, but there is no
 * configuration option for it, so it is assigned on the prototype. `provider.Client` is a
 * class of its own per Provider instance, so this never leaks into another instance.
 */
export function installSecretVerification(provider: Provider, clients: SecretVerifier): void {
  provider.Client.prototype.compareClientSecret = function compareClientSecret(this: { clientId: string }, actual: string) {
    return clients.verifySecret(this.clientId, actual);
  };
}
