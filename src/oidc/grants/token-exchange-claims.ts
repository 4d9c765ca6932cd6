/**
 * The claims the token-exchange grant decided for a token it mints (`act`, `roles`), handed to
 * `extraTokenClaims` (claims.ts) by the token object itself; nothing else writes here.
 */
const decided = new WeakMap<object, Record<string, unknown>>();

export function setExchangedClaims(token: object, claims: Record<string, unknown>): void {
  decided.set(token, claims);
}

/** The claims of a token minted by token exchange; undefined for any other token. */
export function exchangedClaimsOf(token: object): Record<string, unknown> | undefined {
  return decided.get(token);
}
