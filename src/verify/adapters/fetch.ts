import type { AccessTokenClaims, Verifier } from '../verifier.ts';
import { authorize, refusal, type AdapterOptions } from './core.ts';

/**
 * For fetch-style handlers (`(Request) => Response`: Deno, Bun, workers, Node's own servers
 * through an adapter): `export default { fetch: withAuth(verifier, (req, claims) => …) }`.
 * `Request.url` must be the URL the client used (behind a proxy, rebuild it before) for DPoP.
 */
export function withAuth(
  verifier: Verifier,
  handler: (request: Request, claims: AccessTokenClaims) => Response | Promise<Response>,
  options: AdapterOptions<Request> = {},
): (request: Request) => Promise<Response> {
  return async (request) => {
    let claims: AccessTokenClaims;
    try {
      claims = await authorize(verifier, {
        authorization: request.headers.get('authorization') ?? undefined,
        dpop: request.headers.get('dpop') ?? undefined,
        method: request.method,
        url: () => request.url,
        certificate: () => options.certificate?.(request),
      }, options.require);
    } catch (error) {
      const answer = refusal(error, options.realm);
      if (!answer) throw error;
      return new Response(answer.body, { status: answer.status, headers: answer.headers });
    }
    return handler(request, claims);
  };
}
