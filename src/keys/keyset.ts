import type { JWK } from 'jose';
import type { JWKS } from 'oidc-provider';
import type { PrivateSigningKey } from './store.ts';

/**
 * The key set handed to oidc-provider. It signs with the first key matching an algorithm
 * whose `key_ops` allow signing, and publishes every key: active keys come first and may sign;
 * staged and retiring keys are marked verify-only, so they are published but never sign.
 */
export function providerJwks(keys: PrivateSigningKey[]): JWKS {
  const rank = (k: PrivateSigningKey) => (k.state === 'active' ? 0 : 1);
  const ordered = [...keys].sort((a, b) => rank(a) - rank(b) || b.createdAt.getTime() - a.createdAt.getTime());
  return {
    keys: ordered.map((key) => {
      const jwk: JWK = { ...key.privateJwk, kid: key.kid, alg: key.alg, use: 'sig' };
      if (key.state !== 'active') jwk.key_ops = ['verify'];
      return jwk;
    }),
  };
}
