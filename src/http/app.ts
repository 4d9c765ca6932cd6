import type { IncomingMessage, ServerResponse } from 'node:http';
import type Router from '@koa/router';
import Koa from 'koa';
import compose from 'koa-compose';
import type { Rate } from '../config/env.ts';
import { errorFields as loggedError, requestFields, type Logger } from '../log/logger.ts';
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

export interface HttpApp {
  /** Keyward's koa app (edge, routers, then oidc-provider). */
  app: Koa;
  /** The server's request handler: the token endpoints straight to oidc-provider, the rest to `app`. */
  handler: (req: IncomingMessage, res: ServerResponse) => void;
  /**
   * Keyward's edge for the requests `handler` sends straight to oidc-provider: installed as the
   * provider's outermost middleware (ProviderDeps.edge), a no-op for every other path.
   */
  providerEdge: Edge;
}

/** A middleware that always answers a promise (what the provider's `use` is given). */
export type Edge = (ctx: Koa.Context, next: () => Promise<void>) => Promise<void>;

/** The koa app: Keyward's routes first, then everything else goes to oidc-provider. */
export function createHttpApp(deps: HttpDeps): HttpApp {
  // Trusting X-Forwarded-For without a proxy would let any client pick the IP that login
  // throttling and audit see; with N proxies the Nth address from the right is the client.
  const app = new Koa({ proxy: deps.proxyHops > 0, maxIpsCount: deps.proxyHops });
  app.silent = true;
  app.on('error', (error: Error, ctx?: Koa.Context) => deps.logger.error({ err: loggedError(error), ...requestFields(ctx) }, 'http error'));

  // The edge: what every request passes first, in Keyward's app or (token endpoints) in the provider's.
  const edge: Koa.Middleware[] = [];
  edge.push(requestId());
  edge.push(deps.metrics.middleware(routeOf));
  if (new URL(deps.issuer).protocol === 'https:') {
    // RFC 6797: browsers that once reached the issuer over TLS never fall back to plain http,
    // where cookies and codes could be read. Set before oidc-provider writes to the same response.
    edge.push(async (ctx, next) => {
      ctx.set('Strict-Transport-Security', `max-age=${HSTS_MAX_AGE_SECONDS}`);
      await next();
    });
  }
  edge.push(async (ctx, next) => {
    await next();
    deps.security.answered(routeOf(ctx), ctx.status);
  });
  edge.push(async (ctx, next) => {
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
      deps.logger.error({ err: { ...loggedError(error), stack: (error as Error).stack }, path: ctx.path, ...requestFields(ctx) }, 'unhandled error');
      ctx.status = 500;
      ctx.type = 'application/problem+json';
      ctx.body = { type: 'about:blank', title: 'Internal Server Error', status: 500 };
    }
  });
  edge.push(refuseUnstorableInput(deps.answer, (kind) => deps.security.refusedInput(kind)));
  if (deps.rateLimits) edge.push(rateLimit(deps.rateLimits, deps.answer, (endpoint) => deps.security.rateLimited(endpoint)));
  for (const middleware of edge) app.use(middleware);
  // oidc-provider is a koa app of its own: it gets the raw request, its body read and checked here.
  const checkBody = async (ctx: Koa.Context): Promise<boolean> => {
    const read = await readProviderBody(ctx);
    if (read && 'refuse' in read) {
      const kind = endpointKind(ctx.path);
      deps.security.refusedInput(kind);
      deps.answer(ctx, { status: 400, kind, error: 'invalid_request', description: read.refuse });
      return false;
    }
    // oidc-provider reads an already consumed body from `req.body` (lib/shared/selective_body.js).
    if (read) (ctx.req as typeof ctx.req & { body?: Buffer }).body = read.body;
    return true;
  };
  for (const router of deps.routers) {
    app.use(router.routes());
    app.use(router.allowedMethods());
  }
  app.use(async (ctx) => {
    if (!(await checkBody(ctx))) return;
    ctx.respond = false;
    await deps.provider.handler(ctx.req, ctx.res);
  });

  // The token endpoints, which no Keyward router serves (directProviderPaths), go to oidc-provider
  // straight from the socket: one koa context per request, the edge running inside the provider's.
  const direct = directProviderPaths(deps.routers);
  const directEdge: Edge = compose([...edge, async (ctx: Koa.Context, next: Koa.Next) => {
    if (await checkBody(ctx)) await next();
  }]);
  const keyward = app.callback();
  return {
    app,
    handler: (req, res) => void (direct.has(pathOf(req.url)) ? deps.provider.handler(req, res) : keyward(req, res)),
    providerEdge: (ctx, next) => (direct.has(ctx.path) ? directEdge(ctx, next) : next()),
  };
}

/** The path of a request target, as koa's `ctx.path` reads it (no decoding). */
function pathOf(url: string | undefined): string {
  if (!url) return '/';
  const query = url.indexOf('?');
  return query < 0 ? url : url.slice(0, query);
}
