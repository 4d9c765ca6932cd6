import type { Middleware } from 'koa';

/** oidc-provider's `routes.code_verification` (its default, which Keyward keeps). */
const VERIFICATION_PATH = '/device';

/**
 * oidc-provider 9.13 answers 500 to a `POST /device` that fails (wrong xsrf, unknown code …)
 * when the browser brings no live session (no cookie, or one whose session is gone): its error
 * handler (lib/shared/error_handler.js) calls `generateXsrf`, touching a session the route's
 * session middleware already chose not to save, and `ensureSessionSave`
 * (lib/helpers/initialize_app.js) then throws `TypeError: persist can only be called on
 * previously persisted Sessions`. Nothing was confirmed or saved by then, so the person is
 * sent back to the code page (a GET, which starts a session) to enter the code again.
 */
export function deviceSessionRecovery(): Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } catch (error) {
      if (ctx.method !== 'POST' || ctx.path !== VERIFICATION_PATH || !unsavedSession(error)) throw error;
      ctx.set('Cache-Control', 'no-store');
      ctx.redirect(VERIFICATION_PATH);
      ctx.status = 303;
    }
  };
}

function unsavedSession(error: unknown): boolean {
  return error instanceof TypeError && error.message === 'persist can only be called on previously persisted Sessions';
}
