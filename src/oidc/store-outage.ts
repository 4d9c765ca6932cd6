import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { isStoreUnavailable } from '../store/unavailable.ts';

/** Seconds a client is told to wait before retrying while the store is away. */
const RETRY_AFTER_SECONDS = 2;

const BODY = {
  error: 'temporarily_unavailable',
  error_description: 'the service cannot reach its database; retry shortly',
};

/**
 * RFC 6749 §4.1.2.1 names `temporarily_unavailable` for a server that cannot handle the
 * request now. oidc-provider answers any unexpected error as 500 `server_error` and emits
 * `server_error`; when the cause is the store being unreachable, this turns that answer into
 * 503 `temporarily_unavailable` with `Retry-After` (a redirect keeps its form, with the code
 * replaced). Installed first, so it also sees errors thrown outside the routes' handlers.
 */
export function answerStoreOutage(provider: Provider, onOutage: () => void = () => undefined): void {
  const marked = new WeakSet<object>();
  provider.on('server_error', (ctx: KoaContextWithOIDC, error: unknown) => {
    if (isStoreUnavailable(error)) marked.add(ctx);
  });
  provider.use(async (ctx, next) => {
    try {
      await next();
    } catch (error) {
      if (!isStoreUnavailable(error)) throw error;
      marked.add(ctx);
    }
    if (!marked.has(ctx)) return;
    onOutage();
    ctx.set('Retry-After', String(RETRY_AFTER_SECONDS));
    ctx.set('Cache-Control', 'no-store');
    const location = ctx.response.get('Location');
    if (ctx.status >= 300 && ctx.status < 400 && location) {
      ctx.set('Location', location
        .replace(/([?&#])error=server_error/, '$1error=temporarily_unavailable')
        .replace(/([?&#]error_description=)[^&]*/, '$1temporarily%20unavailable'));
      return;
    }
    ctx.status = 503;
    if (ctx.response.is('html')) return;
    ctx.type = 'application/json';
    ctx.body = BODY;
  });
}
