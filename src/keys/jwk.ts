import type { JWK } from 'jose';
import { z } from 'zod';

/** JWK members that carry private or symmetric key material (RFC 7518 §6). */
export const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

/** The key without its private members: what may be published or used to verify. */
export function publicJwk(jwk: JWK): JWK {
  const copy: JWK = { ...jwk };
  for (const member of PRIVATE_JWK_MEMBERS) delete copy[member];
  return copy;
}

/** A JWK read back from the store (a JSON column or a decrypted blob). */
export const storedJwk: z.ZodType<JWK> = z.looseObject({ kty: z.string() });
