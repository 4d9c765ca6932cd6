import { randomBytes, timingSafeEqual } from 'node:crypto';
import { hmacSha256 } from '../keys/crypto.ts';

/**
 * Client secrets are generated here with 256 bits of entropy, so a keyed SHA-256 (HMAC under a
 * pepper, an instance secret sealed under the KEK: keys/instance-secrets.ts) is as strong as a
 * slow password hash against offline guessing and costs microseconds on the token endpoint.
 * Human passwords use argon2id instead.
 */
export class SecretHasher {
  readonly #pepper: Buffer;

  constructor(pepper: Buffer) {
    this.#pepper = pepper;
  }

  /** A new secret: 32 random bytes, base64url (43 characters). */
  generate(): string {
    return randomBytes(32).toString('base64url');
  }

  hash(secret: string): string {
    return hmacSha256(this.#pepper, secret).toString('base64url');
  }

  /** Constant-time comparison of a presented secret against a stored hash. */
  matches(secret: string, storedHash: string): boolean {
    const presented = hmacSha256(this.#pepper, secret);
    const stored = Buffer.from(storedHash, 'base64url');
    return stored.length === presented.length && timingSafeEqual(presented, stored);
  }
}
