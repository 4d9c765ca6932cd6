import type Koa from 'koa';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** What /metrics reads from the store at each scrape (src/store/store.ts StoreStats). */
export interface StoreMetricsSource {
  stats(): {
    pool: { total: number; idle: number; waiting: number } | undefined;
    errors: Record<string, number>;
    listenReconnects: number;
  };
}

/** The signing keys as /metrics shows them: per algorithm, when the active key began signing and when it is replaced. */
export interface KeyMetricsSource {
  activeKeys(): Promise<{ alg: string; activatedAt: Date; nextRotationAt: Date | undefined }[]>;
  now(): Date;
}

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

  // --- Database and signing keys (issue 11): read at scrape time from the store and the key list. ---
  /**
   * Pool connections in use, idle and waiting; store errors by kind; LISTEN reconnects; per
   * algorithm the age of the active signing key and the seconds until the next rotation. A
   * scrape during a database outage shows the key values last read.
   */
  observeStore(store: StoreMetricsSource, keys: KeyMetricsSource): void {
    const registers = [this.registry];
    new Gauge({
      name: 'keyward_db_pool_connections', help: 'PostgreSQL pool connections by state (in_use, idle, waiting requests)',
      labelNames: ['state'], registers,
      collect() {
        const { pool } = store.stats();
        if (!pool) return;
        this.set({ state: 'in_use' }, pool.total - pool.idle);
        this.set({ state: 'idle' }, pool.idle);
        this.set({ state: 'waiting' }, pool.waiting);
      },
    });
    const counted = (name: string, help: string, read: () => Record<string, number>, label: string) => {
      const seen: Record<string, number> = {};
      new Counter({
        name, help, labelNames: [label], registers,
        collect() {
          for (const [kind, total] of Object.entries(read())) {
            this.inc({ [label]: kind }, total - (seen[kind] ?? 0));
            seen[kind] = total;
          }
        },
      });
    };
    counted('keyward_store_errors_total', 'Store failures by kind: connection (a connection broke), ping, request (answered 503)', () => store.stats().errors, 'kind');
    counted('keyward_listen_reconnects_total', 'LISTEN connections re-established after a loss', () => ({ changes: store.stats().listenReconnects }), 'channel');
    let last: Awaited<ReturnType<KeyMetricsSource['activeKeys']>> = [];
    let reading: Promise<typeof last> | undefined;
    // Both key gauges are collected in one scrape: one read of the key list serves them.
    const read = () => reading ??= keys.activeKeys().then((value) => (last = value), () => last).finally(() => {
      setTimeout(() => (reading = undefined), 1_000).unref();
    });
    new Gauge({
      name: 'keyward_signing_key_age_seconds', help: 'Seconds since the active signing key of each algorithm began signing',
      // KEYWARD_WORKERS: every worker reads the same keys; the aggregate (cluster.ts) shows one value.
      labelNames: ['alg'], registers, aggregator: 'max',
      async collect() {
        const now = keys.now().getTime();
        for (const key of await read()) this.set({ alg: key.alg }, Math.max(0, (now - key.activatedAt.getTime()) / 1000));
      },
    });
    new Gauge({
      name: 'keyward_signing_key_next_rotation_seconds', help: 'Seconds until the next key of each algorithm begins signing (scheduled rotation)',
      labelNames: ['alg'], registers, aggregator: 'min',
      async collect() {
        const now = keys.now().getTime();
        for (const key of await read()) if (key.nextRotationAt) this.set({ alg: key.alg }, Math.max(0, (key.nextRotationAt.getTime() - now) / 1000));
      },
    });
  }
  // --- end of database and signing keys ---

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
