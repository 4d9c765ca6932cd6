import { AsyncLocalStorage } from 'node:async_hooks';
import { fileURLToPath } from 'node:url';
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger } from 'pino';

/**
 * Paths that may carry credentials. Redaction is the safety net; the code's rule is still
 * never to hand a secret, hash or private key to the logger in the first place.
 */
const REDACT = [
  'password', '*.password', 'client_secret', '*.client_secret', 'clientSecret', '*.clientSecret',
  'secret', '*.secret', 'hash', '*.hash', 'passwordHash', '*.passwordHash', 'authorization', '*.authorization',
  'req.headers.authorization', 'req.headers.cookie', 'd', '*.d', 'privateJwk', '*.privateJwk',
  'access_token', '*.access_token', 'refresh_token', '*.refresh_token', 'id_token', '*.id_token', 'token', '*.token',
];

/** What every log line written while serving one request carries. */
export interface RequestContext {
  requestId: string;
}

/**
 * The request being served, across every await of its handling (oidc-provider's events
 * included): the logger's mixin reads it, so no call site has to pass the request id along.
 */
export const requestContext = new AsyncLocalStorage<RequestContext>();

/**
 * An error as logged (ECS `error.*` shape): class, code and the first line of its message, cut
 * to 200 characters. Never the whole error: store errors may quote the values they were given.
 */
export function errorFields(error: unknown): { type: string; code?: string; message: string } {
  const e = (error ?? {}) as { name?: unknown; code?: unknown; message?: unknown };
  return {
    type: typeof e.name === 'string' ? e.name : 'Error',
    ...(typeof e.code === 'string' ? { code: e.code } : {}),
    message: (typeof e.message === 'string' ? e.message : '').split('\n')[0]!.slice(0, 200),
  };
}

/** The ECS version the line shape follows (ecs-logging: `@timestamp`, `log.level`, `message`, `ecs.version`). */
export const ECS_VERSION = '8.11.0';

/**
 * JSON lines in Elastic Common Schema shape, so Filebeat or Fluent Bit ship them to
 * Elasticsearch or Splunk as they are: `@timestamp`, `log.level`, `message`, `service.name`,
 * and `http.request.id` on every line written while a request is served.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const pretty = destination ? undefined : prettyTarget();
  return pino({
    level,
    base: { 'ecs.version': ECS_VERSION, service: { name: 'keyward' } },
    messageKey: 'message',
    timestamp: () => `,"@timestamp":"${new Date().toISOString()}"`,
    formatters: { level: (label) => ({ 'log.level': label }) },
    mixin: () => {
      const context = requestContext.getStore();
      return context ? { http: { request: { id: context.requestId } } } : {};
    },
    redact: { paths: REDACT, censor: '[redacted]' },
    ...(pretty ? {
      transport: { target: pretty, options: { messageKey: 'message', levelKey: 'log.level', timestampKey: '@timestamp', ignore: 'ecs.version,service' } },
    } : {}),
  }, destination);
}

/**
 * pino-pretty's path when lines go to a terminal outside production and it is installed (it is
 * not a dependency: `npm install --no-save pino-pretty` for a developer who wants it); otherwise
 * undefined, and the lines stay JSON.
 */
export function prettyTarget(
  env: NodeJS.ProcessEnv = process.env,
  isTTY = process.stdout.isTTY === true,
  resolve: (name: string) => string = (name) => fileURLToPath(import.meta.resolve(name)),
): string | undefined {
  if (!isTTY || env.NODE_ENV === 'production') return undefined;
  try {
    return resolve('pino-pretty');
  } catch {
    return undefined;
  }
}
