import type { AccessTokenClaims, Verifier } from '../verifier.ts';
import { authorize, peerCertificate, refusal, type AdapterOptions } from './core.ts';

/** The parts of a Koa context this middleware uses; no dependency on koa. */
export interface KoaLikeContext {
  method: string;
  /** The full request URL (Koa honours `app.proxy` for protocol and host). */
  href: string;
  get(field: string): string;
  set(field: string, value: string): void;
  status: number;
  body: unknown;
  state: object;
  req: { socket?: unknown };
}

/** The claims a koaAuth middleware put on `ctx.state.auth`. */
export interface KoaAuthState {
  auth: AccessTokenClaims;
}

/**
 * `router.get('/orders', koaAuth(verifier, { require: [requireScopes('orders:read')] }), …)`:
 * verifies the bearer (or DPoP) token, sets `ctx.state.auth`, answers 401/403/503 itself.
 */
export function koaAuth<Ctx extends KoaLikeContext>(verifier: Verifier, options: AdapterOptions<Ctx> = {}) {
  return async (ctx: Ctx, next: () => Promise<unknown>): Promise<void> => {
    let claims: AccessTokenClaims;
    try {
      claims = await authorize(verifier, {
        // Koa answers '' for an absent header; two Authorization headers arrive joined by a comma and fail the syntax check.
        authorization: ctx.get('authorization') || undefined,
        dpop: ctx.get('dpop') || undefined,
        method: ctx.method,
        url: () => ctx.href,
        certificate: () => (options.certificate ? options.certificate(ctx) : peerCertificate(ctx.req.socket)),
      }, options.require);
    } catch (error) {
      const answer = refusal(error, options.realm);
      if (!answer) throw error;
      ctx.status = answer.status;
      for (const [name, value] of Object.entries(answer.headers)) ctx.set(name, value);
      ctx.body = answer.body;
      return;
    }
    (ctx.state as Partial<KoaAuthState>).auth = claims;
    await next();
  };
}
