import { createHash, timingSafeEqual } from 'node:crypto';
import Router from '@koa/router';
import type { Metrics } from './metrics.ts';

export interface HealthDeps {
  metrics: Metrics;
  /** Resolves when the store answers. */
  ping(): Promise<void>;
  /** True once a signing key set is loaded. */
  keysLoaded(): boolean;
  /** KEYWARD_METRICS_TOKEN: when set, /metrics answers only `Authorization: Bearer <token>`. */
  metricsToken?: string | undefined;
}

function bearerMatches(header: string, token: string): boolean {
  const presented = createHash('sha256').update(header.replace(/^Bearer\s+/i, '')).digest();
  return /^Bearer\s+/i.test(header) && timingSafeEqual(presented, createHash('sha256').update(token).digest());
}

/** Liveness, readiness and metrics. */
export function healthRoutes(deps: HealthDeps): Router {
  const router = new Router();
  router.get('/healthz', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    const checks = { store: 'ok', keys: deps.keysLoaded() ? 'ok' : 'not loaded' };
    try {
      await deps.ping();
    } catch {
      checks.store = 'unreachable';
    }
    const ready = checks.store === 'ok' && checks.keys === 'ok';
    ctx.status = ready ? 200 : 503;
    ctx.body = { status: ready ? 'ready' : 'not ready', checks };
  });
  router.get('/metrics', async (ctx) => {
    if (deps.metricsToken && !bearerMatches(ctx.get('authorization'), deps.metricsToken)) {
      ctx.status = 401;
      ctx.set('WWW-Authenticate', 'Bearer realm="metrics"');
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { error: 'invalid_token' };
      return;
    }
    ctx.set('Content-Type', deps.metrics.registry.contentType);
    ctx.body = await deps.metrics.registry.metrics();
  });
  return router;
}
