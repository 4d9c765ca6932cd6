import { randomUUID } from 'node:crypto';
import type Koa from 'koa';

/** What a caller's own id may look like: short, printable, nothing a log viewer would misread. */
const CALLER_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/;

/**
 * Every request gets an id: the caller's `X-Request-Id` when it is a sane one (a gateway's
 * trace id), otherwise a new UUID. It is echoed in the response and carried by every log line
 * written while the request is served (log/logger.ts `readRequestIdsFrom`, `requestIdOf`).
 */
export function requestId(): Koa.Middleware {
  return async (ctx, next) => {
    const offered = ctx.get('x-request-id');
    const id = CALLER_ID.test(offered) ? offered : randomUUID();
    ctx.set('X-Request-Id', id);
    ctx.state.requestId = id;
    await next();
  };
}
