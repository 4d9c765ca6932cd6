import { pino } from 'pino';
import { createForwardAuth } from './app.ts';

/**
 * `npm run verify-server`: the forward-auth verifier as a process. Configuration:
 * KEYWARD_VERIFY_ISSUER (required), KEYWARD_VERIFY_AUDIENCE (required; a comma-separated list
 * accepts any), PORT (default 8081), HOST (default 0.0.0.0), KEYWARD_VERIFY_JWKS_URI (skip
 * discovery, e.g. an internal address), KEYWARD_VERIFY_CLOCK_TOLERANCE (seconds, default 0),
 * KEYWARD_VERIFY_ALGS (comma-separated, default ES256,RS256,EdDSA), LOG_LEVEL (default info).
 */
const env = process.env;
const logger = pino({ level: env.LOG_LEVEL ?? 'info', base: { service: 'keyward-verify' } });

function fail(message: string): never {
  process.stderr.write(`keyward verify-server: ${message}\n`);
  process.exit(2);
}

const issuer = env.KEYWARD_VERIFY_ISSUER?.replace(/\/$/, '');
const audience = (env.KEYWARD_VERIFY_AUDIENCE ?? '').split(',').map((a) => a.trim()).filter(Boolean);
if (!issuer || !/^https?:\/\/[^?#]+$/.test(issuer)) fail('KEYWARD_VERIFY_ISSUER must be the issuer URL, e.g. https://id.example.com');
if (!audience.length) fail('KEYWARD_VERIFY_AUDIENCE must name this API\'s resource identifier(s), comma-separated');
const port = Number(env.PORT ?? 8081);
if (!Number.isInteger(port) || port < 0 || port > 65535) fail('PORT must be a port number');
const clockTolerance = Number(env.KEYWARD_VERIFY_CLOCK_TOLERANCE ?? 0);
if (!Number.isFinite(clockTolerance) || clockTolerance < 0) fail('KEYWARD_VERIFY_CLOCK_TOLERANCE must be a number of seconds');

let auth;
try {
  auth = createForwardAuth({
    issuer, audience, clockTolerance, logger,
    ...(env.KEYWARD_VERIFY_ALGS ? { algorithms: env.KEYWARD_VERIFY_ALGS.split(',').map((a) => a.trim()) } : {}),
    ...(env.KEYWARD_VERIFY_JWKS_URI ? { jwks: { jwksUri: env.KEYWARD_VERIFY_JWKS_URI } } : {}),
  });
} catch (error) {
  fail((error as Error).message);
}

const url = await auth.listen(port, env.HOST ?? '0.0.0.0').catch((error: Error) => fail(error.message));
logger.info({ url, issuer, audience }, 'verify-server listening');

// Warm the key set so the first request does not wait for it; until then /healthz answers 503.
const warm = setInterval(() => {
  if (auth.verifier.jwks.status().loaded) return clearInterval(warm);
  auth.verifier.jwks.refresh().catch(() => undefined);
}, 5_000);
warm.unref();
await auth.verifier.jwks.refresh().catch(() => undefined);

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    clearInterval(warm);
    void auth.close().then(() => process.exit(0));
  });
}
