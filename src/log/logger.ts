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

/** The id http/request-id.ts gave a request, from its koa context (`ctx.state.requestId`). */
export function requestIdOf(ctx: { state?: unknown } | undefined): string | undefined {
  const id = (ctx?.state as { requestId?: unknown } | undefined)?.requestId;
  return typeof id === 'string' ? id : undefined;
}

/**
 * Where the logger's mixin finds the id of the request being served. app.ts points it at
 * oidc-provider's request context (`Provider.ctx`, kept in oidc-provider's own
 * AsyncLocalStorage while its routes run), so every line written while oidc-provider serves a
 * request carries the id without call sites passing it along. Keyward keeps no
 * AsyncLocalStorage of its own: on Node 20 each enabled one adds work to every promise of every
 * request (issue 13). Keyward's own routes (admin API, login pages) name the request
 * explicitly on their error and audit lines.
 */
let currentRequestId: () => string | undefined = () => undefined;

export function readRequestIdsFrom(source: () => string | undefined): void {
  currentRequestId = source;
}

/** ECS `http.request.id`, when there is an id. */
export function requestIdField(id: string | undefined): { http?: { request: { id: string } } } {
  return id ? { http: { request: { id } } } : {};
}

/** The fields naming the request of `ctx`, for lines written outside oidc-provider's routes. */
export function requestFields(ctx: { state?: unknown } | undefined): { http?: { request: { id: string } } } {
  return requestIdField(requestIdOf(ctx));
}

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
    mixin: () => requestIdField(currentRequestId()),
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
