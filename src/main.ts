import cluster from 'node:cluster';
import { ConfigError, loadConfig } from './config/env.ts';
import { clusterWorkerId, runPrimary, runsPeriodicJobs } from './http/cluster.ts';
import { KekMismatchError } from './keys/instance-secrets.ts';
import { createLogger } from './log/logger.ts';

async function main(): Promise<void> {
  const started = performance.now();
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`keyward: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const base = createLogger(config.logLevel);
  // KEYWARD_WORKERS > 1: this process supervises the workers (src/http/cluster.ts) and serves nothing.
  if (config.workers > 1 && cluster.isPrimary) {
    process.exit(await runPrimary({ workers: config.workers, logger: base, shutdownTimeoutMs: config.shutdownTimeoutMs }));
  }
  const workerId = clusterWorkerId();
  const logger = workerId === undefined ? base : base.child({ worker: workerId });
  // Imported only once the configuration is valid: loading oidc-provider prints a warning of
  // its own on some runtimes, and a configuration error must be the one line on stderr.
  const { createKeyward } = await import('./app.ts');
  const keyward = await createKeyward(config, { logger, workerId, periodicJobs: runsPeriodicJobs(workerId) });
  const { port } = await keyward.listen();
  const { bootstrap } = keyward;
  if (bootstrap?.generatedSecret) {
    // Shown once, on the terminal only: never through the logger.
    process.stdout.write(
      `\nBootstrap admin client created. Store this secret now; it is not shown again.\n`
      + `  client_id:     ${bootstrap.clientId}\n  client_secret: ${bootstrap.generatedSecret}\n\n`,
    );
  }
  logger.info({ issuer: config.issuer, port, store: keyward.store.kind, startupMs: Math.round(performance.now() - started) }, 'keyward listening');

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const deadline = setTimeout(() => {
      logger.error('shutdown timed out');
      process.exit(1);
    }, config.shutdownTimeoutMs + 2000);
    deadline.unref();
    await keyward.close();
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

main().catch((error: Error) => {
  // A KEK that does not open the store is a configuration error: one line naming the variable.
  if (error instanceof KekMismatchError) {
    process.stderr.write(`keyward: ${error.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`keyward: failed to start: ${error.message}\n`);
  process.exit(1);
});
