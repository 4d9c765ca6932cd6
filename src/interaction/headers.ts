import { createHash } from 'node:crypto';
import type { Context } from 'koa';
import { STYLESHEET } from './layout.ts';

/** The inline stylesheet is a constant, so a hash allows it without a per-request nonce. */
const STYLE_HASH = `'sha256-${createHash('sha256').update(STYLESHEET).digest('base64')}'`;

/**
 * A CSP `form-action` source for where a form submission may end up. Chromium applies
 * form-action to every redirect that follows a submission, and the login/consent/logout forms
 * end in a redirect to the client (redirect_uri or post_logout_redirect_uri) — already matched
 * exactly against the client's registration by oidc-provider — so that origin is allowed too.
 */
export function formTarget(uri: unknown): string | undefined {
  if (typeof uri !== 'string') return undefined;
  try {
    const url = new URL(uri);
    if (url.protocol === 'http:' || url.protocol === 'https:') return url.origin;
    // Native apps use private-use URI schemes (RFC 8252 §7.1); a scheme-source covers them.
    return /^[a-z][a-z0-9+.-]*:$/i.test(url.protocol) ? url.protocol : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Headers for every page Keyward serves to a person: no framing, no caching, no referrer, and
 * no script except the exact inline scripts named by hash (oidc-provider's auto-submitting
 * form_post page has one).
 */
export function setPageHeaders(ctx: Pick<Context, 'set'>, formTargets: (string | undefined)[] = [], scriptHashes: string[] = []): void {
  const targets = ["'self'", ...new Set(formTargets.filter((t): t is string => Boolean(t)))];
  ctx.set('Content-Security-Policy', [
    "default-src 'none'",
    `style-src ${STYLE_HASH}`,
    ...(scriptHashes.length ? [`script-src ${scriptHashes.join(' ')}`] : []),
    `form-action ${targets.join(' ')}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; '));
  ctx.set('X-Frame-Options', 'DENY');
  ctx.set('Referrer-Policy', 'no-referrer');
  ctx.set('Cache-Control', 'no-store');
  ctx.set('Pragma', 'no-cache');
  ctx.set('X-Content-Type-Options', 'nosniff');
}
