import type Koa from 'koa';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

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

// ── Hostile input, bounded memory, security outcomes (issue 11 part B) ──────────────────────

/** An audit event as the security metrics see it (structurally the audit writer's events). */
export interface ObservedEvent {
  type: string;
  outcome: 'success' | 'failure';
  details?: Record<string, unknown> | undefined;
}

/** Where the gauges read from at scrape time. */
export interface SecuritySources {
  audit: () => { buffered: number; dropped: { overflow: number; unstorable: number } };
  /** Hit/miss counters of the bounded caches, by cache name. */
  caches: Record<string, () => { hits: number; misses: number; size: number }>;
}

/** Endpoints where a 401 means a failed client authentication (RFC 6749 §5.2 invalid_client). */
const CLIENT_AUTH_ROUTES = new Set(['/token', '/token/introspection', '/token/revocation', '/request']);

/** Labels come from validated values only (the audit writer's grant type is one of a fixed list or `other`). */
const label = (value: unknown, fallback: string): string => (typeof value === 'string' && value.length <= 64 ? value : fallback);

/**
 * Token issuance by grant type and outcome, client-authentication failures, login failures and
 * throttles, rate-limit and bad-input refusals, audit buffer depth and drops, cache hits and misses.
 */
export class SecurityMetrics {
  readonly #tokens: Counter<'grant_type' | 'outcome' | 'error'>;
  readonly #clientAuthFailures: Counter<'route'>;
  readonly #loginFailures: Counter<'reason'>;
  readonly #loginThrottles: Counter<'scope'>;
  readonly #rateLimited: Counter<'endpoint'>;
  readonly #refused: Counter<'kind'>;

  constructor(registry: Registry, sources: SecuritySources) {
    const registers = [registry];
    this.#tokens = new Counter({
      name: 'keyward_token_requests_total', help: 'Token endpoint outcomes by grant type (or other), outcome and OAuth error',
      labelNames: ['grant_type', 'outcome', 'error'], registers,
    });
    this.#clientAuthFailures = new Counter({
      name: 'keyward_client_auth_failures_total', help: 'Failed client authentications (401 invalid_client) by endpoint',
      labelNames: ['route'], registers,
    });
    this.#loginFailures = new Counter({
      name: 'keyward_login_failures_total', help: 'Failed password logins by reason', labelNames: ['reason'], registers,
    });
    this.#loginThrottles = new Counter({
      name: 'keyward_login_throttled_total', help: 'Login attempts refused by the account or IP throttle', labelNames: ['scope'], registers,
    });
    this.#rateLimited = new Counter({
      name: 'keyward_rate_limited_total', help: 'Requests answered 429 by the per-IP rate limit, by endpoint', labelNames: ['endpoint'], registers,
    });
    this.#refused = new Counter({
      name: 'keyward_refused_input_total', help: 'Requests refused with 400 for text the store cannot hold (NUL, invalid UTF-8), by endpoint kind',
      labelNames: ['kind'], registers,
    });
    new Gauge({
      name: 'keyward_audit_buffer_events', help: 'Audit events waiting to be written', registers,
      collect() { this.set(sources.audit().buffered); },
    });
    new Counter({
      name: 'keyward_audit_dropped_events_total', help: 'Audit events lost: overflow (buffer cap) or unstorable (refused by the store even without details)',
      labelNames: ['reason'], registers,
      collect() {
        const { dropped } = sources.audit();
        this.reset();
        this.inc({ reason: 'overflow' }, dropped.overflow);
        this.inc({ reason: 'unstorable' }, dropped.unstorable);
      },
    });
    new Counter({
      name: 'keyward_cache_lookups_total', help: 'Lookups in the in-process caches by cache and result (hit: no store round trip)',
      labelNames: ['cache', 'result'], registers,
      collect() {
        this.reset();
        for (const [cache, stats] of Object.entries(sources.caches)) {
          const { hits, misses } = stats();
          this.inc({ cache, result: 'hit' }, hits);
          this.inc({ cache, result: 'miss' }, misses);
        }
      },
    });
    new Gauge({
      name: 'keyward_cache_entries', help: 'Entries held by the in-process caches', labelNames: ['cache'], registers,
      collect() {
        for (const [cache, stats] of Object.entries(sources.caches)) this.set({ cache }, stats().size);
      },
    });
  }

  /** Every audit event as it is recorded. */
  audited(event: ObservedEvent): void {
    const details = event.details ?? {};
    if (event.type === 'token.issued') {
      this.#tokens.inc({
        grant_type: label(details.grant_type, 'none'),
        outcome: event.outcome,
        error: event.outcome === 'failure' ? label(details.error, 'other') : '',
      });
    } else if (event.type === 'login.failure') {
      const reason = label(details.reason, 'other');
      this.#loginFailures.inc({ reason });
      if (reason.startsWith('throttled_')) this.#loginThrottles.inc({ scope: reason.slice('throttled_'.length) });
    }
  }

  /** Every response, by route template and status. */
  answered(route: string, status: number): void {
    if (status === 401 && CLIENT_AUTH_ROUTES.has(route)) this.#clientAuthFailures.inc({ route });
  }

  rateLimited(endpoint: string): void {
    this.#rateLimited.inc({ endpoint });
  }

  refusedInput(kind: string): void {
    this.#refused.inc({ kind });
  }
}
