import { InsufficientScope } from './errors.ts';
import type { AccessTokenClaims } from './verifier.ts';

/** A check on verified claims: returns, or throws a VerifyError (InsufficientScope → 403). */
export type Guard = (claims: AccessTokenClaims) => void;

export const scopesOf = (claims: AccessTokenClaims): string[] => (claims.scope ?? '').split(' ').filter(Boolean);
export const rolesOf = (claims: AccessTokenClaims): string[] => claims.roles ?? [];

/** Every listed role must be held (Keyward's `roles` claim). */
export function requireRoles(...roles: string[]): Guard {
  return (claims) => {
    const held = new Set(rolesOf(claims));
    const missing = roles.filter((r) => !held.has(r));
    if (missing.length) throw new InsufficientScope(`the token lacks the role(s) ${missing.join(', ')}`);
  };
}

/** Every listed scope must be granted; the 403 names them (RFC 6750 §3 `scope`). */
export function requireScopes(...scopes: string[]): Guard {
  return (claims) => {
    const held = new Set(scopesOf(claims));
    if (scopes.some((s) => !held.has(s))) throw new InsufficientScope('the token lacks a required scope', { scope: scopes });
  };
}
