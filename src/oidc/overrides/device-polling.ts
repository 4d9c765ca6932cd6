import { createHash } from 'node:crypto';
import type { Middleware } from 'koa';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { oidcOf } from './context.ts';

/** One poll per interval and device code, counted in the store so every instance agrees. */
export interface PollGate {
  consume(key: string): Promise<{ allowed: boolean }>;
}

/**
 * RFC 8628 §3.2 `interval` and §3.5 `slow_down`, which oidc-provider 9 does not implement
 * (it defines the SlowDown error but never throws it, and its device authorization response
 * has no `interval`). After oidc-provider answered:
 * - the device authorization response (route `device_authorization`, a JSON object body)
 *   gains `interval`;
 * - a token request answered `authorization_pending` (lib/actions/grants/device_code.js; the
 *   error handler renders `{ error, error_description }`) whose device code was already polled
 *   within the interval is answered `slow_down` instead. Only pending codes are counted, so a
 *   device is never slowed down on the poll that receives its tokens or a final error.
 * The gate's key is a digest of the device code: the code itself is a bearer secret.
 */
export function devicePolling(gate: PollGate, intervalSeconds: number): Middleware {
  return async (ctx, next) => {
    await next();
    const oidc = oidcOf(ctx as unknown as KoaContextWithOIDC);
    if (!oidc) return;
    if (oidc.route === 'device_authorization' && ctx.status === 200 && ctx.body && typeof ctx.body === 'object') {
      ctx.body = { ...(ctx.body as Record<string, unknown>), interval: intervalSeconds };
      return;
    }
    if (oidc.route !== 'token' || ctx.status !== 400) return;
    const body = ctx.body as { error?: unknown } | undefined;
    const deviceCode = oidc.params?.device_code;
    if (body?.error !== 'authorization_pending' || typeof deviceCode !== 'string') return;
    const key = createHash('sha256').update(deviceCode).digest('base64url');
    if ((await gate.consume(key)).allowed) return;
    ctx.body = {
      error: 'slow_down',
      error_description: `polling too often: wait at least ${intervalSeconds + 5} seconds between requests (RFC 8628 §3.5)`,
    };
  };
}
