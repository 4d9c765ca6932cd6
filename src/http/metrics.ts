import type Koa from 'koa';
import { collectDefaultMetrics, Histogram, Registry } from 'prom-client';

/** Prometheus registry with process metrics and a request-duration histogram. */
export class Metrics {
  readonly registry = new Registry();
  readonly requestDuration: Histogram<'route' | 'method' | 'status'>;

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'keyward_' });
    // Version details help an attacker pick an exploit more than they help an operator.
    this.registry.removeSingleMetric('keyward_nodejs_version_info');
    this.requestDuration = new Histogram({
      name: 'keyward_http_request_duration_seconds',
      help: 'HTTP request duration by route, method and status',
      labelNames: ['route', 'method', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [this.registry],
    });
  }

  /** Times every request; the route label is a template, never a raw path (bounded cardinality). */
  middleware(routeOf: (ctx: Koa.Context) => string): Koa.Middleware {
    return async (ctx, next) => {
      const end = this.requestDuration.startTimer();
      try {
        await next();
      } finally {
        end({ route: routeOf(ctx), method: ctx.method, status: String(ctx.status) });
      }
    };
  }
}
