import { createHash, randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';

/** A DPoP key pair and a proof maker (RFC 9449 §4.2), for requests openid-client does not make. */
export interface DpopKey {
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  jwk: JWK;
  proof(htm: string, htu: string, extra?: { accessToken?: string; nonce?: string; jti?: string }): Promise<string>;
}

export async function dpopKey(): Promise<DpopKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(publicKey);
  return {
    privateKey, publicKey, jwk,
    proof: (htm, htu, extra = {}) => new SignJWT({
      htm, htu, jti: extra.jti ?? randomUUID(),
      ...(extra.accessToken ? { ath: createHash('sha256').update(extra.accessToken).digest('base64url') } : {}),
      ...(extra.nonce ? { nonce: extra.nonce } : {}),
    }).setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk }).setIssuedAt().sign(privateKey),
  };
}
