import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * CSRF tokens bound to one interaction: HMAC-SHA-256 of the interaction uid under a key derived
 * from the KEK. Stateless (any instance can check it) and useless for any other interaction.
 * The interaction itself is also bound to the browser by oidc-provider's signed cookie.
 */
export class CsrfTokens {
  constructor(private readonly key: Buffer) {}

  issue(interactionUid: string): string {
    return createHmac('sha256', this.key).update(`keyward:csrf:${interactionUid}`).digest('base64url');
  }

  verify(interactionUid: string, token: unknown): boolean {
    if (typeof token !== 'string' || token.length === 0) return false;
    const expected = Buffer.from(this.issue(interactionUid));
    const given = Buffer.from(token);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}
