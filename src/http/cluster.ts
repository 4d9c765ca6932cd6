import cluster, { type Worker } from 'node:cluster';
import { randomUUID } from 'node:crypto';
import { AggregatorRegistry, type Registry } from 'prom-client';
import { errorFields, type Logger } from '../log/logger.ts';

/**
 * KEYWARD_WORKERS > 1: one primary process that serves nothing itself and N worker processes
 * that each run a whole Keyward (its own store pool, LISTEN connection, caches and Provider)
 * and share the port through node:cluster. Each worker is an instance in the sense of
 * "Running several instances": caches stay coherent through PostgreSQL NOTIFY, key
 * transitions run under the advisory lock. Worker 1 alone runs the periodic jobs (key
 * schedule, purges, audit retention); a replacement worker 1 takes them over.
 */

/** Set by the primary in each worker's environment: which slot (1…N) the worker fills. */
export const WORKER_ID_VARIABLE = 'KEYWARD_WORKER_ID';

/** The worker slot this process fills, or undefined outside a cluster. */
export function clusterWorkerId(): number | undefined {
  if (!cluster.isWorker) return undefined;
  const id = Number(process.env[WORKER_ID_VARIABLE]);
  return Number.isInteger(id) && id > 0 ? id : undefined;
}

/** Whether this process is the one that runs the periodic jobs (every process outside a cluster). */
export function runsPeriodicJobs(workerId: number | undefined): boolean {
  return workerId === undefined || workerId === 1;
}

const METRICS_REQUEST = 'keyward:metrics-request';
const METRICS_REPLY = 'keyward:metrics';
const METRICS_TIMEOUT_MS = 5_000;

interface MetricsRequest { type: typeof METRICS_REQUEST; id: string }
interface MetricsReply { type: typeof METRICS_REPLY; id: string; text?: string; error?: string }

/**
 * In a worker: /metrics shows the whole deployment, not the worker that happens to answer.
 * The worker asks the primary, which gathers every worker's registry (prom-client
 * AggregatorRegistry: counters and histograms summed, gauges summed unless they say otherwise).
 */
export function clusterExposition(registry: Registry): () => Promise<string> {
  AggregatorRegistry.setRegistries([registry]);
  // Constructing one installs prom-client's answer to the primary's requests in this worker.
  new AggregatorRegistry();
  const pending = new Map<string, { resolve: (text: string) => void; reject: (error: Error) => void }>();
  process.on('message', (message: Partial<MetricsReply>) => {
    if (message?.type !== METRICS_REPLY || !message.id) return;
    const waiting = pending.get(message.id);
    pending.delete(message.id);
    if (message.text !== undefined) waiting?.resolve(message.text);
    else waiting?.reject(new Error(message.error ?? 'metrics unavailable'));
  });
  return () => new Promise<string>((resolve, reject) => {
    const id = randomUUID();
    const timer = setTimeout(() => {
      pending.delete(id);
      reject(new Error('the primary did not send the metrics in time'));
    }, METRICS_TIMEOUT_MS + 1_000);
    pending.set(id, {
      resolve: (text) => { clearTimeout(timer); resolve(text); },
      reject: (error) => { clearTimeout(timer); reject(error); },
    });
    process.send!({ type: METRICS_REQUEST, id } satisfies MetricsRequest);
  });
}

export interface PrimaryOptions {
  workers: number;
  logger: Logger;
  /** KEYWARD_SHUTDOWN_TIMEOUT: each worker drains within it; the primary waits that plus a margin. */
  shutdownTimeoutMs: number;
  /** First restart delay after a crash; doubles for each crash of the same slot soon after its start. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** A worker that served this long before it exited is restarted after the first delay again. */
  stableMs?: number;
}

interface Slot {
  id: number;
  worker: Worker | undefined;
  startedAt: number;
  listening: boolean;
  /** Ever served: a slot that never did fails the start instead of being restarted. */
  served: boolean;
  crashes: number;
  restart: NodeJS.Timeout | undefined;
}

const STOP_MARGIN_MS = 5_000;

/**
 * Runs the primary: forks the workers, restarts one that exits (capped exponential backoff,
 * logged), and on SIGTERM/SIGINT asks every worker to drain and resolves with the exit code
 * once all have ended (0 when each ended cleanly). A worker that exits before it ever served
 * ends the start (the worker has printed why, e.g. a configuration or KEK error): the others
 * are stopped and its exit code returned.
 */
export function runPrimary(options: PrimaryOptions): Promise<number> {
  const { logger } = options;
  const backoffMs = options.backoffMs ?? 500;
  const maxBackoffMs = options.maxBackoffMs ?? 30_000;
  const stableMs = options.stableMs ?? 30_000;
  const slots: Slot[] = Array.from({ length: options.workers }, (_, i) => ({
    id: i + 1, worker: undefined, startedAt: 0, listening: false, served: false, crashes: 0, restart: undefined,
  }));
  let stopping = false;
  let exitCode = 0;
  let finish: (code: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => (finish = resolve));

  const fork = (slot: Slot) => {
    slot.restart = undefined;
    slot.listening = false;
    slot.startedAt = Date.now();
    const worker = cluster.fork({ [WORKER_ID_VARIABLE]: String(slot.id) });
    slot.worker = worker;
    worker.on('listening', () => {
      slot.listening = true;
      slot.served = true;
      logger.info({ worker: slot.id, pid: worker.process.pid }, 'worker listening');
    });
    worker.on('error', (error) => logger.warn({ worker: slot.id, err: errorFields(error) }, 'worker channel error'));
    worker.on('exit', (code, signal) => exited(slot, worker, code, signal));
  };

  const exited = (slot: Slot, worker: Worker, code: number | null, signal: string | null) => {
    if (slot.worker !== worker) return;
    slot.worker = undefined;
    slot.listening = false;
    const pid = worker.process.pid;
    if (stopping) {
      if (code !== 0) exitCode = 1;
      logger.info({ worker: slot.id, pid, code, signal }, 'worker stopped');
      if (slots.every((s) => !s.worker)) finish(exitCode);
      return;
    }
    if (!slot.served) {
      logger.error({ worker: slot.id, pid, code, signal }, 'worker exited before it served; stopping');
      exitCode = code && code > 0 ? code : 1;
      stop('start failed');
      return;
    }
    slot.crashes = Date.now() - slot.startedAt >= stableMs ? 0 : slot.crashes + 1;
    const delay = Math.min(maxBackoffMs, backoffMs * 2 ** Math.max(0, slot.crashes - 1));
    logger.warn({ worker: slot.id, pid, code, signal, restartInMs: delay }, 'worker exited; restarting');
    slot.restart = setTimeout(() => fork(slot), delay);
  };

  const stop = (reason: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ reason, workers: slots.filter((s) => s.worker).length }, 'stopping workers');
    for (const slot of slots) {
      if (slot.restart) clearTimeout(slot.restart);
      slot.restart = undefined;
      // Each worker drains as a single process does on SIGTERM (main.ts).
      slot.worker?.process.kill('SIGTERM');
    }
    if (slots.every((s) => !s.worker)) {
      finish(exitCode);
      return;
    }
    const deadline = setTimeout(() => {
      logger.error('workers did not stop in time; killing them');
      for (const slot of slots) slot.worker?.process.kill('SIGKILL');
      exitCode = 1;
    }, options.shutdownTimeoutMs + STOP_MARGIN_MS);
    deadline.unref();
  };

  const aggregator = new AggregatorRegistry();
  cluster.on('message', (worker: Worker, message: Partial<MetricsRequest>) => {
    if (message?.type !== METRICS_REQUEST || !message.id) return;
    const id = message.id;
    aggregator.clusterMetrics().then(
      (text) => worker.send({ type: METRICS_REPLY, id, text } satisfies MetricsReply),
      (error: Error) => worker.send({ type: METRICS_REPLY, id, error: error.message } satisfies MetricsReply),
    );
  });

  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  logger.info({ workers: options.workers, pid: process.pid }, 'keyward primary starting workers');
  for (const slot of slots) fork(slot);
  return done;
}
