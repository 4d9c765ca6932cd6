import { createHash, timingSafeEqual } from 'node:crypto';
import Router from '@koa/router';
import type { Metrics } from './metrics.ts';

export interface HealthDeps {
  metrics: Metrics;
  /** Resolves when the store answers. */
  ping(): Promise<void>;
  /** The algorithms that must each have an active key (KEYWARD_SIGNING_ALGS). */
  signingAlgs: readonly string[];
  /** The algorithms the running provider can sign with now. */
  activeAlgs(): ReadonlySet<string>;
  /** How long the store may take to answer before /readyz calls it unreachable. */
  pingTimeoutMs?: number;
  /** KEYWARD_METRICS_TOKEN: when set, /metrics answers only `Authorization: Bearer <token>`. */
  metricsToken?: string | undefined;
  /** What /metrics shows instead of this process's registry (KEYWARD_WORKERS: the sum over all workers, cluster.ts). */
  exposition?: (() => Promise<string>) | undefined;
}

function bearerMatches(header: string, token: string): boolean {
  const presented = createHash('sha256').update(header.replace(/^Bearer\s+/i, '')).digest();
  return /^Bearer\s+/i.test(header) && timingSafeEqual(presented, createHash('sha256').update(token).digest());
}

const DEFAULT_PING_TIMEOUT_MS = 2_000;

/** Rejects when `promise` has not settled within `ms`. */
function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('timed out')), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Liveness, readiness and metrics. /healthz answers while the process can; /readyz is 503
 * while the store does not answer (within 2 s) or a configured algorithm has no active key in
 * the running provider, so a load balancer sends requests elsewhere.
 */
export function healthRoutes(deps: HealthDeps): Router {
  const router = new Router();
  router.get('/healthz', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    const active = deps.activeAlgs();
    const missing = deps.signingAlgs.filter((alg) => !active.has(alg));
    const checks = { store: 'ok', keys: missing.length ? `no active key for ${missing.join(', ')}` : 'ok' };
    try {
      await within(deps.ping(), deps.pingTimeoutMs ?? DEFAULT_PING_TIMEOUT_MS);
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
    ctx.body = deps.exposition ? await deps.exposition() : await deps.metrics.registry.metrics();
  });
  return router;
}
