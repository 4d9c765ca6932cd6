import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';
import type { FetchReason } from '../jwks.ts';

export type Outcome = 'allowed' | 'unauthorized' | 'forbidden' | 'unavailable';

/** The forward-auth verifier's metrics, on its own registry (`GET /metrics`). */
export class VerifyMetrics {
  readonly registry = new Registry();
  readonly #decisions: Counter<'outcome'>;
  readonly #duration: Histogram;
  readonly #fetches: Counter<'reason' | 'result'>;

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'keyward_verify_' });
    this.#decisions = new Counter({ name: 'keyward_verify_decisions_total', help: 'Forward-auth answers by outcome', labelNames: ['outcome'], registers: [this.registry] });
    this.#duration = new Histogram({
      name: 'keyward_verify_duration_seconds', help: 'Time to verify a request, from its headers to the answer',
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1], registers: [this.registry],
    });
    this.#fetches = new Counter({ name: 'keyward_verify_jwks_fetches_total', help: 'Key-set fetches from the issuer by reason and result', labelNames: ['reason', 'result'], registers: [this.registry] });
    for (const outcome of ['allowed', 'unauthorized', 'forbidden', 'unavailable'] as const) this.#decisions.inc({ outcome }, 0);
  }

  decision(outcome: Outcome, seconds: number): void {
    this.#decisions.inc({ outcome });
    this.#duration.observe(seconds);
  }

  fetch(reason: FetchReason, ok: boolean): void {
    this.#fetches.inc({ reason, result: ok ? 'ok' : 'error' });
  }
}
