import type { Middleware } from 'koa';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { DeviceAudit } from './device-pages.ts';
import { deviceThrottledPage } from './device-views.ts';
import { setPageHeaders } from './headers.ts';
import { throttleSource } from './throttle.ts';

/** A counter shared by every instance (src/store/rate-limits.ts SharedRateLimit). */
export interface AttemptCounter {
  consume(key: string): Promise<{ allowed: true } | { allowed: false; retryAfterMs: number }>;
  refund(key: string): Promise<void>;
}

/**
 * Per source (an IPv4 address, an IPv6 /64): at most 10 code entries that match no device code
 * in 15 minutes. README "Devices" works out what that means for guessing.
 */
export const DEVICE_CODE_ATTEMPTS = { points: 10, durationMs: 15 * 60_000 } as const;

/** oidc-provider's `routes.code_verification` (its default, which Keyward keeps). */
export const VERIFICATION_PATH = '/device';

/**
 * RFC 8628 §5.1: user codes are short, so their entry is throttled. Every POST to the
 * verification URI first takes a point from its source's shared counter (so parallel guesses
 * are all counted, on any instance), and gets it back when the code it carried matched a
 * device code (oidc-provider then holds the DeviceCode entity). Beyond the allowance the code
 * is not even looked up: 429 with Retry-After and a page in Keyward's look. Installed with
 * `provider.use`, oidc-provider's supported middleware hook.
 */
export function deviceCodeThrottle(counter: AttemptCounter, audit: DeviceAudit): Middleware {
  return async (ctx, next) => {
    if (ctx.method !== 'POST' || ctx.path !== VERIFICATION_PATH) {
      await next();
      return;
    }
    const key = throttleSource(ctx.ip || 'unknown');
    const verdict = await counter.consume(key);
    if (!verdict.allowed) {
      audit.record({ type: 'device.code_entered', outcome: 'failure', ip: ctx.ip, details: { reason: 'throttled' } });
      const seconds = Math.max(1, Math.ceil(verdict.retryAfterMs / 1000));
      setPageHeaders(ctx);
      ctx.set('Retry-After', String(seconds));
      ctx.status = 429;
      ctx.type = 'html';
      ctx.body = deviceThrottledPage({ minutes: Math.ceil(seconds / 60) });
      return;
    }
    try {
      await next();
    } finally {
      const oidc = (ctx as unknown as KoaContextWithOIDC).oidc as KoaContextWithOIDC['oidc'] | undefined;
      if (oidc?.entities?.DeviceCode) await counter.refund(key);
    }
  };
}
