import type Koa from 'koa';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import type { Rate } from '../config/env.ts';
import { endpointKind, type EdgeAnswer } from './poison.ts';

/** The endpoints a single address may call only so often: where credentials are guessed or codes polled. */
export type LimitedEndpoint = 'token' | 'login' | 'device';

function limitedEndpoint(method: string, path: string): LimitedEndpoint | undefined {
  if (method !== 'POST') return undefined;
  if (path === '/token') return 'token';
  if (/^\/interaction\/[^/]+\/login$/.test(path)) return 'login';
  if (path === '/device/auth' || path === '/device') return 'device';
  return undefined;
}

/**
 * Per-IP request rates on the token, login and device endpoints (rate-limiter-flexible, in
 * process: each instance counts its own share). Beyond the rate: 429 with `Retry-After` in the
 * endpoint's own error format. Deployments behind a gateway that limits already turn it off
 * (KEYWARD_RATE_LIMIT=off); the account and IP login throttle (interaction/throttle.ts) stays.
 */
export function rateLimit(
  rates: Record<LimitedEndpoint, Rate>,
  answer: EdgeAnswer,
  limited: (endpoint: LimitedEndpoint) => void = () => undefined,
): Koa.Middleware {
  const limiters = Object.fromEntries(Object.entries(rates).map(([endpoint, rate]) => [endpoint, new RateLimiterMemory({
    keyPrefix: endpoint,
    points: rate.points,
    duration: Math.max(1, Math.round(rate.durationMs / 1000)),
  })])) as Record<LimitedEndpoint, RateLimiterMemory>;
  return async (ctx, next) => {
    const endpoint = limitedEndpoint(ctx.method, ctx.path);
    if (!endpoint) {
      await next();
      return;
    }
    try {
      await limiters[endpoint].consume(ctx.ip || 'unknown');
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) throw rejection;
      const seconds = Math.max(1, Math.ceil(rejection.msBeforeNext / 1000));
      limited(endpoint);
      answer(ctx, {
        status: 429,
        kind: endpointKind(ctx.path),
        error: 'temporarily_unavailable',
        description: `too many requests from this address; retry in ${seconds} s`,
        headers: { 'Retry-After': String(seconds) },
      });
      return;
    }
    await next();
  };
}
