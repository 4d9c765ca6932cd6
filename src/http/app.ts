import type Router from '@koa/router';
import Koa from 'koa';
import type { Rate } from '../config/env.ts';
import { errorFields as loggedError, type Logger } from '../log/logger.ts';
import { isStoreUnavailable } from '../store/unavailable.ts';
import type { ProviderHolder } from '../oidc/holder.ts';
import type { Metrics, SecurityMetrics } from './metrics.ts';
import { endpointKind, readProviderBody, refuseUnstorableInput, type EdgeAnswer } from './poison.ts';
import { rateLimit, type LimitedEndpoint } from './rate-limit.ts';
import { requestId } from './request-id.ts';
import { directProviderPaths, routeOf } from './routes.ts';

export interface HttpDeps {
  /** The public URL; with https every response carries HSTS. */
  issuer: string;
  logger: Logger;
  metrics: Metrics;
  security: SecurityMetrics;
  provider: ProviderHolder;
  /** Keyward's own routes (health, admin, interaction), tried before oidc-provider. */
  routers: Router[];
  /** Trusted reverse proxies in front (X-Forwarded-For/-Proto); 0 trusts none. */
  proxyHops: number;
  /** Per-IP rates of the token, login and device endpoints; undefined = no limit here. */
  rateLimits: Record<LimitedEndpoint, Rate> | undefined;
  /** Renders a refusal (bad input, rate limit) in the format of the endpoint it was sent to. */
  answer: EdgeAnswer;
  /** Called for each request answered 503 because the store was unreachable (metrics). */
  onStoreOutage?: () => void;
}

const HSTS_MAX_AGE_SECONDS = 365 * 86_400;

/** The koa app: Keyward's routes first, then everything else goes to oidc-provider. */
export function createHttpApp(deps: HttpDeps): Koa {
  // Trusting X-Forwarded-For without a proxy would let any client pick the IP that login
  // throttling and audit see; with N proxies the Nth address from the right is the client.
  const app = new Koa({ proxy: deps.proxyHops > 0, maxIpsCount: deps.proxyHops });
  app.silent = true;
  app.on('error', (error: Error) => deps.logger.error({ err: loggedError(error) }, 'http error'));

  app.use(requestId());
  app.use(deps.metrics.middleware(routeOf));
  if (new URL(deps.issuer).protocol === 'https:') {
    // RFC 6797: browsers that once reached the issuer over TLS never fall back to plain http,
    // where cookies and codes could be read. Set before oidc-provider writes to the same response.
    app.use(async (ctx, next) => {
      ctx.set('Strict-Transport-Security', `max-age=${HSTS_MAX_AGE_SECONDS}`);
      await next();
    });
  }
  app.use(async (ctx, next) => {
    await next();
    deps.security.answered(routeOf(ctx), ctx.status);
  });
  app.use(async (ctx, next) => {
    try {
      await next();
    } catch (error) {
      if (isStoreUnavailable(error)) {
        // The database is away: the caller may retry, nothing here is broken.
        deps.onStoreOutage?.();
        ctx.status = 503;
        ctx.set('Retry-After', '2');
        ctx.set('Cache-Control', 'no-store');
        ctx.type = 'application/problem+json';
        ctx.body = { type: 'urn:keyward:problem:unavailable', title: 'Service Unavailable', status: 503, detail: 'the database is unreachable; retry shortly' };
        return;
      }
      // Last line of defence: a bug must answer 500, not crash or leak a stack trace.
      deps.logger.error({ err: { ...loggedError(error), stack: (error as Error).stack }, path: ctx.path }, 'unhandled error');
      ctx.status = 500;
      ctx.type = 'application/problem+json';
      ctx.body = { type: 'about:blank', title: 'Internal Server Error', status: 500 };
    }
  });
  app.use(refuseUnstorableInput(deps.answer, (kind) => deps.security.refusedInput(kind)));
  if (deps.rateLimits) app.use(rateLimit(deps.rateLimits, deps.answer, (endpoint) => deps.security.rateLimited(endpoint)));
  // oidc-provider is a koa app of its own: it gets the raw request, its body read and checked here.
  const toProvider = async (ctx: Koa.Context): Promise<void> => {
    const read = await readProviderBody(ctx);
    if (read && 'refuse' in read) {
      const kind = endpointKind(ctx.path);
      deps.security.refusedInput(kind);
      return deps.answer(ctx, { status: 400, kind, error: 'invalid_request', description: read.refuse });
    }
    // oidc-provider reads an already consumed body from `req.body` (lib/shared/selective_body.js).
    if (read) (ctx.req as typeof ctx.req & { body?: Buffer }).body = read.body;
    ctx.respond = false;
    await deps.provider.handler(ctx.req, ctx.res);
  };
  // The token endpoints skip the routers, none of which serves them (see directProviderPaths).
  const direct = directProviderPaths(deps.routers);
  if (direct.size) app.use((ctx, next) => (direct.has(ctx.path) ? toProvider(ctx) : next()));
  for (const router of deps.routers) {
    app.use(router.routes());
    app.use(router.allowedMethods());
  }
  app.use(toProvider);
  return app;
}
