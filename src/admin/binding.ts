import type { X509Certificate } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type Koa from 'koa';
import type { ProviderHolder } from '../oidc/holder.ts';
import { checkBinding, type Confirmation } from '../verify/binding.ts';
import { VerifyError } from '../verify/errors.ts';

/** How far a DPoP proof's iat may lie from now (RFC 9449 §11.1; oidc-provider's own window is 300 s). */
const DPOP_WINDOW_SECONDS = 300;

export interface AdminBindingDeps {
  issuer: string;
  provider: ProviderHolder;
  now: () => Date;
  /** The request's client certificate (see http/client-certificate.ts); absent: none is ever presented. */
  clientCertificate?: ((req: IncomingMessage) => { certificate: X509Certificate } | undefined) | undefined;
}

/**
 * RFC 9449 §7.1 and RFC 8705 §3: an admin token bound to a DPoP key or a client certificate is
 * worthless without its proof, so a stolen one cannot call the admin API. keyward/verify's
 * check is reused; proof `jti`s go to the store through oidc-provider's ReplayDetection, so a
 * proof is accepted once across every instance. Returns why the request is refused, if it is.
 */
export async function bindingRefusal(ctx: Koa.Context, token: string, scheme: 'bearer' | 'dpop', cnf: Confirmation | undefined, deps: AdminBindingDeps): Promise<string | undefined> {
  if (cnf?.jkt !== undefined && scheme !== 'dpop') return 'the access token is DPoP-bound: present it with the DPoP scheme and a DPoP proof';
  const proof = ctx.get('dpop');
  const dpop = scheme === 'dpop'
    ? { proof, method: ctx.method, url: new URL(ctx.path, new URL(deps.issuer).origin).href }
    : undefined;
  if (dpop && !proof) return 'the DPoP scheme requires a DPoP proof header';
  const certificate = deps.clientCertificate?.(ctx.req)?.certificate.raw;
  try {
    await checkBinding(token, cnf, { dpop, certificate }, {
      dpopMaxAgeSeconds: DPOP_WINDOW_SECONDS,
      clockToleranceSeconds: 0,
      now: deps.now,
      dpopJtiUnused: (jti, expiresAt) => deps.provider.current.ReplayDetection.unique(`keyward-admin:${String(cnf?.jkt)}`, jti, Math.ceil(expiresAt.getTime() / 1000)),
    });
  } catch (error) {
    if (error instanceof VerifyError) return error.message;
    throw error;
  }
  return undefined;
}
